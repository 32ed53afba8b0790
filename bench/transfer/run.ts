// The transfer benchmark: dr-registry and CNCF Distribution 2.8 side by side on the same machine and
// store, each a separate process (so its CPU time and peak RSS can be read from /proc).
//   - one large blob pushed as docker does (POST, one chunked PATCH, PUT) and pulled, rounds
//     interleaved (ours, Distribution, ours, Distribution, ...), medians reported;
//   - fleet failover: N clients pulling N different blobs at once;
//   - many concurrent uploads (the S3 upload memory budget);
//   - a CPU profile of our pull path (node --cpu-prof), summarized by self time.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { mkdir, mkdtemp, readFile, readdir, rm, writeFile } from 'node:fs/promises';
import { createHash } from 'node:crypto';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { Client } from 'minio';
import { freePort } from '../../test/helpers/ports.js';
import { removeBucket, swiftOptions } from '../../test/helpers/stores.js';
import { startDistribution as startReference } from '../../test/services/distribution.js';
import { deterministicStream, digestOfStream, pushBlob } from '../lib.js';
import { summarizeProfile, type ProfileSummary } from './profile.js';

export type StoreKind = 'filesystem' | 's3';

export interface TransferOptions {
  /** Bytes of the blob pushed and pulled. */
  size: number;
  rounds: number;
  stores: StoreKind[];
  endpoint: string;
  fleet: { clients: number; size: number; stores: StoreKind[] };
  /** Concurrent uploads of `size` bytes each to S3 (the upload memory budget); clients 0 skips it. */
  uploads: { clients: number; size: number; /** Also run them against Distribution (slow on Swift). */ compare: boolean };
  /** Profile our pull path on these stores. */
  profileStores: StoreKind[];
  /** Bytes of the blob pulled under the profiler. */
  profileSize: number;
  /** dist/main.js of dr-registry; `before`: a build to profile for comparison (e.g. the base commit). */
  main: string;
  /** Node options before `main`, e.g. ['--import', 'tsx'] to run src/main.ts (the CI smoke test). */
  mainNodeArgs?: string[];
  before?: string;
  /** Extra DRREG_* settings for our registry. */
  env?: Record<string, string>;
  log?: (line: string) => void;
}

export interface Proc {
  name: string;
  url: string;
  pid: number;
  stop(): Promise<void>;
}

export interface OpFigures {
  seconds: number;
  /** The registry process. */
  cpuSeconds: number;
  /** The client: this process (a push generates and sends the bytes) and children it reaped (curl). */
  clientCpuSeconds?: number;
  /** The object store's processes (Swift proxy and object servers), when the store is Swift. */
  storeCpuSeconds?: number;
}

export interface StoreResult {
  store: StoreKind;
  ours: { push: OpFigures[]; pull: OpFigures[]; peakRssMiB: number };
  dist: { push: OpFigures[]; pull: OpFigures[]; peakRssMiB: number };
}

export interface FleetSide {
  wallSeconds: number;
  slowestSeconds: number;
  fastestSeconds: number;
  peakRssMiB: number;
  cpuSeconds: number;
}

export interface FleetResult {
  store: StoreKind;
  clients: number;
  size: number;
  ours: FleetSide;
  dist: FleetSide;
}

export interface UploadsResult {
  clients: number;
  size: number;
  ours: { seconds: number; peakRssMiB: number; idleRssMiB: number };
  dist?: { seconds: number; peakRssMiB: number; idleRssMiB: number };
  budgetMiB: number;
}

export interface ProfileResult {
  store: StoreKind;
  build: 'before' | 'after';
  pullSeconds: number;
  summary: ProfileSummary;
}

export interface TransferResults {
  options: Omit<TransferOptions, 'log' | 'env'> & { env: Record<string, string> };
  date: string;
  stores: StoreResult[];
  fleet: FleetResult[];
  uploads?: UploadsResult;
  profiles: ProfileResult[];
}

const CLK_TCK = 100;

/** User + system CPU seconds of a process so far. */
export async function cpuSeconds(pid: number): Promise<number> {
  const stat = await readFile(`/proc/${pid}/stat`, 'utf8');
  const fields = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(fields[11]) + Number(fields[12])) / CLK_TCK;
}

/** Peak resident memory (VmHWM) in MiB. */
export async function peakRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmHWM:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

export async function currentRss(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, 'utf8');
  return Number(/VmRSS:\s+(\d+) kB/.exec(status)?.[1] ?? NaN) / 1024;
}

