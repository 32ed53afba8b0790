#!/usr/bin/env node
// The command line: serve, stats, prune, gc, keys, auth, settings.
import { parseArgs } from 'node:util';
import { auditCommand } from './cli/audit.js';
import { authCommand } from './cli/auth.js';
import { keysCommand } from './cli/keys.js';
import { gcCommand, pruneCommand } from './cli/maintenance.js';
import { ConfigError, loadConfig, settings } from './config/index.js';
import { createLogger } from './logger.js';
import { Registry } from './registry/registry.js';
import { storageUsage } from './registry/usage.js';
import { registryOptions, startRegistry } from './server.js';
import { createStore } from './storage/index.js';

const USAGE = `usage: dr-registry <command> [options]

commands:
  serve [--config FILE]   run the registry (config file, then DRREG_* environment overrides)
  stats [--config FILE] [--json]
                          logical bytes per repository against bytes stored (dedup)
  prune [--dry-run] [--config FILE] [--json]
                          apply the retention policies (or show what they drop), and the bytes freed
  gc [--dry-run] [--config FILE] [--json]
                          online garbage collection: removes what no kept recovery point needs
  keys generate --keyring FILE | status | rotate | retire ID | encrypt-store
                          manage encryption keys; encrypt a plaintext store online (docs/encryption.md)
  auth hash-password | secret
                          a password hash for auth.users (password on stdin), a new auth.secret
  audit list [--since T] [--action A] [--actor U] [--repository R] [--json] | verify
                          the audit trail, and whether any record was edited or removed (docs/audit.md)
  settings                list every setting with its environment variable and default
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
    case 'stats':
      return stats(rest);
    case 'keys':
      return keysCommand(rest);
    case 'auth':
      return authCommand(rest);
    case 'audit':
      return auditCommand(rest);
    case 'prune':
      return pruneCommand(rest);
    case 'gc':
      return gcCommand(rest);
    case 'settings':
      for (const s of settings()) console.log(`${s.path.join('.')}\t${s.env}\t${JSON.stringify(s.default)}`);
      return 0;
    case undefined:
    case '-h':
    case '--help':
    case 'help':
      process.stdout.write(USAGE);
      return command === undefined ? 2 : 0;
    default:
      process.stderr.write(`unknown command: ${command}\n\n${USAGE}`);
      return 2;
  }
}

async function serve(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' } } });
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
}

async function stats(args: string[]): Promise<number> {
  const { values } = parseArgs({ args, options: { config: { type: 'string', short: 'c' }, json: { type: 'boolean' } } });
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
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    if (err instanceof ConfigError) process.stderr.write(`dr-registry: ${err.message}\n`);
    else process.stderr.write(`dr-registry: start-up failed: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(1);
  },
);
