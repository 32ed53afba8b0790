// storage.deadlines.maxInFlight bounds the store calls in flight so a hung store cannot pile them
// up. A streaming write counts for as long as its client sends, so before the fix a client with
// push rights that opened maxInFlight uploads and trickled bytes took every slot: every other
// request, pulls and restores included, got 503 for as long as it cared to keep them open.
// Streaming writes now hold at most half the slots; the rest stay for everything else.
import { randomBytes } from 'node:crypto';
import { readdir } from 'node:fs/promises';
import http from 'node:http';
import path from 'node:path';
import { afterAll, beforeAll, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushBlob } from '../http/client.js';

const MAX_IN_FLIGHT = 4;
let registry: TestRegistry;
const held: http.ClientRequest[] = [];

beforeAll(async () => {
  registry = await startTestRegistry({ env: { DRREG_STORAGE_DEADLINES_MAXINFLIGHT: String(MAX_IN_FLIGHT) } });
});
afterAll(async () => {
  for (const req of held) req.destroy();
  await registry?.stop();
});

it('slow uploads cannot take every store slot: a pull still answers while they are held open', async () => {
  const blob = randomBytes(1024);
  const digest = await pushBlob(registry.url, 'dr/app', blob);

  // The attack: as many uploads as there are slots, each sending one byte and then holding on.
  let refused = 0;
  for (let i = 0; i < MAX_IN_FLIGHT; i++) {
    const start = await fetch(`${registry.url}/v2/dr/slow/blobs/uploads/`, { method: 'POST' });
    expect(start.status).toBe(202);
    const location = new URL(start.headers.get('location')!, registry.url);
    const req = http.request(location, { method: 'PATCH', headers: { 'Content-Type': 'application/octet-stream' } });
    req.on('response', (res) => {
      if (res.statusCode === 503) refused++;
      res.resume();
    });
    req.on('error', () => undefined);
    req.write(Buffer.from('x'));
    held.push(req);
  }
  // Wait until each upload is either writing to the store (its temp file exists) or refused.
  const tmp = path.join(registry.root, '.tmp');
  const writing = async () => (await readdir(tmp).catch(() => [])).length;
  const deadline = Date.now() + 10_000;
  while ((await writing()) + refused < MAX_IN_FLIGHT && Date.now() < deadline) await new Promise((r) => setTimeout(r, 20)); // polling the condition
  expect((await writing()) + refused).toBe(MAX_IN_FLIGHT);

  const head = await fetch(`${registry.url}/v2/dr/app/blobs/${digest}`, { method: 'HEAD' });
  expect(head.status).toBe(200);
  const pull = await fetch(`${registry.url}/v2/dr/app/blobs/${digest}`);
  expect(pull.status).toBe(200);
  expect(Buffer.from(await pull.arrayBuffer()).equals(blob)).toBe(true);
});
