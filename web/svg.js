// Small helpers shared by the timeline and the chart: SVG elements and a time axis.
const NS = 'http://www.w3.org/2000/svg';

export function element(tag, attributes = {}, text) {
    const node = document.createElementNS(NS, tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text !== undefined) node.textContent = text;
    return node;
}

/** Empties `svg` and sizes it to its box; returns its width in pixels. */
export function reset(svg, height) {
    svg.replaceChildren();
    const width = Math.max(200, Math.round(svg.parentElement.clientWidth));
    svg.setAttribute('viewBox', `0 0 ${width} ${height}`);
    svg.setAttribute('width', width);
    svg.setAttribute('height', height);
    return width;
}

/** Ticks every 1, 2, 5, 10… seconds along y = `y`, from `x(from)` to `x(to)`. */
export function timeAxis(svg, x, from, to, y) {
    const span = Math.max(to - from, 1e-3);
    const pixels = x(to) - x(from);
    const step = [0.5, 1, 2, 5, 10, 15, 30, 60, 120, 300].find((s) => (pixels * s) / span >= 48) ?? 600;
    svg.append(element('line', { x1: x(from), x2: x(to), y1: y, y2: y, class: 'axis' }));
    for (let t = Math.ceil(from / step) * step; t <= to + 1e-9; t += step) {
        svg.append(element('line', { x1: x(t), x2: x(t), y1: y, y2: y + 4, class: 'axis' }));
        svg.append(element('text', { x: x(t), y: y + 15, class: 'tick' }, `${+t.toFixed(1)} s`));
    }
}
