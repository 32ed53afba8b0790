// Loads the configuration once at start-up: YAML file, then DRREG_* environment overrides, then
// validation. Any problem stops start-up with a message naming the key (and its env variable).
import { readFileSync } from 'node:fs';
import YAML from 'yaml';
import { configSchema, type Config } from './schema.js';

export const ENV_PREFIX = 'DRREG_';
/** Not a setting: names the YAML file when --config is not given. */
export const CONFIG_FILE_ENV = 'DRREG_CONFIG';
/** Not settings either: the CLI's connection to a running registry (src/cli/remote.ts). */
export const CLIENT_ENV: ReadonlySet<string> = new Set(['DRREG_URL', 'DRREG_USER', 'DRREG_PASSWORD']);

export class ConfigError extends Error {
  override readonly name = 'ConfigError';
}

type Tree = Record<string, unknown>;

/** Every setting's path with its default value, read off the schema. */
export function settings(): Array<{ path: string[]; env: string; default: unknown }> {
  const out: Array<{ path: string[]; env: string; default: unknown }> = [];
  const walk = (node: unknown, path: string[]) => {
    if (node && typeof node === 'object' && !Array.isArray(node)) {
      for (const [k, v] of Object.entries(node)) walk(v, [...path, k]);
    } else {
      out.push({ path, env: envName(path), default: node });
    }
  };
  walk(configSchema.parse({}), []);
  return out;
}

export function envName(path: string[]): string {
  return ENV_PREFIX + path.map((p) => p.toUpperCase()).join('_');
}

/** The configuration as written, before validation: the file's tree with the environment over it. */
export interface ConfigSources {
  file: string | undefined;
  tree: Tree;
  /** Dotted path -> the environment variable that set it. */
  fromEnv: Map<string, string>;
}

export function readConfigSources(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): ConfigSources {
  const env = options.env ?? process.env;
  const file = options.file ?? env[CONFIG_FILE_ENV];
  const tree: Tree = file ? readYaml(file) : {};
  const fromEnv = new Map<string, string>(); // dotted path -> env variable that set it

  const known = settings();
  for (const name of Object.keys(env)) {
    if (!name.startsWith(ENV_PREFIX) || name === CONFIG_FILE_ENV || CLIENT_ENV.has(name)) continue;
    const setting = known.find((s) => s.env === name);
    if (!setting) throw new ConfigError(`config: unknown environment variable ${name} (no such setting)`);
    setPath(tree, setting.path, coerce(env[name]!, setting.default));
    fromEnv.set(setting.path.join('.'), name);
  }
  return { file, tree, fromEnv };
}

export function loadConfig(options: { file?: string; env?: NodeJS.ProcessEnv } = {}): Config {
  const { file, tree, fromEnv } = readConfigSources(options);
  const result = configSchema.safeParse(tree);
  if (result.success) return result.data;
  const lines = result.error.issues.map((issue) => {
    const keys = issue.code === 'unrecognized_keys' ? issue.keys.map((k) => [...issue.path, k].join('.')) : [issue.path.join('.')];
    const where = keys.map((k) => (fromEnv.has(k) ? `${k} (from ${fromEnv.get(k)})` : k || '(top level)')).join(', ');
    return `  ${where}: ${issue.message}`;
  });
  throw new ConfigError(`invalid configuration${file ? ` in ${file}` : ''}:\n${lines.join('\n')}`);
}

function readYaml(file: string): Tree {
  let text: string;
  try {
    text = readFileSync(file, 'utf8');
  } catch (err) {
    throw new ConfigError(`config: cannot read ${file}: ${(err as Error).message}`);
  }
  let doc: unknown;
  try {
    doc = YAML.parse(text);
  } catch (err) {
    throw new ConfigError(`config: ${file} is not valid YAML: ${(err as Error).message}`);
  }
  if (doc === null || doc === undefined) return {};
  if (typeof doc !== 'object' || Array.isArray(doc)) throw new ConfigError(`config: ${file} must hold a YAML mapping`);
  return doc as Tree;
}

// Env values are text; give them the type the setting's default has, so "false" is a boolean.
function coerce(value: string, defaultValue: unknown): unknown {
  if (typeof defaultValue === 'boolean' && /^(true|false)$/i.test(value)) return value.toLowerCase() === 'true';
  if (typeof defaultValue === 'number' && /^-?\d+(\.\d+)?$/.test(value)) return Number(value);
  if (Array.isArray(defaultValue)) {
    try {
      return JSON.parse(value) as unknown; // lists (retention policies) are JSON in the environment
    } catch {
      return value; // validation then names the key
    }
  }
  return value;
}

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    const next = node[key];
    if (!next || typeof next !== 'object') node[key] = {};
    node = node[key] as Tree;
  }
  node[path[path.length - 1]!] = value;
}
