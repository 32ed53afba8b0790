// A small line chart as SVG text: axes with round ticks, one polyline per series, a legend below.

export interface Series {
  name: string;
  color: string;
  dashed?: boolean;
  points: Array<[number, number]>;
}

export interface Chart {
  title: string;
  xLabel: string;
  yLabel: string;
  series: Series[];
}

const esc = (s: string) => s.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');

/** About `count` round tick values covering [0, max]. */
function ticks(max: number, count: number, integer = false): number[] {
  if (max <= 0) return [0, 1];
  const raw = integer ? Math.max(1, max / count) : max / count;
  const mag = 10 ** Math.floor(Math.log10(raw));
  const step = [1, 2, 2.5, 5, 10].map((m) => m * mag).find((s) => s >= raw) ?? 10 * mag;
  const out: number[] = [];
  for (let v = 0; v <= max + step * 1e-9; v += step) out.push(Number(v.toPrecision(12)));
  if (out[out.length - 1]! < max) out.push(Number((out[out.length - 1]! + step).toPrecision(12)));
  return out;
}

const label = (v: number) => (Number.isInteger(v) ? String(v) : v.toFixed(Math.max(0, -Math.floor(Math.log10(Math.abs(v) || 1)) + 1)));

export function lineChart(chart: Chart): string {
  const width = 760;
  const plot = { left: 70, top: 40, width: 660, height: 320 };
  const legendRows = Math.ceil(chart.series.length / 2);
  const height = plot.top + plot.height + 50 + legendRows * 18 + 10;
  const all = chart.series.flatMap((s) => s.points);
  const xt = ticks(Math.max(1, ...all.map((p) => p[0])), 10, true);
  const yt = ticks(Math.max(0, ...all.map((p) => p[1])), 6);
  const [xMax, yMax] = [xt[xt.length - 1]!, yt[yt.length - 1]!];
  const x = (v: number) => plot.left + (v / xMax) * plot.width;
  const y = (v: number) => plot.top + plot.height - (v / yMax) * plot.height;
  const out: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${width}" height="${height}" viewBox="0 0 ${width} ${height}" font-family="sans-serif" font-size="12">`,
    `<rect width="${width}" height="${height}" fill="white"/>`,
    `<text x="${width / 2}" y="20" text-anchor="middle" font-size="15">${esc(chart.title)}</text>`,
  ];
  for (const v of yt) {
    out.push(`<line x1="${plot.left}" x2="${plot.left + plot.width}" y1="${y(v)}" y2="${y(v)}" stroke="#ddd"/>`);
    out.push(`<text x="${plot.left - 6}" y="${y(v) + 4}" text-anchor="end">${label(v)}</text>`);
  }
  for (const v of xt) {
    out.push(`<line x1="${x(v)}" x2="${x(v)}" y1="${plot.top + plot.height}" y2="${plot.top + plot.height + 4}" stroke="#333"/>`);
    out.push(`<text x="${x(v)}" y="${plot.top + plot.height + 17}" text-anchor="middle">${label(v)}</text>`);
  }
  out.push(`<rect x="${plot.left}" y="${plot.top}" width="${plot.width}" height="${plot.height}" fill="none" stroke="#333"/>`);
  out.push(`<text x="${plot.left + plot.width / 2}" y="${plot.top + plot.height + 35}" text-anchor="middle">${esc(chart.xLabel)}</text>`);
  out.push(`<text transform="translate(16 ${plot.top + plot.height / 2}) rotate(-90)" text-anchor="middle">${esc(chart.yLabel)}</text>`);
  for (const s of chart.series) {
    const pts = s.points.map(([px, py]) => `${x(px).toFixed(1)},${y(py).toFixed(1)}`).join(' ');
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(`<polyline points="${pts}" fill="none" stroke="${s.color}" stroke-width="2"${dash}/>`);
    for (const [px, py] of s.points) out.push(`<circle cx="${x(px).toFixed(1)}" cy="${y(py).toFixed(1)}" r="2.5" fill="${s.color}"/>`);
  }
  chart.series.forEach((s, i) => {
    const lx = plot.left + (i % 2) * (plot.width / 2);
    const ly = plot.top + plot.height + 55 + Math.floor(i / 2) * 18;
    const dash = s.dashed ? ' stroke-dasharray="6 4"' : '';
    out.push(`<line x1="${lx}" x2="${lx + 28}" y1="${ly - 4}" y2="${ly - 4}" stroke="${s.color}" stroke-width="2"${dash}/>`);
    out.push(`<text x="${lx + 34}" y="${ly}">${esc(s.name)}</text>`);
  });
  out.push('</svg>');
  return `${out.join('\n')}\n`;
}
