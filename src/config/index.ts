export { loadConfig, readConfigSources, settings, envName, ConfigError, CONFIG_FILE_ENV } from './load.js';
export type { Config } from './schema.js';
