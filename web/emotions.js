// The seven emotions and their colours (the same as `m3dfel predict --plot`; colour-blind safe).
export { CLASSES } from './m3dfel/m3dfel.js';

export const COLORS = ['#e69f00', '#0072b2', '#808080', '#d55e00', '#56b4e9', '#009e73', '#cc79a7'];

/** Index of the largest value. */
export function argmax(values) {
    return values.reduce((best, value, i) => (value > values[best] ? i : best), 0);
}

/** "happy 82 %" */
export function percent(value) {
    return `${(100 * value).toFixed(value >= 0.995 || value < 0.1 ? 0 : 1)} %`;
}
