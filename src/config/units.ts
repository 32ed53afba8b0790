// Human-friendly durations ("500ms", "30s", "5m", "24h", "7d") and sizes ("16MiB", "4MB").

const DURATION_UNITS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 };
const SIZE_UNITS: Record<string, number> = {
  '': 1,
  b: 1,
  kb: 1e3,
  mb: 1e6,
  gb: 1e9,
  kib: 1024,
  mib: 1024 ** 2,
  gib: 1024 ** 3,
};

/** Milliseconds; undefined when the text is not a duration. "0" means zero. */
export function parseDuration(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)?\s*$/.exec(text);
  if (!m) return undefined;
  const value = Number(m[1]);
  if (!m[2]) return value === 0 ? 0 : undefined; // a bare number is ambiguous, except zero
  return Math.round(value * DURATION_UNITS[m[2]]!);
}

/** Bytes; undefined when the text is not a size. */
export function parseSize(text: string): number | undefined {
  const m = /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(text);
  const unit = SIZE_UNITS[m?.[2]?.toLowerCase() ?? 'x'];
  return m && unit !== undefined ? Math.round(Number(m[1]) * unit) : undefined;
}

/** The shortest exact text for a duration in days at most: 604800000 -> "7d", 90000 -> "90s". */
export function formatDuration(ms: number): string {
  if (ms === 0) return '0';
  for (const unit of ['d', 'h', 'm', 's'] as const) {
    if (ms % DURATION_UNITS[unit]! === 0) return `${ms / DURATION_UNITS[unit]!}${unit}`;
  }
  return `${ms}ms`;
}
