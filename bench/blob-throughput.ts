// Blob push and pull throughput, dr-registry vs CNCF Distribution 2.8, side by side in one run,
// plus our peak RSS during the push (memory must not grow with blob size).
//   npx tsx bench/blob-throughput.ts [--size 1GiB] [--store filesystem|s3] [--part-size 16MiB] [--concurrency 3]
// With --store s3 both registries use the Swift S3 endpoint from deploy/swift (must be running).
import { parseArgs } from 'node:util';
import { parseSize } from '../src/config/units.js';
import { removeBucket, swiftOptions } from '../test/helpers/stores.js';
import { deterministicStream, digestOfStream, peakRssMiB, pullBlob, pushBlob, startDistribution, startOurs, timed, type Registry } from './lib.js';

const { values } = parseArgs({ options: { size: { type: 'string', default: '1GiB' }, store: { type: 'string', default: 'filesystem' }, endpoint: { type: 'string', default: 'http://127.0.0.1:8080' }, 'part-size': { type: 'string' }, concurrency: { type: 'string' } } });
const size = parseSize(values.size!)!;
const s3 = values.store === 's3';
const bucketOurs = `bench-ours-${Date.now()}`;
const bucketDist = `bench-dist-${Date.now()}`;

const ourEnv: Record<string, string> = s3
  ? { DRREG_STORAGE_DRIVER: 's3', DRREG_STORAGE_S3_ENDPOINT: values.endpoint!, DRREG_STORAGE_S3_BUCKET: bucketOurs, DRREG_STORAGE_S3_ACCESSKEY: 'test:tester', DRREG_STORAGE_S3_SECRETKEY: 'testing' }
  : { DRREG_STORAGE_FILESYSTEM_FSYNC: 'true' };
if (values['part-size']) ourEnv.DRREG_STORAGE_S3_PARTSIZE = values['part-size'];
if (values.concurrency) ourEnv.DRREG_STORAGE_S3_CONCURRENCY = values.concurrency;
const distStorage = s3
  ? ['  s3:', '    region: us-east-1', `    regionendpoint: ${values.endpoint}`, `    bucket: ${bucketDist}`, '    accesskey: test:tester', '    secretkey: testing', '    forcepathstyle: true', '    secure: false', '    v4auth: true']
  : [];

async function measure(reg: Registry, digest: string, seed: string) {
  const push = await timed(() => pushBlob(reg.url, 'bench/blob', size, seed, digest));
  const rss = await peakRssMiB(reg.pid);
  const pull = await timed(() => pullBlob(reg.url, 'bench/blob', digest));
  if (pull.value !== digest) throw new Error(`${reg.name}: pulled ${pull.value}, expected ${digest}`);
  return { push: push.seconds, pull: pull.seconds, rss };
}

const seed = `bench-${size}`;
const digest = await digestOfStream(deterministicStream(size, seed));
if (s3) {
  // Distribution does not create its bucket.
  const { Client } = await import('minio');
  const u = new URL(values.endpoint!);
  const client = new Client({ endPoint: u.hostname, port: Number(u.port), useSSL: false, accessKey: 'test:tester', secretKey: 'testing', pathStyle: true, region: 'us-east-1' });
  await client.makeBucket(bucketDist, 'us-east-1');
}
const rows: Array<[string, Awaited<ReturnType<typeof measure>>]> = [];
for (const start of [() => startOurs('dr-registry', ourEnv), () => startDistribution('distribution-2.8', distStorage)]) {
  const reg = await start();
  try {
    rows.push([reg.name, await measure(reg, digest, seed)]);
  } finally {
    await reg.stop();
  }
}
if (s3) {
  // Leave the store as it was: gigabytes of bench data slow every later run down.
  const bucket = (name: string) => ({ ...swiftOptions(name), endpoint: values.endpoint! });
  await removeBucket(bucket(bucketOurs));
  await removeBucket(bucket(bucketDist));
}
const mib = size / 1024 / 1024;
console.log(`blob ${values.size} on ${values.store}, pushed as one streamed PATCH, pulled whole`);
console.log('registry            push s   push MiB/s   pull s   pull MiB/s   peak RSS MiB');
for (const [name, r] of rows) {
  console.log(`${name.padEnd(18)} ${r.push.toFixed(2).padStart(7)} ${(mib / r.push).toFixed(1).padStart(12)} ${r.pull.toFixed(2).padStart(8)} ${(mib / r.pull).toFixed(1).padStart(12)} ${r.rss.toFixed(0).padStart(14)}`);
}
const [ours, dist] = [rows[0]![1], rows[1]![1]];
console.log(`ratio (Distribution / dr-registry): push ${(dist.push / ours.push).toFixed(2)}x, pull ${(dist.pull / ours.pull).toFixed(2)}x`);
