// Where the time of a push or pull goes: CPU seconds of the registry process, of the client and of
// this process (the counting proxy), read from /proc around the call.
//   registry  user+system of its pid (/proc/PID/stat fields 14+15): a long-lived child of this
//             process, never reaped during a call, so it never shows in our children's times
//   client    cutime+cstime of this process (/proc/self/stat fields 16+17): the kernel adds a
//             child's CPU there when the child is reaped, and skopeo (execFile, waited for) and
//             `/usr/bin/time dr-registry volume ...` are reaped before the call returns
//   proxy     user+system of this process (process.cpuUsage): the counting proxy and the bench's
//             own requests, in the path for every registry alike
import { execFileSync } from 'node:child_process';
import { readFile } from 'node:fs/promises';

const TICKS = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim()) || 100;

/** Fields of /proc/PID/stat, numbered as in proc(5) (1 = pid); the command may hold spaces and parentheses. */
async function statFields(pid: number | 'self'): Promise<(n: number) => number> {
  const text = await readFile(`/proc/${pid}/stat`, 'utf8');
  const rest = text.slice(text.lastIndexOf(')') + 2).split(' ');
  return (n: number) => Number(rest[n - 3]);
}

/** CPU seconds (user + system) the process has used. */
export async function processCpuSeconds(pid: number): Promise<number> {
  const f = await statFields(pid);
  return (f(14) + f(15)) / TICKS;
}

/** CPU seconds (user + system) of this process's reaped children. */
export async function childrenCpuSeconds(): Promise<number> {
  const f = await statFields('self');
  return (f(16) + f(17)) / TICKS;
}

export interface CpuSplit {
  /** Wall seconds of the call. */
  seconds: number;
  /** CPU seconds of the client processes the call ran and waited for. */
  clientCpuSeconds: number;
  /** CPU seconds of the registry process during the call. */
  registryCpuSeconds: number;
  /** CPU seconds of this process during the call: the counting proxy between client and registry. */
  proxyCpuSeconds: number;
}

/** Runs `fn` (which must wait for the client processes it starts) and splits its time. */
export async function measured<T>(registryPid: number, fn: () => Promise<T>): Promise<CpuSplit & { value: T }> {
  const [registry0, children0] = [await processCpuSeconds(registryPid), await childrenCpuSeconds()];
  const self0 = process.cpuUsage();
  const t0 = process.hrtime.bigint();
  const value = await fn();
  const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
  const self = process.cpuUsage(self0);
  const [registry1, children1] = [await processCpuSeconds(registryPid), await childrenCpuSeconds()];
  return {
    value,
    seconds,
    clientCpuSeconds: children1 - children0,
    registryCpuSeconds: registry1 - registry0,
    proxyCpuSeconds: (self.user + self.system) / 1e6,
  };
}
