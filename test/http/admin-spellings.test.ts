// The admin guard cannot be skipped: every operation of openapi.yaml, under many spellings of its
// path (case, trailing and doubled slashes, percent-escapes, dot segments, query strings, absolute
// URLs) and with every method, unauthenticated, is never answered 2xx and changes nothing. With
// the token, each operation has one spelling. With the admin API off, every spelling gets a JSON
// error saying how to turn it on. Requests are written byte for byte on a socket: fetch and
// http.request would normalise or refuse some of these paths.
import { readFileSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import YAML from 'yaml';
import { mayReachAdmin } from '../../src/http/admin/mount.js';
import { startTestRegistry, type TestRegistry } from '../helpers/registry.js';
import { OCI_MANIFEST, pushImage, putManifest } from './client.js';

const spec = YAML.parse(readFileSync(path.resolve(import.meta.dirname, '../../openapi.yaml'), 'utf8')) as {
  servers: Array<{ url: string }>;
  paths: Record<string, Record<string, unknown>>;
};
const BASE = spec.servers[0]!.url;
const OPERATIONS = Object.entries(spec.paths).flatMap(([p, ops]) => Object.keys(ops).map((m) => ({ method: m.toUpperCase(), path: `${BASE}${p}` })));
const METHODS = ['GET', 'HEAD', 'POST', 'PUT', 'DELETE', 'PATCH', 'OPTIONS'];
const TOKEN = 'spellings-admin-token-0123456789';

const flipCase = (s: string) => [...s].map((c, i) => (i % 2 ? c.toUpperCase() : c)).join('');
const escapeAll = (s: string) => [...s].map((c) => (/[a-z0-9]/i.test(c) ? `%${c.charCodeAt(0).toString(16)}` : c)).join('');
const escapeFirst = (s: string) => s.replace(/\/([a-z])/gi, (_, c: string) => `/%${c.charCodeAt(0).toString(16).toUpperCase()}`);

/** Spellings of `p` that some router, proxy or file system might take for the same path. */
export function spellings(p: string): string[] {
  const rest = p.slice(BASE.length); // "/repositories"
  const out = [
    p,
    `${p}/`,
    `${p}//`,
    `${p}/.`,
    `${p}?x=1`,
    `${p}/?x=1`,
    `${p}#frag`,
    `${p};x`,
    `${p}%00`,
    `${p}%20`,
    `${p}%2f`,
    p.toUpperCase(),
    flipCase(p),
    p.replace('/admin', '/Admin'),
    p.replace('/v1', '/V1'),
    p.replace(rest, rest.toUpperCase()),
    `/${p}`,
    `//${p}`,
    p.replace(/\//g, '//'),
    p.replace('/admin/v1/', '/admin/v1//'),
    p.replace('/admin/', '/admin//'),
    p.replace('/admin/v1/', '/admin/v1/./'),
    p.replace('/admin/v1/', '/admin/v1/x/../'),
    p.replace('/admin/v1/', '/admin/v2/../v1/'),
    `/x/..${p}`,
    `/.${p}`,
    `/v2/..${p}`,
    `/healthz/..${p}`,
    escapeFirst(p),
    escapeAll(p),
    p.replace(/\//g, '%2f'),
    p.replace('/admin/v1/', '/admin/v1%2f'),
    p.replace('/admin', '/%2561dmin'),
    p.replace(/\//g, '\\'),
    p.replace('/admin/v1/', '/admin/v1\\'),
    `http://127.0.0.1${p}`,
    `http://127.0.0.1${p.toUpperCase()}`,
  ];
  return [...new Set(out)];
}

/** Writes one request verbatim; resolves with the status (0 when the server refused to parse it). */
function send(port: number, method: string, target: string, headers: Record<string, string> = {}, body?: string, from = '127.0.0.1'): Promise<{ status: number; text: string }> {
  return new Promise((resolve, reject) => {
    const socket = net.connect({ port, host: '127.0.0.1', localAddress: from });
    const lines = [`${method} ${target} HTTP/1.1`, 'Host: 127.0.0.1', 'Connection: close'];
    for (const [k, v] of Object.entries(headers)) lines.push(`${k}: ${v}`);
    if (body !== undefined) lines.push('Content-Type: application/json', `Content-Length: ${Buffer.byteLength(body)}`);
    socket.write(`${lines.join('\r\n')}\r\n\r\n${body ?? ''}`);
    const chunks: Buffer[] = [];
    socket.on('data', (c: Buffer) => chunks.push(c));
    socket.on('error', reject);
    socket.on('close', () => {
      const text = Buffer.concat(chunks).toString('latin1');
      resolve({ status: Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0), text });
    });
  });
}

describe('the admin guard under every spelling and method', () => {
  let registry: TestRegistry;
  let digest: string;
  const auth = { Authorization: `Bearer ${TOKEN}` };

  /** What a handler could change: policies, pins, restores, prune, GC. */
  async function state() {
    const get = async (p: string) => {
      const r = await fetch(`${registry.url}${BASE}${p}`, { headers: auth });
      expect(r.status).toBe(200);
      return (await r.json()) as unknown;
    };
    return {
      policies: await get('/retention/policies'),
      points: await get('/recovery-points?repository=dr/app'),
      gc: await get('/gc'),
      tags: await (await fetch(`${registry.url}/v2/dr/app/tags/list`)).json(),
    };
  }

  /** A body each write operation would accept, so that a request reaching a handler would act. */
  function bodyFor(p: string): string {
    if (p.endsWith('/retention/policies')) return JSON.stringify({ policies: [{ repositories: '**', keepLast: 1 }] });
    if (p.endsWith('/prune') || p.endsWith('/gc')) return JSON.stringify({ dryRun: false });
    return JSON.stringify({ repository: 'dr/app', digest, tag: 'restored' });
  }

  beforeAll(async () => {
    registry = await startTestRegistry({
      env: {
        DRREG_ADMIN_TOKEN: TOKEN,
        DRREG_API_DELETES: 'true',
        DRREG_RETENTION_POLICIES: JSON.stringify([{ repositories: 'dr/*', keepLast: 5 }]),
      },
    });
    await putManifest(registry.url, 'dr/app', 'old', await pushImage(registry.url, 'dr/app', 'one'), OCI_MANIFEST);
    digest = (await putManifest(registry.url, 'dr/app', 'latest', await pushImage(registry.url, 'dr/app', 'two'), OCI_MANIFEST)).digest;
  });
  afterAll(() => registry?.stop());

  it('enumerates the operations of openapi.yaml', () => {
    expect(OPERATIONS.length).toBeGreaterThanOrEqual(12);
    for (const op of OPERATIONS) expect(mayReachAdmin(op.path)).toBe(true);
  });

  it('never answers 2xx to an unauthenticated request and no handler acts', { timeout: 180_000 }, async () => {
    const before = await state();
    const answered: string[] = [];
    const jobs: Array<() => Promise<void>> = [];
    for (const op of OPERATIONS) {
      for (const target of spellings(op.path)) {
        for (const method of METHODS) {
          const withBody = method === 'POST' || method === 'PUT' || method === 'PATCH' || method === 'DELETE';
          // Wrong tokens from their own address: they soon get 429 (login limits), still no 2xx.
          const variants: Array<[Record<string, string>, string]> = [
            [{}, '127.0.0.1'],
            [{ Authorization: `Bearer ${TOKEN.slice(0, -1)}` }, '127.0.0.2'],
          ];
          for (const [headers, from] of variants) {
            jobs.push(async () => {
              const r = await send(registry.port, method, target, headers, withBody ? bodyFor(op.path) : undefined, from);
              if (r.status >= 200 && r.status < 400) answered.push(`${method} ${target} -> ${r.status}`);
            });
          }
        }
      }
    }
    const requests = jobs.length;
    await Promise.all(Array.from({ length: 8 }, async () => {
      for (let job = jobs.shift(); job; job = jobs.shift()) await job();
    }));
    expect(answered).toEqual([]);
    expect(requests).toBeGreaterThan(OPERATIONS.length * METHODS.length * 30);
    expect(await state()).toEqual(before);
  });

  it('with the token, serves each operation under its one spelling (and a query string) only', async () => {
    const served: string[] = [];
    for (const op of OPERATIONS.filter((o) => o.method === 'GET')) {
      for (const target of spellings(op.path)) {
        const [head, fragment] = target.split('#');
        const q = /\/recovery-points(\/details)?$/.test(op.path) ? (head!.includes('?') ? '&' : '?') + 'repository=dr/app' : '';
        const r = await send(registry.port, 'GET', head + q + (fragment === undefined ? '' : `#${fragment}`), auth);
        if (r.status >= 200 && r.status < 300) served.push(target);
      }
    }
    const expected = OPERATIONS.filter((o) => o.method === 'GET').flatMap((o) => [o.path, `${o.path}?x=1`, `${o.path}#frag`, `http://127.0.0.1${o.path}`]);
    expect(served.sort()).toEqual([...new Set(expected)].sort());
  });
});

describe('the admin API when nothing enables it', () => {
  let registry: TestRegistry;
  beforeAll(async () => {
    registry = await startTestRegistry();
  });
  afterAll(() => registry?.stop());

  it('answers every spelling with a JSON error saying how to enable it, and runs no handler', { timeout: 120_000 }, async () => {
    for (const op of OPERATIONS) {
      const r = await send(registry.port, op.method, op.path, { Authorization: `Bearer ${TOKEN}` });
      expect(r.status).toBe(404);
      const body = JSON.parse(r.text.slice(r.text.indexOf('\r\n\r\n') + 4)) as { errors: Array<{ message: string; detail: { enable: string } }> };
      expect(body.errors[0]!.message).toMatch(/admin API is not enabled/);
      expect(body.errors[0]!.detail.enable).toMatch(/admin\.token.*auth\.admins/);
      for (const target of spellings(op.path)) {
        for (const method of METHODS) {
          const s = await send(registry.port, method, target, { Authorization: `Bearer ${TOKEN}` });
          expect(s.status < 200 || s.status >= 300, `${method} ${target} -> ${s.status}`).toBe(true);
        }
      }
    }
  });
});
