// OpenStack Swift with its S3 API, the real object store of the test suite. The shared instance
// is reused when it is already running (a developer's machine); otherwise deploy/swift/start.sh
// starts it and it is stopped after the run. Fault tests get an instance of their own, on other
// ports, so stopping it does not disturb the tests running beside them.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const DEPLOY = path.resolve(import.meta.dirname, '../../deploy/swift');
export const SWIFT_CREDENTIALS = { accessKey: 'test:tester', secretKey: 'testing', region: 'us-east-1' };

export interface SwiftInstance {
  endpoint: string;
  start(): Promise<void>;
  stop(): Promise<void>;
  healthy(): Promise<boolean>;
}

export function swiftInstance(base: string, ports: { s3: number; object: number; container: number; account: number; memcached: number }): SwiftInstance {
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
      await run('bash', [path.join(DEPLOY, name)], { env, timeout: 300_000 });
    } catch (err) {
      const e = err as { stdout?: string; stderr?: string; message: string };
      throw new Error(`deploy/swift/${name} failed: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
    }
  };
  return {
    endpoint,
    start: () => script('start.sh'),
    stop: () => script('stop.sh'),
    async healthy() {
      try {
        return (await fetch(`${endpoint}/healthcheck`, { signal: AbortSignal.timeout(2000) })).ok;
      } catch {
        return false;
      }
    },
  };
}

export const sharedSwift = swiftInstance('/tmp/dr-registry-swift', { s3: 8080, object: 6200, container: 6201, account: 6202, memcached: 11211 });
export const SWIFT_ENDPOINT = sharedSwift.endpoint;

export async function ensureSwift(): Promise<{ endpoint: string; stop?: () => Promise<void> }> {
  if (await sharedSwift.healthy()) return { endpoint: SWIFT_ENDPOINT };
  await sharedSwift.start();
  return { endpoint: SWIFT_ENDPOINT, stop: () => sharedSwift.stop() };
}