/** Resets VmHWM to the current RSS (Linux clear_refs 5), so a phase's own peak can be read. */
export async function resetPeak(pid: number): Promise<void> {
  await writeFile(`/proc/${pid}/clear_refs`, '5');
}

function s3Env(endpoint: string, bucket: string): Record<string, string> {
  return {
    DRREG_STORAGE_DRIVER: 's3',
    DRREG_STORAGE_S3_ENDPOINT: endpoint,
    DRREG_STORAGE_S3_BUCKET: bucket,
    DRREG_STORAGE_S3_ACCESSKEY: 'test:tester',
    DRREG_STORAGE_S3_SECRETKEY: 'testing',
  };
}

/** Our registry from `main`, on `dataDir` (filesystem) or its env's bucket; nodeArgs e.g. --cpu-prof. */
export async function startOurs(main: string, dataDir: string, env: Record<string, string>, nodeArgs: string[] = []): Promise<Proc> {
  const port = await freePort();
  const child: ChildProcess = spawn(process.execPath, [...nodeArgs, main, 'serve'], {
    env: {
      PATH: process.env.PATH ?? '',
      DRREG_LISTEN: `127.0.0.1:${port}`,
      DRREG_STORAGE_FILESYSTEM_ROOT: dataDir,
      DRREG_LOG_LEVEL: 'warn',
      ...env,
    },
    stdio: ['ignore', 'ignore', 'pipe'],
  });
  let err = '';
  child.stderr!.on('data', (c) => (err = (err + c).slice(-2000)));
  const url = `http://127.0.0.1:${port}`;
  const exited = new Promise((r) => child.once('exit', r));
  const stop = async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGTERM');
      const killer = setTimeout(() => child.kill('SIGKILL'), 30_000);
      await exited;
      clearTimeout(killer);
    }
  };
  for (let i = 0; i < 300 && child.exitCode === null; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).status === 200) return { name: 'dr-registry', url, pid: child.pid!, stop };
    } catch {
      // not listening yet
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  await stop();
  throw new Error(`dr-registry at ${url} did not start: ${err}`);
}

async function startDist(store: StoreKind, endpoint: string, bucket: string): Promise<Proc> {
  const storage =
    store === 's3'
      ? [
          '  s3:',
          `    regionendpoint: ${endpoint}`,
          '    region: us-east-1',
          `    bucket: ${bucket}`,
          '    accesskey: test:tester',
          '    secretkey: testing',
          '    forcepathstyle: true',
          '    secure: false',
          '    v4auth: true',
          // Both registries serve the bytes themselves.
          '  redirect:',
          '    disable: true',
        ]
      : [];
  const running = await startReference(storage.length ? { storage } : {});
  return { name: 'distribution-2.8', url: running.url, pid: running.pid, stop: running.stop };
}

function s3Client(endpoint: string): Client {
  const u = new URL(endpoint);
  return new Client({ endPoint: u.hostname, port: Number(u.port), useSSL: false, accessKey: 'test:tester', secretKey: 'testing', pathStyle: true, region: 'us-east-1' });
}

/**
 * GET the blob with curl and count its bytes. The client must not be the bottleneck: Node's own
 * HTTP client tops out near 900 MiB/s on loopback, below what both registries serve, which hid
 * every difference between them; curl (C, like the Go clients of docker and containerd) costs
 * little and the same for both. `verify` pipes the bytes through a hash instead (untimed runs).
 */
