// Probability of each emotion over time: one line per class through the windows' clip
// probabilities (at each window's middle), optionally smoothed over neighbouring windows.
import { CLASSES, COLORS } from './emotions.js';
import { element, reset, timeAxis } from './svg.js';

const HEIGHT = 180;
const LEFT = 34;
const RIGHT = 8;
const TOP = 6;
const PLOT = HEIGHT - TOP - 24;

/** Moving average of each window's probabilities over ±`radius` windows (0: unchanged). */
export function smooth(windows, radius) {
    return windows.map((_, i) => {
        const near = windows.slice(Math.max(0, i - radius), i + radius + 1);
        return CLASSES.map((_, c) => near.reduce((sum, w) => sum + w.probabilities[c], 0) / near.length);
    });
}

export function drawChart(svg, windows, { from, to, radius }) {
    const width = reset(svg, HEIGHT);
    const x = (t) => LEFT + ((t - from) / Math.max(to - from, 1e-3)) * (width - LEFT - RIGHT);
    const y = (p) => TOP + (1 - p) * PLOT;
    for (const p of [0, 0.5, 1]) {
        svg.append(element('line', { x1: LEFT, x2: width - RIGHT, y1: y(p), y2: y(p), class: 'grid' }));
        svg.append(element('text', { x: LEFT - 4, y: y(p) + 4, class: 'tick right' }, p.toFixed(1)));
    }
    timeAxis(svg, x, from, to, TOP + PLOT);
    const visible = windows.filter((w) => w.end > from && w.start < to);
    const values = smooth(visible, radius);
    CLASSES.forEach((name, c) => {
        const points = visible.map((w, i) => `${x((w.start + w.end) / 2).toFixed(1)},${y(values[i][c]).toFixed(1)}`);
        if (points.length === 1) points.push(points[0].replace(/^[\d.]+/, (v) => String(+v + 2)));
        if (points.length) {
            svg.append(element('polyline', { points: points.join(' '), stroke: COLORS[c], class: 'series', 'data-class': name }));
        }
    });
}
