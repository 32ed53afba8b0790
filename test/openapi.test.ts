// openapi.yaml is strictly valid: Redocly's linter (the engine of `redocly lint`) with its
// recommended-strict rules, every warning an error. It runs offline on the file alone.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { createConfig, lint } from '@redocly/openapi-core';
import { describe, expect, it } from 'vitest';

async function problemsOf(file: string): Promise<string[]> {
  const config = await createConfig({ extends: ['recommended-strict'] });
  const problems = await lint({ ref: file, config });
  return problems.map((p) => `${p.ruleId}: ${p.message} at ${p.location[0]?.pointer ?? '?'}`);
}

describe('openapi.yaml', () => {
  it('passes redocly lint with the recommended-strict rules', async () => {
    expect(await problemsOf(path.resolve(import.meta.dirname, '../openapi.yaml'))).toEqual([]);
  });

  it('the linter refuses a description that YAML splits at a comma (the bug it found here)', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'drreg-openapi-'));
    try {
      const file = path.join(dir, 'broken.yaml');
      await writeFile(
        file,
        [
          'openapi: 3.1.0',
          'info: { title: t, version: "1", description: d, license: { name: MIT, identifier: MIT } }',
          'servers: [{ url: /x }]',
          'security: []',
          'paths: {}',
          'components:',
          '  schemas:',
          '    A: { type: object, properties: { n: { type: integer, description: one, two. } } }',
        ].join('\n'),
      );
      expect((await problemsOf(file)).some((p) => p.startsWith('struct: Property `two.` is not expected here'))).toBe(true);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
