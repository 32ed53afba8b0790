// Inline SVG pictures, drawn here from the admin API's data: a system's recovery points on a time
// line (one lane per tag), and storage and recovery points over time. Each has a text summary for
// screen readers; the same data is in the tables next to them.
import { s } from './dom.js';
import { bytes, utc } from './format.js';

const MINUTE = 60_000;
const HOUR = 60 * MINUTE;
const DAY = 24 * HOUR;
const STEPS = [MINUTE, 5 * MINUTE, 15 * MINUTE, 30 * MINUTE, HOUR, 3 * HOUR, 6 * HOUR, 12 * HOUR, DAY, 2 * DAY, 7 * DAY, 14 * DAY, 30 * DAY, 91 * DAY, 182 * DAY, 365 * DAY];
const MONTHS = ['Jan', 'Feb', 'Mar', 'Apr', 'May', 'Jun', 'Jul', 'Aug', 'Sep', 'Oct', 'Nov', 'Dec'];
const pad = (n) => String(n).padStart(2, '0');

/** Ticks at round UTC times: at most `max` of them over [from, to]. */
export function timeTicks(from, to, max) {
  const span = Math.max(to - from, MINUTE);
  const step = STEPS.find((st) => span / st <= max) ?? STEPS.at(-1);
  const ticks = [];
  for (let t = Math.ceil(from / step) * step; t <= to; t += step) {
    const d = new Date(t);
    const midnight = d.getUTCHours() === 0 && d.getUTCMinutes() === 0;
    const label = step >= DAY || midnight ? `${MONTHS[d.getUTCMonth()]} ${d.getUTCDate()}` : `${pad(d.getUTCHours())}:${pad(d.getUTCMinutes())}`;
    ticks.push({ t, label });
  }
  return ticks;
}

/** Round byte values for an axis up to `max`: 1, 2 or 5 times a power of ten in a binary unit. */
export function byteTicks(max, count = 4) {
  if (!(max > 0)) return [0];
  let unit = 1;
  while (max / unit >= 1024 && unit < 1024 ** 5) unit *= 1024;
  const raw = max / unit / count;
  const p = 10 ** Math.floor(Math.log10(raw));
  const step = ([1, 2, 5, 10].find((m) => m * p >= raw) ?? 10) * p * unit;
  const ticks = [];
  for (let v = 0; v <= max + step * 0.001; v += step) ticks.push(v);
  if (ticks.at(-1) < max) ticks.push(ticks.at(-1) + step);
  return ticks;
}

function axisX(g, ticks, x, y0, y1) {
  for (const tick of ticks) {
    const px = x(tick.t);
    g.append(s('line', { x1: px, x2: px, y1: y0, y2: y1, class: 'grid' }));
    g.append(s('text', { x: px, y: y1 + 16, class: 'tick', 'text-anchor': 'middle' }, tick.label));
  }
}

/**
 * The recovery points of one system. entries: [{ key, tag, digest, at (ms), current, pinned,
 * locked, pruned, label }]. onSelect(key) is called when a marker is clicked.
 */
export function timelineChart({ entries, width, now = Date.now(), onSelect }) {
  const tags = [...new Set(entries.map((e) => e.tag))].sort();
  const labelWidth = Math.min(150, Math.max(70, width * 0.22));
  const lane = 34;
  const top = 14;
  const height = top + Math.max(tags.length, 1) * lane + 30;
  const times = entries.map((e) => e.at);
  const from = Math.min(...times, now - HOUR);
  const to = now;
  const pad = (to - from) * 0.04 || HOUR;
  const x0 = labelWidth + 10;
  const x1 = width - 14;
  const x = (t) => x0 + ((t - (from - pad)) / (to + pad - (from - pad))) * (x1 - x0);
  const laneY = (tag) => top + tags.indexOf(tag) * lane + lane / 2;

  const oldest = entries.length ? utc(new Date(Math.min(...times)).toISOString()) : '—';
  const svg = s('svg', {
    class: 'chart timeline',
    width,
    height,
    viewBox: `0 0 ${width} ${height}`,
    role: 'img',
    'aria-label': `Timeline of ${entries.length} recovery points in ${tags.length} tag(s), oldest pushed ${oldest}. The table below lists them.`,
  });
  const grid = s('g');
  axisX(grid, timeTicks(from - pad, to + pad, Math.max(2, Math.floor((x1 - x0) / 90))), x, top - 6, height - 30);
  svg.append(grid);
  tags.forEach((tag) => {
    const y = laneY(tag);
    svg.append(s('line', { x1: x0, x2: x1, y1: y, y2: y, class: 'lane' }));
    const text = tag.length > 18 ? `${tag.slice(0, 17)}…` : tag;
    svg.append(s('text', { x: labelWidth, y: y + 4, class: 'lane-label', 'text-anchor': 'end' }, s('title', {}, tag), text));
  });
  // Now: where an RPO is measured from.
  svg.append(s('line', { x1: x(now), x2: x(now), y1: top - 8, y2: height - 30, class: 'now' }));
  svg.append(s('text', { x: x(now) - 4, y: top - 1 + 0, class: 'tick now-label', 'text-anchor': 'end' }, 'now'));

  // Oldest first, so the newest (and current) markers are drawn on top.
  for (const e of [...entries].sort((a, b) => a.at - b.at)) {
    const g = s('g', { class: 'marker', dataset: { key: e.key }, onclick: () => onSelect?.(e.key) });
    g.append(s('title', {}, e.label));
    g.append(marker(e, x(e.at), laneY(e.tag)));
    svg.append(g);
  }
  return svg;
}

