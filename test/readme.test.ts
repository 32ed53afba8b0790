// README is the operator's reference: it must document every setting the code accepts.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { settings } from '../src/config/index.js';

describe('README', () => {
  const readme = readFileSync(path.resolve(__dirname, '../README.md'), 'utf8');

  it('documents every setting with its environment variable', () => {
    for (const s of settings()) {
      expect(readme, s.path.join('.')).toContain(`| \`${s.path.join('.')}\` | \`${s.env}\` |`);
    }
  });

  it('starts with the command that runs the registry and the one that runs the tests', () => {
    const firstBlock = /```sh\n([\s\S]*?)```/.exec(readme)?.[1] ?? '';
    expect(firstBlock).toContain('npm start');
    expect(firstBlock).toContain('npm test');
    // .ci/run must call exactly the test command written in README.
    const ci = readFileSync(path.resolve(__dirname, '../.ci/run'), 'utf8');
    const testCommand = firstBlock.split('\n').find((l) => l.includes('npm test'))!.split('#')[0]!.trim();
    expect(ci).toContain(testCommand);
  });
});
