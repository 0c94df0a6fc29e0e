// The timeline as files: JSON (the package's window results) and CSV (the columns of
// `m3dfel predict --video --csv`: one row per window, kind "bag", and per instance).
import { CLASSES, argmax } from './emotions.js';

export function timelineJson({ source, model, windows }) {
    return JSON.stringify({ generator: 'm3dfel web page', source, model, classes: CLASSES, windows }, null, 1);
}

export function timelineCsv(windows) {
    const rows = [['window', 'kind', 'instance', 'start', 'end', 'prediction', 'gate', ...CLASSES].join(',')];
    const row = (window, kind, instance, { start, end, probabilities }, gate) => rows.push([
        window.index, kind, instance, start.toFixed(3), end.toFixed(3), CLASSES[argmax(probabilities)], gate,
        ...probabilities.map((p) => p.toFixed(6)),
    ].join(','));
    for (const window of windows) {
        row(window, 'bag', '', window, '');
        for (const instance of window.instances) row(window, 'instance', instance.index, instance, instance.gate.toFixed(6));
    }
    return `${rows.join('\n')}\n`;
}

/** Offers `text` as a file download. */
export function download(name, type, text) {
    const url = URL.createObjectURL(new Blob([text], { type }));
    const link = Object.assign(document.createElement('a'), { href: url, download: name });
    document.body.append(link);
    link.click();
    link.remove();
    setTimeout(() => URL.revokeObjectURL(url), 10_000);
}
