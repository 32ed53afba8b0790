// `dr-registry status --help` lists every exit code the command can give, as `verify --help` does
// (its 7): a cron job or a monitoring check written from the usage must know that 8 means out of RPO.
import { describe, expect, it } from 'vitest';
import { EXIT } from '../../src/cli/command.js';
import { runCli } from '../helpers/cli.js';

describe('dr-registry status --help', () => {
  it('names exit code 8 in its exit codes line', async () => {
    const help = await runCli(['status', '--help']);
    expect(help.code).toBe(0);
    const codes = /^exit codes:[\s\S]*$/m.exec(help.stdout)?.[0] ?? '';
    expect(codes).toMatch(new RegExp(`\\b${EXIT.outOfRpo} [a-z]`));
    expect(codes).toMatch(/out of (its )?RPO/);
  });
});
