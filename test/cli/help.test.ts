// `--help` on every command and subcommand (and `-h`, and `help NAME`): usage on stdout, exit 0.
import { describe, expect, it } from 'vitest';
import { COMMANDS } from '../../src/cli/commands.js';
import { runCli, type CliResult } from '../helpers/cli.js';

/** Runs the CLI over many argument lists, a few child processes at a time. */
async function runAll(argLists: string[][]): Promise<CliResult[]> {
  const results: CliResult[] = new Array(argLists.length);
  let next = 0;
  const worker = async () => {
    while (next < argLists.length) {
      const i = next++;
      results[i] = await runCli(argLists[i]!);
    }
  };
  await Promise.all(Array.from({ length: 4 }, worker));
  return results;
}

describe('dr-registry --help', () => {
  it('lists every command', async () => {
    const [top, bare] = await runAll([['--help'], []]);
    expect(top!.code).toBe(0);
    for (const c of COMMANDS) expect(top!.stdout).toMatch(new RegExp(`^  ${c.name}\\s+${c.summary.replace(/[()]/g, '\\$&')}$`, 'm'));
    expect(bare!.code).toBe(2); // no command: usage, and a usage error
    expect(bare!.stdout).toBe(top!.stdout);
  });

  it('works on every command and every subcommand', async () => {
    const cases: Array<{ args: string[]; expected: string }> = [];
    for (const c of COMMANDS) {
      cases.push({ args: [c.name, '--help'], expected: c.usage });
      cases.push({ args: [c.name, '-h'], expected: c.usage });
      for (const [sub, text] of Object.entries(c.subcommands ?? {})) {
        cases.push({ args: [c.name, sub, '--help'], expected: text });
      }
    }
    cases.push({ args: ['help', 'points', 'restore'], expected: COMMANDS.find((c) => c.name === 'points')!.subcommands!.restore! });
    const results = await runAll(cases.map((c) => c.args));
    results.forEach((r, i) => {
      const { args, expected } = cases[i]!;
      expect(r.code, args.join(' ')).toBe(0);
      expect(r.stdout, args.join(' ')).toBe(expected);
      expect(expected, args.join(' ')).toMatch(/^usage: dr-registry /);
    });
    // The commands the recovery site needs are all there.
    for (const name of ['serve', 'stats', 'prune', 'gc', 'keys', 'auth', 'settings', 'config', 'status', 'points', 'verify']) {
      expect(COMMANDS.map((c) => c.name)).toContain(name);
    }
  }, 300_000);
});
