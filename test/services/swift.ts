// OpenStack Swift with its S3 API, the real object store of the test suite. Reused when it is
// already running (a developer's machine); otherwise started by deploy/swift/start.sh and stopped
// after the run.
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
export const SWIFT_ENDPOINT = 'http://127.0.0.1:8080';
export const SWIFT_CREDENTIALS = { accessKey: 'test:tester', secretKey: 'testing', region: 'us-east-1' };
const DEPLOY = path.resolve(import.meta.dirname, '../../deploy/swift');

async function healthy(): Promise<boolean> {
  try {
    return (await fetch(`${SWIFT_ENDPOINT}/healthcheck`, { signal: AbortSignal.timeout(2000) })).ok;
  } catch {
    return false;
  }
}

export async function ensureSwift(): Promise<{ endpoint: string; stop?: () => Promise<void> }> {
  if (await healthy()) return { endpoint: SWIFT_ENDPOINT };
  try {
    await run('bash', [path.join(DEPLOY, 'start.sh')], { timeout: 300_000 });
  } catch (err) {
    const e = err as { stdout?: string; stderr?: string; message: string };
    throw new Error(`could not start Swift with deploy/swift/start.sh: ${e.message}\n${e.stdout ?? ''}${e.stderr ?? ''}`);
  }
  return { endpoint: SWIFT_ENDPOINT, stop: () => stopSwift() };
}

export async function stopSwift(): Promise<void> {
  await run('bash', [path.join(DEPLOY, 'stop.sh')], { timeout: 60_000 });
}

/** Starts Swift again after a fault test stopped it. */
export async function startSwift(): Promise<void> {
  await run('bash', [path.join(DEPLOY, 'start.sh')], { timeout: 300_000 });
}
