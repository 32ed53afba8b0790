#!/usr/bin/env node
// The command line: a table of commands (src/cli/commands.ts), `--help` on each of them and on
// their subcommands, and one line per error with an exit code per kind (src/cli/command.ts).
// Commands load what they need when they run, so help and the admin API client start fast.
import { CliError, EXIT, helpFor, wantsHelp, type Command } from './cli/command.js';
import { COMMANDS } from './cli/commands.js';

function usage(commands: readonly Command[]): string {
  const width = Math.max(...commands.map((c) => c.name.length)) + 2;
  return `usage: dr-registry <command> [options]

commands:
${commands.map((c) => `  ${c.name.padEnd(width)}${c.summary}`).join('\n')}

\`dr-registry <command> --help\` tells more about each.
`;
}

async function main(argv: string[]): Promise<number> {
  const [name, ...rest] = argv;
  if (name === undefined || name === 'help' || name === '--help' || name === '-h') {
    const command = name === 'help' && rest[0] ? COMMANDS.find((c) => c.name === rest[0]) : undefined;
    process.stdout.write(command ? helpFor(command, rest.slice(1)) : usage(COMMANDS));
    return name === undefined ? EXIT.usage : EXIT.ok;
  }
  const command = COMMANDS.find((c) => c.name === name);
  if (!command) {
    process.stderr.write(`unknown command: ${name}\n\n${usage(COMMANDS)}`);
    return EXIT.usage;
  }
  if (wantsHelp(rest)) {
    process.stdout.write(helpFor(command, rest));
    return EXIT.ok;
  }
  try {
    return await command.run(rest);
  } catch (err) {
    return report(command, err);
  }
}

/** One line (config errors: one per bad key) and the exit code of the kind of failure. */
function report(command: Command, err: unknown): number {
  const prefix = `dr-registry ${command.name}`;
  if (err instanceof CliError) {
    process.stderr.write(`${prefix}: ${err.message}\n`);
    return err.exitCode;
  }
  if ((err as Error)?.name === 'ConfigError') {
    process.stderr.write(`${prefix}: ${(err as Error).message}\n`);
    return EXIT.config;
  }
  const code = (err as { code?: unknown })?.code;
  if (typeof code === 'string' && code.startsWith('ERR_PARSE_ARGS_')) {
    process.stderr.write(`${prefix}: ${(err as Error).message}\n(see dr-registry ${command.name} --help)\n`);
    return EXIT.usage;
  }
  process.stderr.write(`${prefix}: ${(err as Error)?.message ?? String(err)}\n`);
  return EXIT.failed;
}

main(process.argv.slice(2)).then(
  (code) => process.exit(code),
  (err: unknown) => {
    process.stderr.write(`dr-registry: ${(err as Error)?.message ?? String(err)}\n`);
    process.exit(EXIT.failed);
  },
);
