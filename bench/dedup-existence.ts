// What a HEAD miss costs, and whether its time tells "held where you may not read" from "absent"
// (issue 10, item 7; docs/dedup.md): 300 repositories, token auth, one caller who may not read
// the repository holding the blob. Median and 90th percentile of each, interleaved.
//   npm run build && npx tsx bench/dedup-existence.ts [--repositories 300] [--rounds 200]
import { createHash, randomBytes } from 'node:crypto';
import { parseArgs } from 'node:util';
import { hashPassword } from '../src/crypto/passwords.js';
import { startOurs } from './lib.js';

const { values } = parseArgs({ options: { repositories: { type: 'string', default: '300' }, rounds: { type: 'string', default: '200' } } });
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;
const basic = (user: string) => `Basic ${Buffer.from(`${user}:pw`).toString('base64')}`;

const password = await hashPassword('pw', { logN: 10, r: 8, p: 1 });
const registry = await startOurs('dedup-existence', {
  DRREG_AUTH_SECRET: randomBytes(32).toString('base64url'),
  DRREG_AUTH_USERS: JSON.stringify(['alice', 'bob'].map((name) => ({ name, password }))),
  DRREG_AUTH_ACCESS: JSON.stringify([
    { repositories: 'a/*', users: ['alice'], actions: ['pull', 'push'] },
    { repositories: 'b/*', users: ['bob'], actions: ['pull', 'push'] },
  ]),
});
try {
  const token = async (user: string, repo: string) => {
    const r = await fetch(`${registry.url}/auth/token?service=dr-registry&scope=repository:${repo}:pull,push`, { headers: { Authorization: basic(user) } });
    return ((await r.json()) as { token: string }).token;
  };
  const push = async (repo: string, blob: Buffer) => {
    const r = await fetch(`${registry.url}/v2/${repo}/blobs/uploads/?digest=${sha(blob)}`, { method: 'POST', body: blob, headers: { Authorization: `Bearer ${await token('alice', repo)}` } });
    if (r.status !== 201) throw new Error(`push: ${r.status}`);
  };
  const secret = randomBytes(1000);
  for (let i = 0; i < Number(values.repositories); i++) await push(`a/r${i}`, i === 0 ? secret : Buffer.from(`filler ${i}`));
  const bob = await token('bob', 'b/app');
  const head = async (digest: string) => {
    const t = performance.now();
    const r = await fetch(`${registry.url}/v2/b/app/blobs/${digest}`, { method: 'HEAD', headers: { Authorization: `Bearer ${bob}` } });
    if (r.status !== 404) throw new Error(`expected 404, got ${r.status}`);
    return performance.now() - t;
  };
  const held: number[] = [];
  const absent: number[] = [];
  for (let i = 0; i < Number(values.rounds); i++) {
    held.push(await head(sha(secret)));
    absent.push(await head(sha(randomBytes(1000))));
  }
  const q = (xs: number[], p: number) => [...xs].sort((x, y) => x - y)[Math.floor(p * (xs.length - 1))]!.toFixed(2);
  console.log(`${values.repositories} repositories, ${values.rounds} HEADs each, caller without rights on the holder`);
  console.log(`held elsewhere: median ${q(held, 0.5)} ms, p90 ${q(held, 0.9)} ms`);
  console.log(`absent:         median ${q(absent, 0.5)} ms, p90 ${q(absent, 0.9)} ms`);
} finally {
  await registry.stop();
}
