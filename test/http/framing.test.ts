// Content-Length is checked once, for every route: anything but one decimal length a JavaScript
// number holds exactly is refused with 400 SIZE_INVALID before a handler runs (it used to be read
// as "no length": the body ignored and the upload answered 202/201). What Node's parser refuses
// itself gets the same OCI error body.
import net from 'node:net';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { sha256 } from './client.js';

function send(port: number, head: string, body = ''): Promise<{ status: number; body: string; closed: boolean }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect(port, '127.0.0.1', () => socket.write(`${head}\r\n\r\n${body}`));
    let text = '';
    socket.setEncoding('latin1');
    socket.on('data', (c: string) => {
      text += c;
      const end = text.indexOf('\r\n\r\n');
      const length = /content-length: (\d+)/i.exec(text)?.[1];
      if (end >= 0 && length !== undefined && text.length >= end + 4 + Number(length)) socket.end();
    });
    socket.on('error', reject);
    socket.on('close', () => resolve({ status: Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1] ?? 0), body: text.slice(text.indexOf('\r\n\r\n') + 4), closed: /connection: close/i.test(text) }));
  });
}

describe('Content-Length', () => {
  let registry: TestRegistry;
  const hello = Buffer.from('hello');
  beforeAll(async () => {
    registry = await startTestRegistry({ env: { DRREG_ADMIN_TOKEN: 'framing-admin-token-0123456789' } });
  });
  afterAll(() => registry?.stop());

  const code = (body: string) => (JSON.parse(body) as { errors: Array<{ code: string }> }).errors[0]!.code;

  it('above 2^53 is refused on every route, and nothing is stored', async () => {
    const session = await fetch(`${registry.url}/v2/fr/app/blobs/uploads/`, { method: 'POST' });
    const location = session.headers.get('location')!;
    const targets = [
      `POST /v2/fr/app/blobs/uploads/?digest=${sha256(hello)}`,
      `PATCH ${location}`,
      `PUT ${location}?digest=${sha256(hello)}`,
      'PUT /v2/fr/app/manifests/latest',
      'POST /admin/v1/gc',
      'GET /auth/token',
      'GET /healthz',
      'GET /v2/',
      'POST /nowhere',
    ];
    for (const lengthValue of ['9007199254740992', '9007199254740993', '18446744073709551615', '99999999999999999']) {
      for (const target of targets) {
        const r = await send(registry.port, `${target} HTTP/1.1\r\nHost: x\r\nContent-Type: application/octet-stream\r\nContent-Length: ${lengthValue}`, hello.toString());
        expect(r.status, `${target} ${lengthValue}`).toBe(400);
        expect(code(r.body)).toBe('SIZE_INVALID');
        expect(r.closed).toBe(true);
      }
    }
    expect((await fetch(`${registry.url}/v2/fr/app/blobs/${sha256(hello)}`, { method: 'HEAD' })).status).toBe(404);
    const status = await fetch(`${registry.url}${location}`);
    expect(status.headers.get('range')).toBe('0-0'); // the session received nothing
  });

  it('malformed, repeated or conflicting lengths get the OCI error body too', async () => {
    for (const header of ['Content-Length: 5\r\nContent-Length: 5', 'Content-Length: 5\r\nContent-Length: 6', 'Content-Length: +5', 'Content-Length: 0x5', 'Content-Length: -1', 'Content-Length: 5, 5', 'Content-Length: 5\r\nTransfer-Encoding: chunked']) {
      const r = await send(registry.port, `POST /v2/fr/app/blobs/uploads/?digest=${sha256(hello)} HTTP/1.1\r\nHost: x\r\n${header}`, hello.toString());
      expect(r.status, header).toBe(400);
      expect(code(r.body), header).toBe('SIZE_INVALID');
    }
    const garbage = await send(registry.port, 'GARBAGE\u0001 / HTTP/1.1\r\nHost: x');
    expect(garbage.status).toBe(400);
    expect(code(garbage.body)).toBe('BAD_REQUEST');
  });

  it('an exact length is still accepted', async () => {
    const r = await send(registry.port, `POST /v2/fr/app/blobs/uploads/?digest=${sha256(hello)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Length: 5`, hello.toString());
    expect(r.status).toBe(201);
  });
});
