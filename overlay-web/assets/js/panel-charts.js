// The panel's charts: uPlot (vendored from npm, assets/vendor/uplot) loaded on first use,
// one chart per box (`.an-chart[data-chart=NAME]`), redrawn in place; and the bar chart the
// analytics view draws its funnel, comparison and LTV with.
import { el } from './views.js';

const UPLOT_JS = '/assets/vendor/uplot/uPlot.iife.min.js';
const UPLOT_CSS = '/assets/vendor/uplot/uPlot.min.css';
export const INK = '#eef0f2';
const MUTED = '#9aa1a9';
const GRID = '#2e3237';

/** Chart name → its uPlot. */
export const charts = new Map();
let uplotReady = null;

/** Loads uPlot (script and style) once. */
export function loadUplot() {
  if (window.uPlot) return Promise.resolve();
  if (!uplotReady) {
    document.head.append(el('link', { rel: 'stylesheet', href: UPLOT_CSS }));
    uplotReady = new Promise((ok, fail) => {
      const s = el('script', { src: UPLOT_JS });
      s.addEventListener('load', ok);
      s.addEventListener('error', () => { uplotReady = null; fail(new Error('uPlot did not load')); });
      document.head.append(s);
    });
  }
  return uplotReady;
}


export function size(host) {
  const width = Math.floor(host.clientWidth);
  return { width, height: Number(host.dataset.height) || (width < 480 ? 210 : 250) };
}

export function axis(extra) {
  return { stroke: MUTED, font: '12px system-ui, sans-serif', grid: { stroke: GRID, width: 1 }, ticks: { stroke: GRID, width: 1, size: 4 }, ...extra };
}

/** Draws (or redraws) chart `name` in its box with `data`; `opts(width, height)` gives uPlot's options. */
export function draw(name, data, opts) {
  const host = document.querySelector(`.an-chart[data-chart="${name}"]`);
  undraw(name);
  if (!window.uPlot) {
    host.dataset.state = 'no-library';
    return;
  }
  const { width, height } = size(host);
  const u = new window.uPlot(opts(Math.max(width, 200), height), data, host);
  charts.set(name, u);
  host.dataset.state = 'drawn';
  host.dataset.series = u.series.slice(1).map((x) => x.label).join('|');
}

export function undraw(name) {
  charts.get(name)?.destroy();
  charts.delete(name);
  const host = document.querySelector(`.an-chart[data-chart="${name}"]`);
  if (host) host.dataset.state = 'empty';
}

/**
 * A bar chart of categories (`labels`), one bar per series in each (grouped when several):
 * `series: [{label, values, colors}]` (`colors` one per bar, or one for the series); the
 * value on each bar where it fits.
 */
export function barChart(name, { labels, narrowLabels = null, series, format, integer = false, range = null, splits = null }) {
  const n = labels.length;
  const xs = labels.map((_, i) => i);
  const group = series.length > 1 ? 0.8 : 0.6;  // share of a category's width the bars take
  const each = group / series.length;
  const bar = each * (series.length > 1 ? 0.88 : 1); // a bar's width, a gap between the bars of a group
  const max = Math.max(0, ...series.flatMap((s) => s.values.filter((v) => v !== null && v !== undefined)));
  const top = range ? range[1] : integer ? Math.max(1, Math.ceil(max * 1.15)) : (max || 1) * 1.18;
  const labelBars = (u) => {
    const ctx = u.ctx;
    const dpr = devicePixelRatio || 1;
    ctx.save();
    ctx.font = `600 ${Math.round(11.5 * dpr)}px system-ui, sans-serif`;
    ctx.fillStyle = INK;
    ctx.textAlign = 'center';
    ctx.textBaseline = 'bottom';
    const barPx = u.valToPos(bar, 'x', true) - u.valToPos(0, 'x', true);
    series.forEach((s, si) => s.values.forEach((v, i) => {
      if (v === null || v === undefined) return;
      const text = format(v);
      if (ctx.measureText(text).width > barPx * (series.length > 1 ? 1.05 : 1.6)) return;
      const x = u.valToPos(i - group / 2 + each * si + bar / 2, 'x', true);
      const y = u.valToPos(v, 'y', true);
      ctx.fillText(text, x, y - 3 * dpr);
    }));
    ctx.restore();
  };
  draw(name, [xs, ...series.map((s) => s.values.map((v) => (v === undefined ? null : v)))], (width, height) => ({
    width, height, legend: { show: false }, cursor: { show: false },
    scales: { x: { time: false, range: [-0.5, n - 0.5] }, y: { range: [0, top] } },
    axes: [
      axis({
        splits: () => xs, grid: { show: false }, ticks: { show: false }, gap: 6,
        size: (u, values) => ((values || []).some((v) => String(v).includes('\n')) ? 46 : 32),
        // Below ~90 px a category, the labels go on two lines (at the last space).
        values: (u) => (u.bbox.width / (devicePixelRatio || 1) / n >= 90 ? labels
          : narrowLabels || labels.map((l) => l.replace(/ (?=[^ ]*$)/, '\n'))),
      }),
      axis({
        values: (u, s) => s.map((v) => format(v)), size: 60,
        ...(splits ? { splits: () => splits } : integer ? { incrs: [1, 2, 5, 10, 20, 25, 50, 100, 200, 250, 500, 1000, 2000, 5000, 10000, 25000, 50000, 100000] } : {}),
      }),
    ],
    series: [{}, ...series.map((s, si) => {
      const many = Array.isArray(s.colors);
      return {
        label: s.label, width: 0, points: { show: false },
        fill: many ? s.colors[0] : s.colors, stroke: many ? s.colors[0] : s.colors,
        paths: window.uPlot.paths.bars({
          size: [1, Infinity, 2], radius: 0.12,
          disp: {
            x0: { unit: 1, values: (u) => u.data[0].map((x) => x - group / 2 + each * si) },
            size: { unit: 1, values: () => [bar] },
            ...(many ? { fill: { unit: 3, values: () => s.colors } } : {}),
          },
        }),
      };
    })],
    hooks: { draw: [labelBars] },
  }));
}
