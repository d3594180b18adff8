/// <reference lib="dom" />
// The dashboard's only script: draws the agent page's charts with uPlot, bundled by
// scripts/build.mjs into dist/serve/assets/app.js (no CDN: the server may have no internet).
import uPlot from 'uplot';
// A type only: erased from the bundle, so the page's data is described once, where the server makes it.
import type { HourlySeries } from '../../metrics/series.js';

type Line = { label: string; values: Array<number | null>; stroke: string; fill?: string };

function chart(id: string, hours: number[], lines: Line[], yLabel: string): void {
  const el = document.getElementById(id);
  if (!el) return;
  const points = lines.reduce((n, line) => n + line.values.filter((v) => v !== null && v !== 0).length, 0);
  el.dataset.points = String(points);
  const width = Math.max(280, el.clientWidth || 420);
  const plot = new uPlot(
    {
      width,
      height: 200,
      scales: { x: { time: true } },
      axes: [{ stroke: '#8a94a6', grid: { stroke: '#e7eaf0' } }, { label: yLabel, stroke: '#8a94a6', grid: { stroke: '#e7eaf0' } }],
      series: [{}, ...lines.map((line) => ({ label: line.label, stroke: line.stroke, fill: line.fill, width: 2, spanGaps: false, points: { show: true, size: 5 } }))],
    },
    [hours, ...lines.map((line) => line.values)] as uPlot.AlignedData,
    el,
  );
  window.addEventListener('resize', () => plot.setSize({ width: Math.max(280, el.clientWidth || 420), height: 200 }));
}

function draw(): void {
  const source = document.getElementById('series');
  if (!source?.textContent) return;
  const s = JSON.parse(source.textContent) as HourlySeries;
  const seconds = (list: Array<number | null> | null) => (list ?? []).map((v) => (v === null ? null : v / 1000));
  if (s.latencyP50Ms) {
    chart('chart-latency', s.hours, [
      { label: 'p50', values: seconds(s.latencyP50Ms), stroke: '#3366cc' },
      { label: 'p95', values: seconds(s.latencyP95Ms), stroke: '#dc7633' },
    ], 's');
  } else {
    const el = document.getElementById('chart-latency');
    if (el) el.textContent = "this agent's database keeps no latency";
  }
  chart('chart-traffic', s.hours, [
    { label: 'in', values: s.messagesIn, stroke: '#3366cc', fill: 'rgba(51,102,204,0.08)' },
    { label: 'out', values: s.messagesOut, stroke: '#2e9e5b' },
  ], 'messages');
  if (s.tokens) chart('chart-tokens', s.hours, [{ label: 'tokens', values: s.tokens, stroke: '#8e44ad', fill: 'rgba(142,68,173,0.08)' }], 'tokens');
  else {
    const el = document.getElementById('chart-tokens');
    if (el) el.textContent = "this agent's database keeps no token counts";
  }
}

document.addEventListener('DOMContentLoaded', draw);
