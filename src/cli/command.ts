// What a subcommand of `dr-registry` is, and the errors the CLI reports as one line with an exit
// code of their own (scripts at the recovery site tell "unreachable" from "refused" from "no such
// point" by the code, and operators read the line).
import { parseArgs, type ParseArgsConfig } from 'node:util';

type ParsedResults<C extends ParseArgsConfig> = ReturnType<typeof parseArgs<C>>;

export interface Command {
  /** The word after `dr-registry`. */
  name: string;
  /** One line for the command list. */
  summary: string;
  /** The whole help text of the command (`dr-registry NAME --help`). */
  usage: string;
  /** Help text per subcommand (`dr-registry NAME SUB --help`); the command's usage otherwise. */
  subcommands?: Record<string, string>;
  run(args: string[]): Promise<number>;
}

/** Exit codes: one per kind of failure. */
export const EXIT = {
  ok: 0,
  /** Anything not listed below: the server answered an error, a store failed. */
  failed: 1,
  /** Wrong arguments or options. */
  usage: 2,
  /** The registry at --url could not be reached. */
  unreachable: 3,
  /** The registry refused the credentials (401) or the right (403). */
  unauthorized: 4,
  /** No such repository, recovery point or endpoint (404). */
  notFound: 5,
  /** The configuration is invalid. */
  config: 6,
  /** verify found damaged blobs. */
  damaged: 7,
  /** status: a watched system is out of its recovery point objective (for cron and monitoring). */
  outOfRpo: 8,
} as const;

export class CliError extends Error {
  override readonly name = 'CliError';
  constructor(
    message: string,
    readonly exitCode: number = EXIT.failed,
  ) {
    super(message);
  }
}

export const usageError = (message: string) => new CliError(message, EXIT.usage);

/** True when the arguments ask for help anywhere (`-h`, `--help`), before a `--`. */
export function wantsHelp(args: string[]): boolean {
  for (const a of args) {
    if (a === '--') return false;
    if (a === '--help' || a === '-h') return true;
  }
  return false;
}

/** The help text for `args` (a subcommand's when the first argument names one). */
export function helpFor(command: Command, args: string[]): string {
  const sub = args[0] && !args[0].startsWith('-') ? command.subcommands?.[args[0]] : undefined;
  return sub ?? command.usage;
}

type Options = NonNullable<ParseArgsConfig['options']>;

/**
 * `SUB [options] positionals...` of a client command (volume, system): the subcommand and its
 * parsed arguments, or the exit code after printing the usage (help asked: 0, wrong: 2).
 */
export function subcommandArgs<T extends Options>(
  argv: string[],
  subcommands: readonly string[],
  options: T,
  usage: string,
  positionalsOk: (count: number) => boolean,
): { sub: string; values: ParsedResults<{ args: string[]; options: T; allowPositionals: true }>['values']; positionals: string[] } | number {
  const [sub, ...args] = argv;
  if (sub === undefined || !subcommands.includes(sub)) {
    process.stderr.write(usage);
    return sub === undefined || sub === '-h' || sub === '--help' ? EXIT.ok : EXIT.usage;
  }
  let parsed;
  try {
    parsed = parseArgs({ args, options, allowPositionals: true });
  } catch (err) {
    process.stderr.write(`${(err as Error).message}\n\n${usage}`);
    return EXIT.usage;
  }
  const { values, positionals } = parsed;
  if ((values as { help?: boolean }).help || !positionalsOk(positionals.length)) {
    process.stderr.write(usage);
    return (values as { help?: boolean }).help ? EXIT.ok : EXIT.usage;
  }
  return { sub, values, positionals };
}
