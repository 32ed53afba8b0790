// A streamed response carries more than ten 'close' listeners, each removed when it closes: ours
// (in-flight tracking, request log, metrics, the request's abort signal, a recycling body) and
// koa's (on-finished, the body's pipeline). Node's default limit of ten then warns of a leak that
// is not one, once per response: a line on stderr for every pull. No pull may warn.
import { createHash, randomBytes } from 'node:crypto';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { encryptedFactory, filesystemFactory, s3Factory } from '../helpers/stores.js';

describe.each([filesystemFactory(), encryptedFactory(filesystemFactory()), s3Factory()])('pulls on $name', ({ make }) => {
  let registry: TestRegistry;
  let cleanup: () => Promise<void>;
  const warnings: string[] = [];
  const onWarning = (w: Error) => {
    if (w.name === 'MaxListenersExceededWarning') warnings.push(w.message);
  };

  beforeAll(async () => {
    const made = await make();
    cleanup = made.cleanup;
    registry = await startTestRegistry({ store: made.store });
    process.on('warning', onWarning);
  });
  afterAll(async () => {
    process.off('warning', onWarning);
    await registry?.stop();
    await cleanup?.();
  });

  it('warn of no listener leak', async () => {
    const blob = randomBytes(3 * 1024 * 1024 + 17);
    const digest = `sha256:${createHash('sha256').update(blob).digest('hex')}`;
    const put = await fetch(`${registry.url}/v2/listeners/app/blobs/uploads/?digest=${digest}`, { method: 'POST', body: blob, headers: { 'content-type': 'application/octet-stream' } });
    expect(put.status).toBe(201);
    for (let i = 0; i < 5; i++) {
      const whole = await fetch(`${registry.url}/v2/listeners/app/blobs/${digest}`);
      expect(Buffer.from(await whole.arrayBuffer()).equals(blob)).toBe(true);
      const part = await fetch(`${registry.url}/v2/listeners/app/blobs/${digest}`, { headers: { Range: 'bytes=100-200000' } });
      expect(part.status).toBe(206);
      expect((await part.arrayBuffer()).byteLength).toBe(199_901);
    }
    // Warnings are emitted on the next tick of the process that added the listener.
    await new Promise((resolve) => setImmediate(resolve));
    expect(warnings).toEqual([]);
  });
});