/** The shape of a point: square locked, diamond pinned, hollow pruned, filled kept; ring: current. */
export function marker(state, cx, cy) {
  const g = s('g');
  if (state.current) g.append(s('circle', { cx, cy, r: 10, class: 'm-current' }));
  if (state.locked) g.append(s('rect', { x: cx - 6, y: cy - 6, width: 12, height: 12, class: 'm-locked' }));
  else if (state.pinned) g.append(s('path', { d: `M ${cx} ${cy - 8} L ${cx + 8} ${cy} L ${cx} ${cy + 8} L ${cx - 8} ${cy} Z`, class: 'm-pinned' }));
  else if (state.pruned) g.append(s('circle', { cx, cy, r: 6, class: 'm-pruned' }));
  else g.append(s('circle', { cx, cy, r: 6, class: 'm-kept' }));
  return g;
}

/** A legend swatch: the marker alone in a small SVG. */
export function legendMarker(state) {
  const svg = s('svg', { width: 24, height: 24, viewBox: '0 0 24 24', 'aria-hidden': 'true', class: 'legend-marker' });
  svg.append(marker(state, 12, 12));
  return svg;
}

/**
 * Storage and recovery points over time. samples: [{ at, points, logicalBytes, uniqueBytes }],
 * oldest first; the last values are carried to now.
 */
export function storageChart({ samples, width, now = Date.now() }) {
  const height = 230;
  const top = 16;
  const bottom = height - 30;
  const left = 74;
  const right = width - 44;
  const data = samples.map((p) => ({ ...p, t: Date.parse(p.at) }));
  const from = data.length ? data[0].t : now - DAY;
  // A little past now, so the latest step shows as a level and not as the chart's edge.
  const end = Math.max(now, from + HOUR);
  const to = end + (end - from) * 0.03;
  const last = data.at(-1);
  if (last) data.push({ ...last, t: to });
  const maxBytes = Math.max(1, ...data.map((p) => Math.max(p.logicalBytes, p.uniqueBytes)));
  const yTicks = byteTicks(maxBytes);
  const yMax = yTicks.at(-1) || 1;
  const maxPoints = Math.max(1, ...data.map((p) => p.points));
  const pMax = niceCount(maxPoints);
  const x = (t) => left + ((t - from) / (to - from || 1)) * (right - left);
  const y = (v) => bottom - (v / yMax) * (bottom - top);
  const yp = (v) => bottom - (v / pMax) * (bottom - top);

  const lastSample = samples.at(-1);
  const summary = lastSample
    ? `Storage over time: now ${bytes(lastSample.uniqueBytes)} stored for ${lastSample.points} recovery points, ${bytes(lastSample.logicalBytes)} without dedup.`
    : 'No recovery points yet.';
  const svg = s('svg', { class: 'chart storage', width, height, viewBox: `0 0 ${width} ${height}`, role: 'img', 'aria-label': summary });
  const grid = s('g');
  axisX(grid, timeTicks(from, to, Math.max(2, Math.floor((right - left) / 90))), x, top, bottom);
  for (const v of yTicks) {
    grid.append(s('line', { x1: left, x2: right, y1: y(v), y2: y(v), class: 'grid' }));
    grid.append(s('text', { x: left - 6, y: y(v) + 4, class: 'tick', 'text-anchor': 'end' }, bytes(v)));
  }
  for (const v of [0, pMax / 2, pMax]) {
    grid.append(s('text', { x: right + 6, y: yp(v) + 4, class: 'tick points-tick' }, String(Math.round(v))));
  }
  grid.append(s('text', { x: width - 4, y: bottom + 16, class: 'tick points-tick', 'text-anchor': 'end' }, 'points'));
  svg.append(grid);
  if (data.length === 0) return svg;

  // Steps, not slopes: storage changes when a push lands.
  const stepPath = (value, yf) => {
    let d = `M ${x(data[0].t).toFixed(1)} ${yf(value(data[0])).toFixed(1)}`;
    for (const p of data.slice(1)) d += ` H ${x(p.t).toFixed(1)} V ${yf(value(p)).toFixed(1)}`;
    return d;
  };
  const unique = stepPath((p) => p.uniqueBytes, y);
  svg.append(s('path', { d: `${unique} V ${bottom} H ${x(data[0].t).toFixed(1)} Z`, class: 'area-unique' }));
  svg.append(s('path', { d: stepPath((p) => p.logicalBytes, y), class: 'line-logical' }));
  svg.append(s('path', { d: unique, class: 'line-unique' }));
  svg.append(s('path', { d: stepPath((p) => p.points, yp), class: 'line-points' }));
  return svg;
}

function niceCount(n) {
  const p = 10 ** Math.floor(Math.log10(n));
  return ([1, 2, 5, 10].find((m) => m * p >= n) ?? 10) * p;
}

/** One horizontal bar pair for the per-system table: size, and the part only that system holds. */
export function sizeBar(size, only, max, width = 120) {
  const w = (v) => (max > 0 ? Math.max(v > 0 ? 1 : 0, (v / max) * width) : 0);
  return s(
    'svg',
    { width, height: 12, viewBox: `0 0 ${width} 12`, class: 'sizebar', 'aria-hidden': 'true' },
    s('rect', { x: 0, y: 1, width: w(size), height: 10, class: 'bar-size' }),
    s('rect', { x: 0, y: 1, width: w(only), height: 10, class: 'bar-only' }),
  );
}

