// The browser package's CPU backend (WebAssembly, one thread, SIMD) timed in Node on one
// clip: the WASM side of scripts/bench.sh. Also reports startup: from Node's start to the
// first result (module compiled, weights read, model built, one clip classified); and the
// face detector on one 640×480 frame (the test pattern of the native
// `cargo bench --bench face_detector`).
//   node scripts/bench-wasm.mjs --weights FILE.safetensors [--runs 5] [--json out.json]
import { readFileSync, writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

import { M3dfel, detectFaces } from '../pkg/m3dfel.js';
import { median as medianOf, timeClassify } from './wasm-timing.mjs';

const { values: args } = parseArgs({
    options: { weights: { type: 'string' }, runs: { type: 'string', default: '5' }, warmup: { type: 'string', default: '1' }, json: { type: 'string' } },
});
if (!args.weights) {
    console.error('usage: node scripts/bench-wasm.mjs --weights FILE.safetensors [--runs 5] [--warmup 1] [--json out.json]');
    process.exit(2);
}
const wasm = readFileSync(new URL('../pkg/wasm/m3dfel_wasm_bg.wasm', import.meta.url));
const model = await M3dfel.load({
    wasm,
    weights: readFileSync(args.weights),
    backend: 'cpu',
    warmUp: false,
});
const { firstResult, seconds } = await timeClassify(model, { runs: Number(args.runs), warmup: Number(args.warmup) });
const startup = firstResult / 1000; // Node's performance.now() counts from its start
const label = `wasm inference: ${model.preset} preset, ${model.frameSize}×${model.frameSize} frames, batch 1`;
const median = medianOf(seconds);
console.error(`${label}: median ${median.toFixed(3)} s of ${seconds.length} runs; first result ${startup.toFixed(2)} s after Node started`);

// The face detector: the native benchmark's pattern, RGBA.
const [width, height, detectionRuns] = [640, 480, 15];
const data = new Uint8ClampedArray(width * height * 4);
for (let y = 0; y < height; y++) {
    for (let x = 0; x < width; x++) data.set([(x * 7) % 255, (y * 3) % 255, (x + y) % 255, 255], (y * width + x) * 4);
}
const frame = { data, width, height };
await detectFaces(frame, { wasm });
const detection = [];
for (let run = 0; run < detectionRuns; run++) {
    const start = performance.now();
    await detectFaces(frame, { wasm });
    detection.push((performance.now() - start) / 1000);
}
const detectionMedian = medianOf(detection);
console.error(`wasm face detection: one ${width}×${height} frame: median ${(detectionMedian * 1000).toFixed(2)} ms of ${detectionRuns} runs`);

const report = {
    implementation: `m3dfel package (WebAssembly, Node ${process.version})`,
    device: 'cpu (wasm, 1 thread)',
    threads: 1,
    startup_seconds: startup,
    measurements: [
        { name: 'inference', preset: model.preset, frame_size: model.frameSize, batch: 1, seconds, median_seconds: median, clips_per_second: 1 / median },
        { name: 'face detection', width, height, frames: 1, threads: 1, seconds: detection, median_seconds: detectionMedian },
    ],
};
if (args.json) writeFileSync(args.json, JSON.stringify(report, null, 1));
