// How the WASM benchmarks time the package, shared by bench-wasm.mjs (Node) and
// bench-wasm-browser.mjs (a Chromium Web Worker, which is served this file) so that both
// time the same clip the same way.

/**
 * Classifies one fixed clip once (module compiled, weights read: the first result), `warmup`
 * − 1 more times untimed, then `runs` times timed. Resolves to {firstResult: performance.now()
 * at the first result, in ms, seconds: each timed run}.
 */
export async function timeClassify(model, { runs, warmup }) {
    const clip = new Float32Array(model.numFrames * 3 * model.frameSize ** 2).map((_, i) => ((i * 7919) % 1000) / 1000);
    await model.classifyClip(clip);
    const firstResult = performance.now();
    for (let i = 1; i < warmup; i++) await model.classifyClip(clip);
    const seconds = [];
    for (let run = 0; run < runs; run++) {
        const start = performance.now();
        await model.classifyClip(clip);
        seconds.push((performance.now() - start) / 1000);
    }
    return { firstResult, seconds };
}

/** The median of a non-empty list of numbers. */
export function median(values) {
    const sorted = [...values].sort((a, b) => a - b);
    const middle = sorted.length >> 1;
    return sorted.length % 2 ? sorted[middle] : (sorted[middle - 1] + sorted[middle]) / 2;
}
