// `dr-registry auth ...`: helpers for token auth.
//   hash-password     reads a password on standard input, prints the hash for auth.users
//   secret            prints a random auth.secret
// The password comes on standard input, never as an argument (arguments show in `ps`).
import { randomBytes } from 'node:crypto';
import { hashPassword } from '../crypto/passwords.js';
import type { Command } from './command.js';

export async function authCommand(args: string[]): Promise<number> {
  switch (args[0]) {
    case 'hash-password': {
      const password = (await readStdin()).replace(/\r?\n$/, '');
      if (password === '') {
        process.stderr.write('dr-registry auth hash-password: no password on standard input\n');
        return 2;
      }
      process.stdout.write(`${await hashPassword(password)}\n`);
      return 0;
    }
    case 'secret':
      process.stdout.write(`${randomBytes(32).toString('base64url')}\n`);
      return 0;
    default:
      process.stderr.write('usage: dr-registry auth hash-password < password-file | auth secret\n');
      return 2;
  }
}

async function readStdin(): Promise<string> {
  const chunks: Buffer[] = [];
  for await (const chunk of process.stdin as AsyncIterable<Buffer>) chunks.push(chunk);
  return Buffer.concat(chunks).toString('utf8');
}

export const authCommandSpec: Command = {
  name: 'auth',
  summary: 'a password hash for auth.users (password on stdin), a new auth.secret',
  usage: `usage: dr-registry auth hash-password < password-file | auth secret

subcommands:
  hash-password   read a password on standard input, print its hash for auth.users
  secret          print a random auth.secret
`,
  subcommands: {
    'hash-password':
      'usage: dr-registry auth hash-password < password-file\n\nReads a password on standard input (never an argument: arguments show in `ps`) and prints\nthe hash to put in auth.users[].password.\n',
    secret: 'usage: dr-registry auth secret\n\nPrints a random 32-byte auth.secret (base64url).\n',
  },
  run: (args) => authCommand(args),
};
