// `dr-registry volume push|pull ... --json` as an operator runs it: the built CLI (dist/main.js),
// or src/main.ts with tsx in the smoke test. HOME is the host's own directory, so no docker
// login of this machine is used; the registry is on loopback (plain http).
import { spawn } from 'node:child_process';
import path from 'node:path';

const root = path.resolve(import.meta.dirname, '../..');

export interface VolumeCliResult {
  digest: string;
  totalBytes: number;
  sentBytes?: number;
  files: number;
  chunks?: number;
  newChunks?: number;
  filesRead?: number;
  bytesRead?: number;
  seconds: number;
  /** CPU seconds (user + system) of the CLI process, from GNU time: what the load does not inflate. */
  cpuSeconds: number;
}

export function volumeCli(args: string[], opts: { fromSource?: boolean; home: string }): Promise<VolumeCliResult> {
  const argv = opts.fromSource ? ['--import', 'tsx', path.join(root, 'src/main.ts')] : [path.join(root, 'dist/main.js')];
  return new Promise((resolve, reject) => {
    const child = spawn('/usr/bin/time', ['-f', 'cpu-seconds %U %S', process.execPath, ...argv, 'volume', ...args, '--json'], {
      cwd: root,
      env: { PATH: process.env.PATH ?? '', HOME: opts.home },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (c) => (stdout += c));
    child.stderr.on('data', (c) => (stderr = (stderr + c).slice(-4000)));
    child.on('error', reject);
    child.on('close', (code) => {
      if (code !== 0) return reject(new Error(`dr-registry volume ${args.join(' ')}: exit ${code}: ${stderr.trim()}`));
      const cpu = /cpu-seconds (\S+) (\S+)\s*$/.exec(stderr);
      try {
        resolve({ ...(JSON.parse(stdout.trim().split('\n').at(-1)!) as VolumeCliResult), cpuSeconds: cpu ? Number(cpu[1]) + Number(cpu[2]) : NaN });
      } catch {
        reject(new Error(`dr-registry volume ${args.join(' ')}: no JSON on stdout: ${stdout.slice(-500)} ${stderr}`));
      }
    });
  });
}
