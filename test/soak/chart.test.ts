// The soak's SVG chart: one self-contained document, a line per series, every fault marked in every panel.
import { describe, expect, it } from 'vitest';
import { escapeXml, niceMax, renderChart, type ChartData } from '../../soak/chart.js';

const data: ChartData = {
  title: 'Soak <test> & "chart"',
  subtitle: 'sub',
  minutes: 3,
  faults: [
    { kind: 'orq-5xx', startMs: 30_000, endMs: 40_000 },
    { kind: 'redis-pause', startMs: 60_000, endMs: 62_000 },
  ],
  panels: [
    { title: 'Memory', unit: 'MiB', series: [{ label: 'RSS 0', points: [[0, 80], [1, 81], [2, 82]] }, { label: 'heap 0', points: [[0, 20], [1, Number.NaN]], dashed: true }] },
    { title: 'p99', unit: 'ms', series: [{ label: 'p99', points: [] }] },
  ],
};

describe('renderChart', () => {
  const svg = renderChart(data);

  it('is one SVG document with nothing external', () => {
    expect(svg.startsWith('<svg xmlns="http://www.w3.org/2000/svg"')).toBe(true);
    expect(svg.trimEnd().endsWith('</svg>')).toBe(true);
    expect(svg).not.toMatch(/<script|href=|url\(/);
  });

  it('draws each series with points as a line, skipping values that are not numbers', () => {
    const lines = [...svg.matchAll(/<polyline points="([^"]*)"/g)].map((match) => (match[1] as string).split(' ').length);
    expect(lines).toEqual([3, 1]);
  });

  it('marks every fault in every panel, and escapes text', () => {
    expect(svg.match(/fill-opacity="0.15"/g)).toHaveLength(data.faults.length * data.panels.length);
    expect(svg).toContain('Soak &lt;test&gt; &amp; &quot;chart&quot;');
    expect(svg).toContain('>orq-5xx<');
    expect(svg).toContain('>redis-pause<');
  });
});

describe('chart helpers', () => {
  it('rounds an axis up to 1, 2 or 5 times a power of ten', () => {
    expect([niceMax(0), niceMax(0.7), niceMax(3), niceMax(81), niceMax(101), niceMax(Number.NaN)]).toEqual([1, 1, 5, 100, 200, 1]);
    expect(escapeXml(`a<b>&'"`)).toBe('a&lt;b&gt;&amp;&apos;&quot;');
  });
});
