// `dr-registry serve`, `stats` and `settings`: run the registry, report storage usage, list the
// settings.
import { parseArgs } from 'node:util';
import type { Command } from './command.js';

export const serveCommand: Command = {
  name: 'serve',
  summary: 'run the registry',
  usage: `usage: dr-registry serve [--config FILE]

Runs the registry: the configuration file (--config, or DRREG_CONFIG), then DRREG_* environment
variables over it (\`dr-registry settings\` lists them). Stops cleanly on SIGTERM or SIGINT.

options:
  -c, --config FILE   YAML configuration file
`,
  async run(args) {
    const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
    const [{ loadConfig }, { createLogger }, { startRegistry }] = await Promise.all([import('../config/index.js'), import('../logger.js'), import('../server.js')]);
    const config = loadConfig({ file: values.config });
    const logger = createLogger(config.log.level);
    // Listen for signals before starting, so a stop during start-up is not lost.
    const stopped = new Promise<void>((resolve) => {
      let stopping = false;
      const stop = (signal: string) => {
        if (stopping) {
          // A second signal: stop now, without waiting for the drain.
          logger.warn({ signal }, 'stopping at once');
          process.exit(1);
        }
        stopping = true;
        logger.info({ signal }, 'shutting down');
        resolve();
      };
      process.on('SIGINT', stop);
      process.on('SIGTERM', stop);
    });
    const running = await startRegistry(config, logger);
    await stopped;
    await running.close();
    return 0;
  },
};

export const statsCommand: Command = {
  name: 'stats',
  summary: 'logical bytes per repository against bytes stored (dedup)',
  usage: `usage: dr-registry stats [--config FILE] [--json]

Reads the store of the configuration directly (safe while registries serve it) and prints, per
repository, the bytes it links, then the bytes stored once and the dedup ratio.

options:
  -c, --config FILE   YAML configuration file
      --json          print JSON instead of a table
`,
  async run(args) {
    const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } } });
    const [{ loadConfig }, { Registry }, { storageUsage }, { registryOptions }, { createStore }] = await Promise.all([
      import('../config/index.js'),
      import('../registry/registry.js'),
      import('../registry/usage.js'),
      import('../server.js'),
      import('../storage/index.js'),
    ]);
    const config = loadConfig({ file: values.config });
    const store = await createStore(config);
    await store.check();
    const usage = await storageUsage(new Registry(store, registryOptions(config)));
    await store.close?.();
    if (values.json) {
      console.log(JSON.stringify(usage, null, 2));
      return 0;
    }
    const mib = (n: number) => (n / 1024 / 1024).toFixed(1).padStart(12);
    console.log(`${'repository'.padEnd(40)} ${'logical MiB'.padStart(12)} ${'blobs'.padStart(7)} ${'manifests'.padStart(9)}`);
    for (const r of usage.repositories) {
      console.log(`${r.name.padEnd(40)} ${mib(r.logicalBytes)} ${String(r.blobs).padStart(7)} ${String(r.manifests).padStart(9)}`);
    }
    const ratio = usage.uniqueBytes > 0 ? usage.logicalBytes / usage.uniqueBytes : 1;
    console.log(`logical ${mib(usage.logicalBytes).trim()} MiB, distinct blobs ${mib(usage.uniqueBytes).trim()} MiB, stored ${mib(usage.storedBytes).trim()} MiB, dedup ratio ${ratio.toFixed(2)}`);
    return 0;
  },
};

export const settingsCommand: Command = {
  name: 'settings',
  summary: 'list every setting with its environment variable and default',
  usage: `usage: dr-registry settings

Prints one line per setting: its YAML path, its environment variable and its default (JSON).
`,
  async run(args) {
    parseArgs({ args, options: {} });
    const { settings } = await import('../config/index.js');
    for (const s of settings()) console.log(`${s.path.join('.')}\t${s.env}\t${JSON.stringify(s.default)}`);
    return 0;
  },
};
