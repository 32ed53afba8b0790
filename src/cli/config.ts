// `dr-registry config check`: validates the configuration (file, then DRREG_* environment) and
// prints the effective configuration: every setting, secrets masked, durations and sizes as
// written (defaults in their shortest exact unit), and where each value came from.
import { parseArgs } from 'node:util';
import { usageError, type Command } from './command.js';

/** Settings whose values are secrets: shown as set or not, never their value. */
const SECRET_PATHS = new Set(['auth.secret', 'admin.token', 'storage.s3.secretKey']);
export const MASK = '********';

type Tree = Record<string, unknown>;
type ConfigSchema = typeof import('../config/schema.js').configSchema;

export const configCommand: Command = {
  name: 'config',
  summary: 'check the configuration and print it as in effect (secrets masked)',
  usage: `usage: dr-registry config check [--config FILE] [--json]

subcommands:
  check   validate the configuration and print the effective one
`,
  subcommands: {
    check: `usage: dr-registry config check [--config FILE] [--json]

Validates the configuration (the file from --config or DRREG_CONFIG, then DRREG_* environment
variables over it) as \`serve\` would, and prints every setting in effect: values as written
(durations and sizes in their units; defaults in their shortest exact unit), secrets masked
(auth.secret, admin.token, storage.s3.secretKey, password hashes), and which values came from
the environment. Exits 6 with one line per bad key when it is invalid.

options:
  -c, --config FILE   YAML configuration file
      --json          print JSON
`,
  },
  async run(args) {
    const [sub, ...rest] = args;
    if (sub !== 'check') throw usageError(`expected check${sub ? `, not ${sub}` : ''} (see dr-registry config --help)`);
    const { values } = parseArgs({ args: rest, options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } } });
    const [{ loadConfig, readConfigSources }, { default: YAML }] = await Promise.all([import('../config/index.js'), import('yaml')]);
    loadConfig({ file: values.config }); // throws ConfigError (exit 6) naming each bad key
    const sources = readConfigSources({ file: values.config });
    const effective = await effectiveConfig(sources.tree);
    const fromEnvironment = Object.fromEntries([...sources.fromEnv].sort());
    if (values.json) {
      process.stdout.write(`${JSON.stringify({ valid: true, file: sources.file ?? null, fromEnvironment, config: effective }, null, 2)}\n`);
      return 0;
    }
    const header = [
      '# dr-registry configuration: valid',
      `# file: ${sources.file ?? '(none: defaults and environment only)'}`,
      ...(sources.fromEnv.size > 0 ? ['# from the environment:', ...[...sources.fromEnv].sort().map(([k, v]) => `#   ${k} (${v})`)] : []),
    ];
    process.stdout.write(`${header.join('\n')}\n${YAML.stringify(effective)}`);
    return 0;
  },
};

/** Every setting: the value as written where given, else the default in its unit; secrets masked. */
export async function effectiveConfig(written: Tree): Promise<Tree> {
  const [{ settings }, { configSchema }, { formatDuration }] = await Promise.all([
    import('../config/index.js'),
    import('../config/schema.js'),
    import('../config/units.js'),
  ]);
  const out: Tree = {};
  const units = leafUnits(settings(), configSchema);
  for (const s of settings()) {
    const dotted = s.path.join('.');
    const given = getPath(written, s.path);
    let value: unknown = given !== undefined ? given : s.default;
    if (given === undefined && typeof s.default === 'number') {
      if (units.get(dotted) === 'duration') value = formatDuration(s.default);
      if (units.get(dotted) === 'size') value = formatSize(s.default);
    }
    if (SECRET_PATHS.has(dotted) && value !== '' && value !== undefined) value = MASK;
    if (dotted === 'auth.users' && Array.isArray(value)) {
      value = value.map((u: unknown) => (u && typeof u === 'object' ? { ...(u as Tree), password: MASK } : u));
    }
    setPath(out, s.path, value);
  }
  return out;
}

/** Which numeric settings are durations and which sizes, found by asking the schema. */
function leafUnits(all: Array<{ path: string[]; default: unknown }>, schema: ConfigSchema): Map<string, 'duration' | 'size'> {
  const units = new Map<string, 'duration' | 'size'>();
  for (const s of all) {
    if (typeof s.default !== 'number') continue;
    for (const [probe, expected, unit] of [['90s', 90_000, 'duration'], ['8MiB', 8 * 1024 * 1024, 'size']] as const) {
      const tree: Tree = {};
      setPath(tree, s.path, probe);
      const parsed = schema.safeParse(tree);
      if (parsed.success && getPath(parsed.data as Tree, s.path) === expected) {
        units.set(s.path.join('.'), unit);
        break;
      }
    }
  }
  return units;
}

function formatSize(bytes: number): string {
  for (const [unit, size] of [['GiB', 1024 ** 3], ['MiB', 1024 ** 2], ['KiB', 1024]] as const) {
    if (bytes > 0 && bytes % size === 0) return `${bytes / size}${unit}`;
  }
  return String(bytes);
}

function getPath(tree: Tree, path: string[]): unknown {
  let node: unknown = tree;
  for (const key of path) {
    if (!node || typeof node !== 'object' || Array.isArray(node)) return undefined;
    node = (node as Tree)[key];
  }
  return node;
}

function setPath(tree: Tree, path: string[], value: unknown): void {
  let node = tree;
  for (const key of path.slice(0, -1)) {
    if (!node[key] || typeof node[key] !== 'object') node[key] = {};
    node = node[key] as Tree;
  }
  node[path[path.length - 1]!] = value;
}
