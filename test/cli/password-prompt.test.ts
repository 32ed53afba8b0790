// `--user` without DRREG_PASSWORD asks for the password on the terminal, without echoing it: the
// CLI runs in a real terminal (tmux), the test types as a person would and reads the screen.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { hashPassword } from '../../src/crypto/passwords.js';
import { waitFor } from '../helpers/cli.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

const run = promisify(execFile);
const MAIN = path.resolve(import.meta.dirname, '../../src/main.ts');
const SESSION = `drreg-prompt-${process.pid}`;
const PASSWORD = 'typed at 3am';

describe('dr-registry --user on a terminal', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry({
      env: {
        DRREG_AUTH_SECRET: 'a-secret-of-at-least-32-characters-0123',
        DRREG_AUTH_USERS: JSON.stringify([{ name: 'ops', password: await hashPassword(PASSWORD) }]),
        DRREG_AUTH_ADMINS: JSON.stringify(['ops']),
      },
    });
  });
  afterAll(async () => {
    await run('tmux', ['kill-session', '-t', SESSION]).catch(() => {});
    await registry?.stop();
  });

  it('asks for the password without showing it, then answers', async () => {
    const command = `${process.execPath} --import tsx ${MAIN} status --user ops --url ${registry.url}; echo "exit=$?"; sleep 60`;
    await run('tmux', ['new-session', '-d', '-s', SESSION, '-x', '120', '-y', '20', '-c', path.resolve(import.meta.dirname, '../..'), command]);
    const screen = async () => (await run('tmux', ['capture-pane', '-p', '-t', SESSION])).stdout;
    await waitFor(async () => ((await screen()).includes('password for ops:') ? true : undefined), 60_000, 'the password prompt');
    await run('tmux', ['send-keys', '-t', SESSION, '-l', PASSWORD]);
    await run('tmux', ['send-keys', '-t', SESSION, 'Enter']);
    const shown = await waitFor(async () => {
      const text = await screen();
      return text.includes('exit=') ? text : undefined;
    }, 60_000, 'the command to finish');
    expect(shown).toContain('exit=0');
    expect(shown).toMatch(/0 of 0 watched system\(s\) out of RPO/);
    expect(shown).not.toContain(PASSWORD);
  }, 150_000);
});
