// log.level takes pino's level names, in any case; anything else stops start-up naming the key
// and the choices.
import { describe, expect, it } from 'vitest';
import { ConfigError, loadConfig } from '../../src/config/index.js';

describe('log.level', () => {
  it('accepts every level name, in any case', () => {
    for (const level of ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent']) {
      expect(loadConfig({ env: { DRREG_LOG_LEVEL: level } }).log.level).toBe(level);
      expect(loadConfig({ env: { DRREG_LOG_LEVEL: level.toUpperCase() } }).log.level).toBe(level);
    }
    expect(loadConfig({ env: {} }).log.level).toBe('info');
  });

  it('refuses anything else with the key, its env variable and the names', () => {
    const load = () => loadConfig({ env: { DRREG_LOG_LEVEL: 'verbose' } });
    expect(load).toThrow(ConfigError);
    expect(load).toThrow('log.level (from DRREG_LOG_LEVEL): expected a level name: trace, debug, info, warn, error, fatal, silent (got "verbose")');
  });
});
