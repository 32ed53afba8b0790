// OpenStack Swift with its S3 API, the real object store of the test suite. The shared instance
// is reused when it already answers (a developer's machine, another run); otherwise
// deploy/swift/start.sh installs (if needed) and starts it, and it is stopped after the run. Fault
// tests get an instance of their own, on other ports, so stopping it does not disturb the tests
// running beside them.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const DEPLOY = path.resolve(import.meta.dirname, '../../deploy/swift');
/** apt-get on a fresh machine included (about 30 s measured; a slow mirror takes longer). */
const START_TIMEOUT_MS = 300_000;
export const SWIFT_CREDENTIALS = { accessKey: 'test:tester', secretKey: 'testing', region: 'us-east-1' };

export interface SwiftPorts {
  s3: number;
  object: number;
  container: number;
  account: number;
  memcached: number;
}

export interface SwiftInstance {
  endpoint: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  healthy(): Promise<boolean>;
}

/** A Swift whose files live under `base` and whose servers listen on `ports` of 127.0.0.1. */
export function swiftInstance(base: string, ports: SwiftPorts): SwiftInstance {
  const env = {
    ...process.env,
    SWIFT_BASE: base,
    S3_PORT: String(ports.s3),
    OBJ_PORT: String(ports.object),
    CONT_PORT: String(ports.container),
    ACCT_PORT: String(ports.account),
    MC_PORT: String(ports.memcached),
  };
  const endpoint = `http://127.0.0.1:${ports.s3}`;
  const script = async (name: string) => {
    try {
      await run('bash', [path.join(DEPLOY, name)], { env, timeout: START_TIMEOUT_MS });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`deploy/swift/${name} failed (SWIFT_BASE=${base}): ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
  };
  const healthy = async () => {
    try {
      return (await fetch(`${endpoint}/healthcheck`, { signal: AbortSignal.timeout(2000) })).ok;
    } catch {
      return false;
    }
  };
  return {
    endpoint,
    healthy,
    stop: () => script('stop.sh'),
    async start() {
      await script('start.sh');
      if (!(await healthy())) throw new Error(`deploy/swift/start.sh finished but ${endpoint}/healthcheck does not answer (logs: ${base}/log)`);
    },
  };
}

export const sharedSwift = swiftInstance('/tmp/dr-registry-swift', { s3: 8080, object: 6200, container: 6201, account: 6202, memcached: 11211 });
export const SWIFT_ENDPOINT = sharedSwift.endpoint;

/** For vitest's globalSetup: the shared Swift, and a stop function only if this call started it. */
export async function ensureSwift(): Promise<{ endpoint: string; stop?: () => Promise<void> }> {
  if (await sharedSwift.healthy()) return { endpoint: SWIFT_ENDPOINT };
  try {
    await sharedSwift.start();
  } catch (err) {
    throw new Error(`cannot start OpenStack Swift for the tests at ${SWIFT_ENDPOINT}: ${(err as Error).message}`, { cause: err });
  }
  return { endpoint: SWIFT_ENDPOINT, stop: () => sharedSwift.stop() };
}
