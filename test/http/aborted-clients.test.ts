// A client that goes away mid-upload or mid-download is not a server error: the request is logged
// once (the request line, aborted: true, at info level), its work ending is noted once at debug
// level, nothing is logged at warn or error level, and no stack trace is written.
import { randomBytes } from 'node:crypto';
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { pushBlob, sha256 } from './client.js';

async function until(what: string, condition: () => boolean, ms = 15_000): Promise<void> {
  const deadline = Date.now() + ms;
  while (!condition()) {
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 20));
  }
}

/** Sends a request head and `send` body bytes, reads `readBytes` of the answer (if any), then hangs up. */
function abortAfter(port: number, head: string, send: Buffer, readBytes = 0): Promise<void> {
  return new Promise((resolve) => {
    const socket = net.connect(port, '127.0.0.1', () => {
      socket.write(`${head}\r\n\r\n`);
      socket.write(send, () => {
        if (readBytes === 0) setTimeout(() => socket.destroy(), 200);
      });
    });
    let got = 0;
    socket.on('data', (c: Buffer) => {
      got += c.length;
      if (readBytes > 0 && got >= readBytes) socket.destroy();
    });
    socket.on('close', () => resolve());
    socket.on('error', () => resolve());
  });
}

describe('clients that go away', () => {
  let registry: TestRegistry;
  const lines: Array<Record<string, unknown>> = [];
  let bigDigest: string;

  beforeAll(async () => {
    registry = await startTestRegistry({ logLines: lines });
    bigDigest = await pushBlob(registry.url, 'ab/app', randomBytes(24 * 1024 * 1024));
  });
  afterAll(() => registry?.stop());

  const requestLines = (method: string, fragment: string) => lines.filter((l) => l.msg === 'request' && l.method === method && String(l.path).includes(fragment));

  it('mid-upload and mid-download: one info line each, nothing at warn or error, no stack', async () => {
    lines.length = 0;
    const chunk = randomBytes(1024 * 1024);
    // A streamed PATCH with a declared length, a chunked PATCH, a monolithic POST, a final PUT.
    const session = async () => (await fetch(`${registry.url}/v2/ab/app/blobs/uploads/`, { method: 'POST' })).headers.get('location')!;
    const s1 = await session();
    await abortAfter(registry.port, `PATCH ${s1} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${64 * 1024 * 1024}`, chunk);
    const s2 = await session();
    await abortAfter(registry.port, `PATCH ${s2} HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked`, Buffer.concat([Buffer.from(`${chunk.length.toString(16)}\r\n`), chunk, Buffer.from('\r\n')]));
    await abortAfter(registry.port, `POST /v2/ab/app/blobs/uploads/?digest=${sha256('x')} HTTP/1.1\r\nHost: x\r\nContent-Length: ${64 * 1024 * 1024}`, chunk);
    const s3 = await session();
    await abortAfter(registry.port, `PUT ${s3}?digest=${sha256('x')} HTTP/1.1\r\nHost: x\r\nContent-Length: ${64 * 1024 * 1024}`, chunk);
    // A download cut after its first bytes, a ranged one too.
    await abortAfter(registry.port, `GET /v2/ab/app/blobs/${bigDigest} HTTP/1.1\r\nHost: x`, Buffer.alloc(0), 256 * 1024);
    await abortAfter(registry.port, `GET /v2/ab/app/blobs/${bigDigest} HTTP/1.1\r\nHost: x\r\nRange: bytes=1000-20000000`, Buffer.alloc(0), 256 * 1024);

    await until('every aborted request logged', () => requestLines('PATCH', '/blobs/uploads/').length === 2 && requestLines('GET', bigDigest).length === 2 && requestLines('POST', '?').length + requestLines('POST', 'uploads').length >= 1 && requestLines('PUT', '/blobs/uploads/').length === 1);
    // Each aborted request's own work ends with one debug line; once all are there, nothing of
    // these requests is left running.
    const aborted = lines.filter((l) => l.msg === 'request' && l.aborted === true).map((l) => l.requestId);
    expect(aborted.length).toBeGreaterThanOrEqual(6);
    await until('each abort noted', () => aborted.every((id) => lines.some((l) => l.msg === 'client went away' && l.requestId === id)));
    for (const l of requestLines('GET', bigDigest)) expect(l.aborted).toBe(true);
    for (const l of requestLines('PATCH', '/blobs/uploads/')) expect(l.aborted).toBe(true);
    const loud = lines.filter((l) => Number(l.level) >= 40);
    expect(loud).toEqual([]);
    expect(lines.filter((l) => JSON.stringify(l).includes('"stack"'))).toEqual([]);
    // Once each: one request line (info) and one debug line per aborted request.
    for (const level of [30, 20]) {
      const ids = lines.filter((l) => Number(l.level) === level && l.requestId).map((l) => l.requestId);
      expect(new Set(ids).size).toBe(ids.length);
    }
  });
});
