// The soak's chart as one self-contained SVG (no script, no external font or file): memory, calls to orq, p99 and
// registered users over time, one panel each on a shared time axis, with every fault marked across all panels.
import type { FaultKind, FaultRecord } from './faults.js';

export interface Series {
  label: string;
  /** [minutes since start, value] */
  points: ReadonlyArray<readonly [number, number]>;
  dashed?: boolean;
}

export interface Panel {
  title: string;
  unit: string;
  series: Series[];
}

export interface ChartData {
  title: string;
  subtitle: string;
  minutes: number;
  panels: Panel[];
  faults: readonly FaultRecord[];
}

const WIDTH = 1000;
const LEFT = 70;
const RIGHT = 170;
const PANEL_HEIGHT = 150;
const GAP = 40;
const TOP = 90;
const COLORS = ['#1f77b4', '#ff7f0e', '#2ca02c', '#9467bd', '#8c564b', '#17becf'];

function faultColor(kind: FaultKind): string {
  if (kind.startsWith('orq-')) return '#d62728';
  if (kind.startsWith('redis-')) return '#1f5fbf';
  return '#7b3fa0';
}

export function escapeXml(text: string): string {
  return text.replace(/[<>&'"]/g, (char) => ({ '<': '&lt;', '>': '&gt;', '&': '&amp;', "'": '&apos;', '"': '&quot;' })[char] as string);
}

/** A "nice" upper bound for an axis: 1, 2 or 5 times a power of ten, at least `max`. */
export function niceMax(max: number): number {
  if (!(max > 0) || !Number.isFinite(max)) return 1;
  const power = 10 ** Math.floor(Math.log10(max));
  for (const step of [1, 2, 5, 10]) if (step * power >= max) return step * power;
  return 10 * power;
}

function format(value: number): string {
  return Math.abs(value) >= 100 || Number.isInteger(value) ? String(Math.round(value)) : value.toFixed(1);
}

export function renderChart(data: ChartData): string {
  const plotWidth = WIDTH - LEFT - RIGHT;
  const height = TOP + data.panels.length * (PANEL_HEIGHT + GAP) + 40;
  const x = (minute: number) => LEFT + (Math.min(Math.max(minute, 0), data.minutes) / data.minutes) * plotWidth;
  const parts: string[] = [
    `<svg xmlns="http://www.w3.org/2000/svg" width="${WIDTH}" height="${height}" viewBox="0 0 ${WIDTH} ${height}" font-family="sans-serif" font-size="11">`,
    `<rect width="100%" height="100%" fill="#fff"/>`,
    `<text x="${LEFT}" y="24" font-size="16" font-weight="bold">${escapeXml(data.title)}</text>`,
    `<text x="${LEFT}" y="44" fill="#444">${escapeXml(data.subtitle)}</text>`,
  ];
  data.panels.forEach((panel, index) => {
    const top = TOP + index * (PANEL_HEIGHT + GAP);
    const bottom = top + PANEL_HEIGHT;
    const values = panel.series.flatMap((series) => series.points.map(([, value]) => value)).filter(Number.isFinite);
    const yMax = niceMax(Math.max(0, ...values));
    const y = (value: number) => bottom - (value / yMax) * PANEL_HEIGHT;
    parts.push(`<text x="${LEFT}" y="${top - 8}" font-weight="bold">${escapeXml(panel.title)}</text>`);
    parts.push(`<rect x="${LEFT}" y="${top}" width="${plotWidth}" height="${PANEL_HEIGHT}" fill="none" stroke="#999"/>`);
    for (const fraction of [0, 0.5, 1]) {
      const value = yMax * fraction;
      parts.push(`<line x1="${LEFT}" x2="${LEFT + plotWidth}" y1="${y(value)}" y2="${y(value)}" stroke="#eee"/>`);
      parts.push(`<text x="${LEFT - 6}" y="${y(value) + 4}" text-anchor="end" fill="#444">${format(value)}</text>`);
    }
    parts.push(`<text x="14" y="${top + PANEL_HEIGHT / 2}" transform="rotate(-90 14 ${top + PANEL_HEIGHT / 2})" text-anchor="middle" fill="#444">${escapeXml(panel.unit)}</text>`);
    for (const fault of data.faults) {
      const left = x(fault.startMs / 60_000);
      const width = Math.max(1, x(fault.endMs / 60_000) - left);
      parts.push(`<rect x="${left.toFixed(1)}" y="${top}" width="${width.toFixed(1)}" height="${PANEL_HEIGHT}" fill="${faultColor(fault.kind)}" fill-opacity="0.15"/>`);
      parts.push(`<line x1="${left.toFixed(1)}" x2="${left.toFixed(1)}" y1="${top}" y2="${bottom}" stroke="${faultColor(fault.kind)}" stroke-opacity="0.6"/>`);
    }
    panel.series.forEach((series, seriesIndex) => {
      const color = COLORS[seriesIndex % COLORS.length] as string;
      const points = series.points.filter(([, value]) => Number.isFinite(value)).map(([minute, value]) => `${x(minute).toFixed(1)},${y(value).toFixed(1)}`);
      if (points.length > 0) {
        parts.push(`<polyline points="${points.join(' ')}" fill="none" stroke="${color}" stroke-width="1.5"${series.dashed === true ? ' stroke-dasharray="4 3"' : ''}/>`);
      }
      const legendY = top + 14 + seriesIndex * 16;
      parts.push(`<line x1="${LEFT + plotWidth + 10}" x2="${LEFT + plotWidth + 30}" y1="${legendY - 4}" y2="${legendY - 4}" stroke="${color}" stroke-width="2"${series.dashed === true ? ' stroke-dasharray="4 3"' : ''}/>`);
      parts.push(`<text x="${LEFT + plotWidth + 34}" y="${legendY}">${escapeXml(series.label)}</text>`);
    });
  });
  const axisY = TOP + data.panels.length * (PANEL_HEIGHT + GAP) - GAP + 16;
  const step = niceMax(data.minutes / 8);
  for (let minute = 0; minute <= data.minutes + 1e-9; minute += step) {
    parts.push(`<text x="${x(minute).toFixed(1)}" y="${axisY}" text-anchor="middle" fill="#444">${format(minute)}</text>`);
  }
  parts.push(`<text x="${LEFT + plotWidth / 2}" y="${axisY + 18}" text-anchor="middle" fill="#444">minutes since start</text>`);
  // The fault legend, one row under the subtitle: each kind that happened, in its colour (orq red, Redis blue, instance purple).
  let legendX = LEFT;
  for (const kind of new Set(data.faults.map((fault) => fault.kind))) {
    parts.push(`<rect x="${legendX}" y="52" width="10" height="10" fill="${faultColor(kind)}" fill-opacity="0.5"/>`);
    parts.push(`<text x="${legendX + 14}" y="61" fill="${faultColor(kind)}">${escapeXml(kind)}</text>`);
    legendX += 24 + kind.length * 6.5;
  }
  parts.push('</svg>');
  return `${parts.join('\n')}\n`;
}
