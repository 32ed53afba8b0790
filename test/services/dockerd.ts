// A private docker daemon for the end-to-end tests: no networking, no overlayfs (vfs), its own
// data dir and socket, so it never touches a daemon the machine may already run. No container is
// ever started; images are loaded from OCI layouts and pushed and pulled.
import { execFile, spawn } from 'node:child_process';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);

export interface Dockerd {
  /** For DOCKER_HOST and skopeo's --dest-daemon-host. */
  host: string;
  stop(): Promise<void>;
}

export async function ensureDockerd(): Promise<Dockerd> {
  const dir = await mkdtemp(path.join(tmpdir(), 'drreg-dockerd-'));
  const socket = path.join(dir, 'docker.sock');
  const host = `unix://${socket}`;
  const pidFile = path.join(dir, 'session.pid');
  // setsid makes the daemon its own process group; the wrapper records the exact PID first.
  const child = spawn(
    'setsid',
    [
      'bash',
      '-c',
      'echo $$ > "$0"; exec "$@" > "$0.log" 2>&1',
      pidFile,
      'dockerd',
      '--iptables=false',
      '--ip6tables=false',
      '--bridge=none',
      '--storage-driver=vfs',
      `--data-root=${path.join(dir, 'data')}`,
      `--exec-root=${path.join(dir, 'exec')}`,
      `--pidfile=${path.join(dir, 'dockerd.pid')}`,
      `--host=${host}`,
    ],
    { stdio: 'ignore', detached: true },
  );
  child.unref();
  const env = { ...process.env, DOCKER_HOST: host };
  let lastError = '';
  for (let i = 0; i < 150; i++) {
    try {
      await run('docker', ['version', '--format', '{{.Server.Version}}'], { env, timeout: 5000 });
      return { host, stop: () => stopDaemon(pidFile, dir) };
    } catch (err) {
      lastError = (err as Error).message;
    }
    await new Promise((r) => setTimeout(r, 200));
  }
  const log = await readFile(`${pidFile}.log`, 'utf8').catch(() => '');
  await stopDaemon(pidFile, dir);
  throw new Error(`dockerd did not come up: ${lastError}\n${log.slice(-3000)}`);
}

async function stopDaemon(pidFile: string, dir: string): Promise<void> {
  const pid = Number((await readFile(pidFile, 'utf8').catch(() => '')).trim());
  if (pid > 0) {
    try {
      process.kill(pid, 'SIGTERM');
      for (let i = 0; i < 100; i++) {
        process.kill(pid, 0); // throws once it is gone
        await new Promise((r) => setTimeout(r, 100));
      }
      process.kill(pid, 'SIGKILL');
    } catch {
      // gone
    }
  }
  await rm(dir, { recursive: true, force: true });
}
