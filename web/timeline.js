// The per-instance timeline: every window as a bar for the clip's (bag's) prediction above
// its 3D instances, each coloured by its dominant emotion, as strong as DLIAM's gate lets it
// through. Overlapping windows go to separate lanes.
import { CLASSES, COLORS, argmax, percent } from './emotions.js';
import { element, reset, timeAxis } from './svg.js';

const LEFT = 8;
const RIGHT = 8;
const BAG = 16;
const INSTANCE = 30;
const LANE = BAG + 2 + INSTANCE + 8;
const MAX_LANES = 4;

/** Lanes so that windows in one lane do not overlap (greedy, in time order). */
function lanes(windows) {
    const ends = [];
    return windows.map((window) => {
        let lane = ends.findIndex((end) => end <= window.start + 1e-6);
        if (lane < 0) lane = ends.length < MAX_LANES ? ends.length : ends.indexOf(Math.min(...ends));
        ends[lane] = window.end;
        return lane;
    });
}

/**
 * Draws `windows` between the times `from` and `to` (seconds). `selected` (a window index)
 * is outlined. Each segment carries its details for the tooltip in `data-tip`.
 */
export function drawTimeline(svg, windows, { from, to, selected }) {
    const visible = windows.filter((w) => w.end > from && w.start < to);
    const lane = lanes(visible);
    const count = Math.max(1, ...lane.map((l) => l + 1));
    const height = count * LANE + 22;
    const width = reset(svg, height);
    const x = (t) => LEFT + ((t - from) / Math.max(to - from, 1e-3)) * (width - LEFT - RIGHT);
    const clip = element('clipPath', { id: 'timeline-area' });
    clip.append(element('rect', { x: LEFT, y: 0, width: width - LEFT - RIGHT, height }));
    svg.append(clip);
    const area = element('g', { 'clip-path': 'url(#timeline-area)' });
    svg.append(area);
    visible.forEach((window, i) => {
        const top = lane[i] * LANE + 2;
        const group = element('g', { class: `window${window.index === selected ? ' selected' : ''}`, 'data-window': window.index });
        const best = argmax(window.probabilities);
        const bag = element('rect', {
            x: x(window.start), y: top, width: Math.max(1, x(window.end) - x(window.start)), height: BAG, rx: 3,
            fill: COLORS[best], class: 'bag', 'data-tip': tip(`Window ${window.index + 1} · clip (bag)`, window),
        });
        group.append(bag);
        if (x(window.end) - x(window.start) > 60) {
            group.append(element('text', { x: x(window.start) + 4, y: top + 12, class: 'bag-label' }, `${CLASSES[best]} ${percent(window.probabilities[best])}`));
        }
        for (const instance of window.instances) {
            const left = x(instance.start);
            const span = Math.max(1, x(instance.end) - left - 1);
            const dominant = argmax(instance.probabilities);
            group.append(element('rect', {
                x: left, y: top + BAG + 2, width: span, height: INSTANCE, fill: COLORS[dominant],
                'fill-opacity': (0.2 + 0.8 * instance.gate).toFixed(3), class: 'instance', 'data-instance': instance.index,
                'data-tip': tip(`Window ${window.index + 1} · instance ${instance.index + 1} (frames ${instance.frames[0] + 1}–${instance.frames[1] + 1})`, instance, instance.gate),
            }));
            if (span > 34) {
                group.append(element('text', { x: left + 3, y: top + BAG + 2 + INSTANCE - 5, class: 'gate' }, `g ${instance.gate.toFixed(2)}`));
            }
        }
        area.append(group);
    });
    timeAxis(svg, x, from, to, count * LANE + 2);
}

/** Tooltip text: title, time span, gate, probabilities largest first (one per line). */
function tip(title, { start, end, probabilities }, gate) {
    const lines = [title, `${start.toFixed(2)}–${end.toFixed(2)} s`];
    if (gate !== undefined) lines.push(`gate ${gate.toFixed(3)} (how much DLIAM lets it through)`);
    const order = probabilities.map((p, i) => [p, i]).sort((a, b) => b[0] - a[0]);
    for (const [p, i] of order) lines.push(`${CLASSES[i]}\t${percent(p)}`);
    return lines.join('\n');
}
