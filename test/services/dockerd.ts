// A private docker daemon for the end-to-end tests: no networking, no overlayfs (vfs), its own
// data dir, exec dir and socket, so it never touches a daemon the machine may already run. No
// container is ever started; images are loaded from OCI layouts and pushed and pulled.
import { execFile, spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { promisify } from 'node:util';

const run = promisify(execFile);
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const START_TIMEOUT_MS = 60_000;

export interface Dockerd {
  /** unix:///... for DOCKER_HOST and skopeo's --dest-daemon-host. */
  host: string;
  pid: number;
  stop(): Promise<void>;
}

export async function ensureDockerd(): Promise<Dockerd> {
  const dir = await mkdtemp(path.join(tmpdir(), 'drreg-dockerd-'));
  const host = `unix://${path.join(dir, 'docker.sock')}`;
  const pidFile = path.join(dir, 'session.pid');
  const logFile = path.join(dir, 'dockerd.log');
  // setsid gives the daemon a session of its own; the shell writes its PID and then becomes
  // dockerd, so the file holds exactly the daemon's PID whether or not setsid forked.
  spawn(
    'setsid',
    [
      'bash',
      '-c',
      'echo $$ > "$0"; log="$1"; shift; exec "$@" > "$log" 2>&1',
      pidFile,
      logFile,
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
  ).unref();

  const env = { ...process.env, DOCKER_HOST: host };
  const deadline = Date.now() + START_TIMEOUT_MS;
  let pid = 0;
  let failure = `no PID recorded in ${START_TIMEOUT_MS / 1000} s`;
  while (Date.now() < deadline) {
    pid ||= await readPid(pidFile);
    if (pid && !isRunning(pid)) {
      failure = 'it exited';
      break;
    }
    if (pid) {
      try {
        await run('docker', ['version', '--format', '{{.Server.Version}}'], { env, timeout: 5000 });
        return { host, pid, stop: () => stopDaemon(pid, dir) };
      } catch (err) {
        failure = `no answer in ${START_TIMEOUT_MS / 1000} s: ${(err as Error).message.trim()}`;
      }
    }
    await sleep(200);
  }
  const log = await readFile(logFile, 'utf8').catch(() => '');
  await stopDaemon(pid || (await readPid(pidFile)), dir);
  throw new Error(`dockerd did not come up (${failure})\n--- dockerd log (tail) ---\n${log.slice(-3000)}`);
}

async function readPid(file: string): Promise<number> {
  return Number((await readFile(file, 'utf8').catch(() => '')).trim()) || 0;
}

/** Running, and not a zombie: the daemon is orphaned on purpose, and init reaps it when it will. */
export function isRunning(pid: number): boolean {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, 'utf8');
    return stat[stat.lastIndexOf(')') + 2] !== 'Z'; // the state follows "(command) "
  } catch {
    return false;
  }
}

async function waitGone(pid: number, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (!isRunning(pid)) return true;
  return !isRunning(pid);
}

function signal(pid: number, name: NodeJS.Signals): void {
  try {
    process.kill(pid, name);
  } catch {
    // it exited meanwhile
  }
}

/** SIGTERM (dockerd then unmounts and stops its containerd), SIGKILL if it hangs, then clean up. */
async function stopDaemon(pid: number, dir: string): Promise<void> {
  if (pid && isRunning(pid)) {
    signal(pid, 'SIGTERM');
    if (!(await waitGone(pid, 20_000))) {
      signal(pid, 'SIGKILL');
      await waitGone(pid, 5_000);
    }
  }
  await unmountUnder(dir);
  await rm(dir, { recursive: true, force: true });
}

/** A dockerd that was killed leaves the bind mount of its data root behind; rm cannot pass it. */
async function unmountUnder(dir: string): Promise<void> {
  const mounts = (await readFile('/proc/self/mounts', 'utf8'))
    .split('\n')
    .map((line) => line.split(' ')[1] ?? '')
    .filter((target) => target.startsWith(`${dir}/`))
    .sort((a, b) => b.length - a.length); // deepest first
  for (const target of mounts) await run('umount', ['--lazy', target]).catch(() => {});
}
