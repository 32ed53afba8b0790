// Summarizes a V8 CPU profile (node --cpu-prof) by self time per function: where the pull path
// spends its CPU.
import { readFile } from 'node:fs/promises';
import path from 'node:path';

interface CpuProfile {
  nodes: Array<{ id: number; callFrame: { functionName: string; url: string; lineNumber: number } }>;
  startTime: number;
  samples: number[];
  timeDeltas: number[];
}

export interface ProfileEntry {
  /** "functionName file:line", or V8's "(garbage collector)", "(program)". */
  name: string;
  selfMs: number;
  /** Share of the busy (non-idle) time. */
  share: number;
}

export interface ProfileSummary {
  busyMs: number;
  idleMs: number;
  top: ProfileEntry[];
}

/**
 * `window`: only samples within [from, to], in microseconds of CLOCK_MONOTONIC (V8's profile
 * clock, and process.hrtime's in any process on Linux), so start-up and shutdown are left out.
 */
export async function summarizeProfile(file: string, topN = 15, window?: { from: number; to: number }): Promise<ProfileSummary> {
  const profile = JSON.parse(await readFile(file, 'utf8')) as CpuProfile;
  const nameOf = new Map<number, string>();
  for (const node of profile.nodes) {
    const { functionName, url, lineNumber } = node.callFrame;
    const where = url ? ` ${shortUrl(url)}:${lineNumber + 1}` : '';
    nameOf.set(node.id, `${functionName || '(anonymous)'}${where}`);
  }
  const self = new Map<string, number>();
  let at = profile.startTime;
  for (let i = 0; i < profile.samples.length; i++) {
    at += profile.timeDeltas[i] ?? 0;
    if (window && (at < window.from || at > window.to)) continue;
    const name = nameOf.get(profile.samples[i]!) ?? '(unknown)';
    self.set(name, (self.get(name) ?? 0) + (profile.timeDeltas[i] ?? 0) / 1000);
  }
  const idleMs = self.get('(idle)') ?? 0;
  self.delete('(idle)');
  const busyMs = [...self.values()].reduce((a, b) => a + b, 0);
  const top = [...self.entries()]
    .sort((a, b) => b[1] - a[1])
    .slice(0, topN)
    .map(([name, selfMs]) => ({ name, selfMs, share: busyMs > 0 ? selfMs / busyMs : 0 }));
  return { busyMs, idleMs, top };
}

/** node:internal/... stays; file:///.../dr-registry/dist/x.js becomes dist/x.js; node_modules/pkg/... is kept from the package. */
function shortUrl(url: string): string {
  if (!url.startsWith('file://')) return url;
  const p = new URL(url).pathname;
  const nm = p.lastIndexOf('/node_modules/');
  if (nm >= 0) return p.slice(nm + 1);
  const dist = p.lastIndexOf('/dist/');
  return dist >= 0 ? p.slice(dist + 1) : path.basename(p);
}