export function pullCount(base: string, repo: string, digest: string, verify = false): Promise<{ bytes: number; digest?: string }> {
  return new Promise((resolve, reject) => {
    const url = `${base}/v2/${repo}/blobs/${digest}`;
    const curl = spawn('curl', ['-sS', '--fail', '-o', verify ? '-' : '/dev/null', '-w', verify ? '' : '%{size_download}', url], {
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let err = '';
    curl.stderr!.on('data', (c) => (err = (err + c).slice(-500)));
    const out: Buffer[] = [];
    let hashed: Promise<string> | undefined;
    let bytes = 0;
    if (verify) {
      const hash = createHash('sha256');
      curl.stdout!.on('data', (c: Buffer) => {
        bytes += c.length;
        hash.update(c);
      });
      hashed = new Promise((done) => curl.stdout!.once('end', () => done(`sha256:${hash.digest('hex')}`)));
    } else curl.stdout!.on('data', (c: Buffer) => out.push(c));
    curl.on('error', reject);
    curl.on('close', (code) => {
      if (code !== 0) return reject(new Error(`GET blob ${digest} from ${base}: curl exit ${code}: ${err.trim()}`));
      if (hashed) hashed.then((d) => resolve({ bytes, digest: d }), reject);
      else resolve({ bytes: Number(Buffer.concat(out).toString()) });
    });
  });
}

async function measured<T>(pid: number, fn: () => Promise<T>, storePids: number[] = []): Promise<OpFigures & { value: T }> {
  const storeCpu = async () => (await Promise.all(storePids.map((p) => cpuSeconds(p).catch(() => 0)))).reduce((a, b) => a + b, 0);
  const [cpu0, client0, store0] = [await cpuSeconds(pid), await clientCpuSeconds(), await storeCpu()];
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  return {
    seconds,
    cpuSeconds: (await cpuSeconds(pid)) - cpu0,
    clientCpuSeconds: (await clientCpuSeconds()) - client0,
    ...(storePids.length ? { storeCpuSeconds: (await storeCpu()) - store0 } : {}),
    value,
  };
}

/** CPU seconds of this process and of the children it has reaped (curl), so far. */
async function clientCpuSeconds(): Promise<number> {
  const stat = await readFile('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return (Number(f[11]) + Number(f[12]) + Number(f[13]) + Number(f[14])) / CLK_TCK;
}

/** The Swift servers bytes pass through (proxy and object servers), to count the store's CPU. */
function swiftPids(): number[] {
  try {
    return execFileSync('pgrep', ['-f', 'swift-(proxy|object)-server'], { encoding: 'utf8' }).trim().split('\n').map(Number).filter(Boolean);
  } catch {
    return [];
  }
}

interface Pair {
  ours: Proc;
  dist: Proc;
  cleanup(): Promise<void>;
}

async function startPair(opts: TransferOptions, store: StoreKind, label: string): Promise<Pair> {
  const work = await mkdtemp(path.join(tmpdir(), `drreg-transfer-${label}-`));
  const stamp = `${Date.now()}-${label}`;
  const oursBucket = `transfer-ours-${stamp}`;
  const distBucket = `transfer-dist-${stamp}`;
  if (store === 's3') await s3Client(opts.endpoint).makeBucket(distBucket, 'us-east-1'); // Distribution does not create it
  const env = { ...(store === 's3' ? s3Env(opts.endpoint, oursBucket) : { DRREG_STORAGE_FILESYSTEM_FSYNC: 'true' }), ...opts.env };
  const ours = await startOurs(opts.main, path.join(work, 'data'), env, opts.mainNodeArgs);
  const dist = await startDist(store, opts.endpoint, distBucket);
  return {
    ours,
    dist,
    async cleanup() {
      await ours.stop();
      await dist.stop();
      await rm(work, { recursive: true, force: true });
      if (store === 's3') {
        for (const bucket of [oursBucket, distBucket]) await removeBucket({ ...swiftOptions(bucket), endpoint: opts.endpoint }).catch(() => undefined);
      }
    },
  };
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  const m = Math.floor(s.length / 2);
  return s.length % 2 ? s[m]! : (s[m - 1]! + s[m]!) / 2;
};
export { median };

/** Push and pull one blob per round on each registry, interleaved. */
async function runStore(opts: TransferOptions, store: StoreKind): Promise<StoreResult> {
  const log = opts.log ?? (() => {});
  const pair = await startPair(opts, store, `single-${store}`);
  try {
    const sides = { ours: pair.ours, dist: pair.dist } as const;
    const result: StoreResult = { store, ours: { push: [], pull: [], peakRssMiB: 0 }, dist: { push: [], pull: [], peakRssMiB: 0 } };
    for (const side of ['ours', 'dist'] as const) await resetPeak(sides[side].pid);
    const storePids = store === 's3' ? swiftPids() : [];
    for (let round = 0; round < opts.rounds; round++) {
      const seed = `transfer-${store}-${round}-${Date.now()}`;
      const digest = await digestOfStream(deterministicStream(opts.size, seed));
      // Who goes first alternates between rounds (A B, B A, ...).
      const order = round % 2 === 0 ? (['ours', 'dist'] as const) : (['dist', 'ours'] as const);
      for (const side of order) {
        const reg = sides[side];
        // Each operation starts with no dirty page of the previous one left to write back
        // (Distribution does not fsync: its writes would otherwise land on whoever runs next).
        execFileSync('sync');
        const push = await measured(reg.pid, () => pushBlob(reg.url, 'bench/transfer', opts.size, seed, digest), storePids);
        result[side].push.push(push);
        log(`${store} round ${round + 1} ${reg.name} push ${push.seconds.toFixed(2)} s, cpu ${push.cpuSeconds.toFixed(2)} s`);
      }
      for (const side of order) {
        const reg = sides[side];
        execFileSync('sync');
        // Timed pulls count bytes (the client's cost small and equal for both); the first round
        // pulls once more, untimed, to check the digest.
        const pull = await measured(reg.pid, () => pullCount(reg.url, 'bench/transfer', digest), storePids);
        if (pull.value.bytes !== opts.size) throw new Error(`${reg.name}: pulled ${pull.value.bytes} bytes, expected ${opts.size}`);
        if (round === 0) {
          const check = await pullCount(reg.url, 'bench/transfer', digest, true);
          if (check.digest !== digest) throw new Error(`${reg.name}: pulled ${check.digest}, expected ${digest}`);
        }
        result[side].pull.push(pull);
        log(`${store} round ${round + 1} ${reg.name} pull ${pull.seconds.toFixed(2)} s, cpu ${pull.cpuSeconds.toFixed(2)} s`);
      }
    }
    for (const side of ['ours', 'dist'] as const) result[side].peakRssMiB = await peakRss(sides[side].pid);
    return result;
  } finally {
    await pair.cleanup();
  }
}

/** N different blobs pulled by N clients at once, on each registry in turn. */
async function runFleet(opts: TransferOptions, store: StoreKind): Promise<FleetResult> {
  const log = opts.log ?? (() => {});
  const { clients, size } = opts.fleet;
  const pair = await startPair(opts, store, `fleet-${store}`);
  try {
    const blobs: Array<{ seed: string; digest: string }> = [];
    for (let i = 0; i < clients; i++) {
      const seed = `fleet-${store}-${i}-${Date.now()}`;
      blobs.push({ seed, digest: await digestOfStream(deterministicStream(size, seed)) });
    }
    const sides = { ours: pair.ours, dist: pair.dist } as const;
    for (const side of ['ours', 'dist'] as const) {
      const reg = sides[side];
      // Two pushes at a time: seeding only, not measured.
      for (let i = 0; i < blobs.length; i += 2) {
        await Promise.all(blobs.slice(i, i + 2).map((b) => pushBlob(reg.url, `fleet/host${blobs.indexOf(b)}`, size, b.seed, b.digest)));
      }
    }
    const out = {} as Record<'ours' | 'dist', FleetSide>;
    for (const side of ['ours', 'dist'] as const) {
      const reg = sides[side];
      execFileSync('sync');
      await resetPeak(reg.pid);
      const cpu0 = await cpuSeconds(reg.pid);
      const t0 = performance.now();
      const times = await Promise.all(
        blobs.map(async (b, i) => {
          const got = await pullCount(reg.url, `fleet/host${i}`, b.digest);
          if (got.bytes !== size) throw new Error(`${reg.name} fleet client ${i}: ${got.bytes} bytes, expected ${size}`);
          return (performance.now() - t0) / 1000;
        }),
      );
      out[side] = {
        wallSeconds: (performance.now() - t0) / 1000,
        slowestSeconds: Math.max(...times),
        fastestSeconds: Math.min(...times),
        peakRssMiB: await peakRss(reg.pid),
        cpuSeconds: (await cpuSeconds(reg.pid)) - cpu0,
      };
      log(`fleet ${store} ${reg.name}: ${out[side].wallSeconds.toFixed(2)} s, slowest ${out[side].slowestSeconds.toFixed(2)} s, rss ${out[side].peakRssMiB.toFixed(0)} MiB`);
    }
    return { store, clients, size, ...out };
  } finally {
    await pair.cleanup();
  }
}

/** Many uploads at once to S3: the process-wide part-buffer budget must bound RSS. */
async function runUploads(opts: TransferOptions, budgetMiB: number): Promise<UploadsResult> {
  const log = opts.log ?? (() => {});
  const { clients, size } = opts.uploads;
  const pair = await startPair(opts, 's3', 'uploads');
  try {
    const blobs: Array<{ seed: string; digest: string }> = [];
    for (let i = 0; i < clients; i++) {
      const seed = `uploads-${i}-${Date.now()}`;
      blobs.push({ seed, digest: await digestOfStream(deterministicStream(size, seed)) });
    }
    const result = { clients, size, budgetMiB } as UploadsResult;
    for (const side of opts.uploads.compare ? (['ours', 'dist'] as const) : (['ours'] as const)) {
      const reg = pair[side];
      const idleRssMiB = await currentRss(reg.pid);
      await resetPeak(reg.pid);
      const t0 = performance.now();
      await Promise.all(blobs.map((b, i) => pushBlob(reg.url, `uploads/u${i}`, size, b.seed, b.digest)));
      result[side] = { seconds: (performance.now() - t0) / 1000, peakRssMiB: await peakRss(reg.pid), idleRssMiB };
      log(`uploads ${reg.name}: ${result[side].seconds.toFixed(1)} s, peak rss ${result[side].peakRssMiB.toFixed(0)} MiB`);
    }
    return result;
  } finally {
    await pair.cleanup();
  }
}

/** Our pull path under node --cpu-prof: push with a plain process, pull with a profiled one. */
async function runProfile(opts: TransferOptions, store: StoreKind, build: 'before' | 'after'): Promise<ProfileResult> {
  const main = build === 'before' ? opts.before! : opts.main;
  const nodeArgs = build === 'before' ? [] : (opts.mainNodeArgs ?? []);
  const work = await mkdtemp(path.join(tmpdir(), `drreg-transfer-prof-`));
  const bucket = `transfer-prof-${Date.now()}`;
  const env = { ...(store === 's3' ? s3Env(opts.endpoint, bucket) : {}), ...opts.env };
  const data = path.join(work, 'data');
  try {
    const seed = `profile-${store}-${Date.now()}`;
    const digest = await digestOfStream(deterministicStream(opts.profileSize, seed));
    const pusher = await startOurs(main, data, env, nodeArgs);
    try {
      await pushBlob(pusher.url, 'bench/profile', opts.profileSize, seed, digest);
    } finally {
      await pusher.stop();
    }
    const profDir = path.join(work, 'prof');
    await mkdir(profDir);
    const puller = await startOurs(main, data, env, [...nodeArgs, '--cpu-prof', `--cpu-prof-dir=${profDir}`]);
    let seconds: number;
    let window: { from: number; to: number };
    try {
      const from = Number(process.hrtime.bigint() / 1000n);
      const pull = await measured(puller.pid, () => pullCount(puller.url, 'bench/profile', digest));
      window = { from, to: Number(process.hrtime.bigint() / 1000n) };
      if (pull.value.bytes !== opts.profileSize) throw new Error(`profile pull: ${pull.value.bytes} bytes`);
      seconds = pull.seconds;
    } finally {
      await puller.stop();
    }
    const file = (await readdir(profDir)).find((f) => f.endsWith('.cpuprofile'));
    if (!file) throw new Error('no CPU profile written');
    return { store, build, pullSeconds: seconds, summary: await summarizeProfile(path.join(profDir, file), 15, window) };
  } finally {
    await rm(work, { recursive: true, force: true });
    if (store === 's3') await removeBucket({ ...swiftOptions(bucket), endpoint: opts.endpoint }).catch(() => undefined);
  }
}

export async function runTransfer(opts: TransferOptions): Promise<TransferResults> {
  const results: TransferResults = {
    options: { ...opts, log: undefined, env: opts.env ?? {} } as TransferResults['options'],
    date: new Date().toISOString(),
    stores: [],
    fleet: [],
    profiles: [],
  };
  delete (results.options as { log?: unknown }).log;
  for (const store of opts.stores) results.stores.push(await runStore(opts, store));
  for (const store of opts.fleet.stores) if (opts.fleet.clients > 0) results.fleet.push(await runFleet(opts, store));
  if (opts.uploads.clients > 0) {
    const budget = Number(opts.env?.DRREG_STORAGE_S3_MEMORYBUDGET ?? NaN);
    results.uploads = await runUploads(opts, Number.isFinite(budget) ? budget / 1024 / 1024 : DEFAULT_BUDGET_MIB);
  }
  for (const store of opts.profileStores) {
    if (opts.before) results.profiles.push(await runProfile(opts, store, 'before'));
    results.profiles.push(await runProfile(opts, store, 'after'));
  }
  return results;
}

/** storage.s3.memoryBudget's default, in MiB (src/config/schema.ts). */
export const DEFAULT_BUDGET_MIB = 256;
