#!/usr/bin/env node
// The command line: `dr-registry serve [--config FILE]`, `dr-registry settings`.
import { parseArgs } from 'node:util';
import { ConfigError, loadConfig, settings } from './config/index.js';
import { createLogger } from './logger.js';
import { startRegistry } from './server.js';

const USAGE = `usage: dr-registry <command> [options]

commands:
  serve [--config FILE]   run the registry (config file, then DRREG_* environment overrides)
  settings                list every setting with its environment variable and default
`;

async function main(argv: string[]): Promise<number> {
  const [command, ...rest] = argv;
  switch (command) {
    case 'serve':
      return serve(rest);
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
    const stop = (signal: string) => {
      logger.info({ signal }, 'shutting down');
      resolve();
    };
    process.once('SIGINT', stop);
    process.once('SIGTERM', stop);
  });
  const running = await startRegistry(config, logger);
  await stopped;
  await running.close();
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
