// Filesystem reads of large blobs reuse their 2 MiB read buffers across requests. A pull of many
// layers opens one stream per layer, and a fresh buffer per chunk cost the kernel its page faults
// and the collector its late frees: 0.8 CPU s per GB against 0.5 for one large blob (docs/memory.md).
// The buffers are shared by every stream of the process, so concurrent pulls must still each get
// exactly their own bytes.
import { randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { READ_AHEAD, READ_CHUNK, readBuffersAllocated } from '../../src/storage/file-io.js';
import { pushBlob, sha256 } from '../http/client.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';

describe('filesystem read buffers', () => {
  let registry: TestRegistry;
  const blobs: Array<{ digest: string; bytes: Buffer }> = [];

  beforeAll(async () => {
    registry = await startTestRegistry();
    for (let i = 0; i < 12; i++) {
      // Whole chunks and a tail, so each pull reads several buffers' worth.
      const bytes = randomBytes(3 * READ_CHUNK + 12345);
      blobs.push({ digest: await pushBlob(registry.url, 'layers/app', bytes), bytes });
    }
  }, 60_000);
  afterAll(async () => {
    await registry?.stop();
  });

  const pull = async (digest: string) => {
    const res = await fetch(`${registry.url}/v2/layers/app/blobs/${digest}`);
    expect(res.status).toBe(200);
    return Buffer.from(await res.arrayBuffer());
  };

  it('are allocated once for a pull of many layers, not once per layer', async () => {
    const before = readBuffersAllocated();
    for (const blob of blobs) expect(sha256(await pull(blob.digest))).toBe(blob.digest);
    // One stream's read-ahead plus the chunk on the socket; 12 layers before: 12 times that.
    expect(readBuffersAllocated() - before).toBeLessThanOrEqual(READ_AHEAD + 1);
  });

  it('carry only their own blob when pulls run at once', async () => {
    for (let round = 0; round < 3; round++) {
      const bodies = await Promise.all(blobs.map((blob) => pull(blob.digest)));
      bodies.forEach((body, i) => expect(body.equals(blobs[i]!.bytes)).toBe(true));
    }
  });

  it('serve ranges of a pooled buffer exactly', async () => {
    const blob = blobs[0]!;
    const start = READ_CHUNK - 7;
    const end = 2 * READ_CHUNK + 9;
    const res = await fetch(`${registry.url}/v2/layers/app/blobs/${blob.digest}`, { headers: { Range: `bytes=${start}-${end}` } });
    expect(res.status).toBe(206);
    expect(Buffer.from(await res.arrayBuffer()).equals(blob.bytes.subarray(start, end + 1))).toBe(true);
  });
});
