// Manifest reference amplification (issue 10, item 2): how long a push of a manifest naming one
// stored blob 5,000 times (and 28,000 times) takes, and how slow another client's manifest GETs
// get meanwhile. Run on the default limit (refused at once) and with manifests.maxReferences
// raised so the manifest is checked (each distinct reference once).
//   npm run build && npx tsx bench/manifest-references.ts
import { createHash } from 'node:crypto';
import { startOurs } from './lib.js';

const OCI_MANIFEST = 'application/vnd.oci.image.manifest.v1+json';
const sha = (b: Buffer) => `sha256:${createHash('sha256').update(b).digest('hex')}`;

async function push(url: string, blob: Buffer): Promise<string> {
  const r = await fetch(`${url}/v2/bench/app/blobs/uploads/?digest=${sha(blob)}`, { method: 'POST', body: blob });
  if (r.status !== 201) throw new Error(`upload: ${r.status}`);
  return sha(blob);
}

function manifest(config: string, layer: string, copies: number): string {
  return JSON.stringify({
    schemaVersion: 2,
    mediaType: OCI_MANIFEST,
    config: { mediaType: 'application/vnd.oci.image.config.v1+json', digest: config, size: 2 },
    layers: Array.from({ length: copies }, () => ({ mediaType: 'application/vnd.oci.image.layer.v1.tar', digest: layer, size: 5 })),
  });
}

async function run(label: string, env: Record<string, string>, copies: number) {
  const registry = await startOurs(label, env);
  try {
    const config = await push(registry.url, Buffer.from('{}'));
    const layer = await push(registry.url, Buffer.from('layer'));
    const small = manifest(config, layer, 1);
    const put = await fetch(`${registry.url}/v2/bench/app/manifests/small`, { method: 'PUT', body: small, headers: { 'Content-Type': OCI_MANIFEST } });
    if (put.status !== 201) throw new Error(`small manifest: ${put.status}`);
    // Another client: manifest GETs one after the other while the big push runs.
    let pushing = true;
    let slowest = 0;
    const other = (async () => {
      while (pushing) {
        const t = performance.now();
        await (await fetch(`${registry.url}/v2/bench/app/manifests/small`, { headers: { Accept: OCI_MANIFEST } })).arrayBuffer();
        slowest = Math.max(slowest, performance.now() - t);
      }
    })();
    const t = performance.now();
    const big = await fetch(`${registry.url}/v2/bench/app/manifests/big`, { method: 'PUT', body: manifest(config, layer, copies), headers: { 'Content-Type': OCI_MANIFEST } });
    const elapsed = performance.now() - t;
    pushing = false;
    await other;
    const code = big.status >= 400 ? ` ${((await big.json()) as { errors: Array<{ code: string }> }).errors[0]!.code}` : '';
    console.log(`${label}: ${copies} references -> ${big.status}${code} in ${elapsed.toFixed(0)} ms; another client's slowest GET ${slowest.toFixed(0)} ms`);
  } finally {
    await registry.stop();
  }
}

for (const copies of [5000, 28_000]) {
  await run('default limit', {}, copies);
  await run('limit raised', { DRREG_MANIFESTS_MAXREFERENCES: '100000' }, copies);
}
