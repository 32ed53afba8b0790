// Formatting for people reading at 3 a.m.: sizes in binary units, times in UTC with how long ago,
// digests shortened (full ones stay in titles and copy boxes).

const UNITS = ['B', 'KiB', 'MiB', 'GiB', 'TiB', 'PiB'];

export function bytes(n) {
  if (typeof n !== 'number' || !Number.isFinite(n)) return '—';
  let value = n;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < UNITS.length - 1) {
    value /= 1024;
    unit++;
  }
  const digits = unit === 0 || Math.abs(value) >= 100 ? 0 : Math.abs(value) >= 10 ? 1 : 2;
  return `${value.toFixed(digits)} ${UNITS[unit]}`;
}

const pad = (n) => String(n).padStart(2, '0');

/** "2026-11-30 01:34 UTC" */
export function utc(iso) {
  if (!iso) return '—';
  const d = new Date(iso);
  if (Number.isNaN(d.getTime())) return '—';
  return `${d.getUTCFullYear()}-${pad(d.getUTCMonth() + 1)}-${pad(d.getUTCDate())} ${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())} UTC`;
}

/** "3 h 5 min", "2 days 4 h", "45 s" */
export function duration(seconds) {
  if (typeof seconds !== 'number' || !Number.isFinite(seconds)) return '—';
  const s = Math.max(0, Math.round(seconds));
  if (s < 60) return `${s} s`;
  const m = Math.floor(s / 60);
  if (m < 60) return `${m} min`;
  const h = Math.floor(m / 60);
  if (h < 48) return m % 60 ? `${h} h ${m % 60} min` : `${h} h`;
  const d = Math.floor(h / 24);
  return h % 24 ? `${d} days ${h % 24} h` : `${d} days`;
}

/** "3 h 5 min ago" / "in 20 h" */
export function ago(iso, now = Date.now()) {
  if (!iso) return 'never';
  const t = Date.parse(iso);
  if (Number.isNaN(t)) return '—';
  const s = (now - t) / 1000;
  if (Math.abs(s) < 30) return 'just now';
  return s >= 0 ? `${duration(s)} ago` : `in ${duration(-s)}`;
}

/** sha256:0123456789ab (12 hex digits: enough to tell points apart on a screen) */
export function shortDigest(digest) {
  if (typeof digest !== 'string') return '—';
  const i = digest.indexOf(':');
  return i < 0 ? digest.slice(0, 12) : `${digest.slice(0, i + 1)}${digest.slice(i + 1, i + 13)}`;
}

export function count(n, one, many = `${one}s`) {
  return `${n} ${n === 1 ? one : many}`;
}

/** Retention rules in words, from the policy object the admin API returns. */
export function policyRules(policy) {
  const rules = [];
  const n = (key, text) => typeof policy[key] === 'number' && rules.push(text(policy[key]));
  n('keepLast', (v) => `the last ${v}`);
  if (policy.keepWithin) rules.push(`everything pushed within ${policy.keepWithin}`);
  n('keepHourly', (v) => `${v} hourly`);
  n('keepDaily', (v) => `${v} daily`);
  n('keepWeekly', (v) => `${v} weekly`);
  n('keepMonthly', (v) => `${v} monthly`);
  n('keepYearly', (v) => `${v} yearly`);
  if (Array.isArray(policy.keepTags) && policy.keepTags.length) rules.push(`tags ${policy.keepTags.join(', ')}`);
  if (policy.keepPulledWithin) rules.push(`points pulled within ${policy.keepPulledWithin}`);
  return rules;
}

const REASONS = {
  pinned: 'pinned',
  current: 'current tag',
  last: 'among the last N',
  within: 'recent enough',
  hourly: 'hourly',
  daily: 'daily',
  weekly: 'weekly',
  monthly: 'monthly',
  yearly: 'yearly',
  tag: 'tag rule',
  pulled: 'pulled recently',
  locked: 'locked',
};

export function reason(code) {
  return REASONS[code] ?? code;
}
