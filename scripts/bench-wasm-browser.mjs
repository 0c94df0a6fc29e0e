// The browser package's CPU backend timed in headless Chromium on one clip, in a Web Worker
// of a cross-origin isolated page: once on one thread (the main module) and once on the
// threaded module's pool of Web Workers. Node has no such pool, hence a browser.
//   node scripts/bench-wasm-browser.mjs --weights FILE.safetensors [--runs 5] [--threads 1,auto] [--json out.json]
//       [--v8-log DIR]   V8's sampling profile of every thread (page, calling worker, each pool
//                        worker: one isolate-*-v8.log each) into DIR; read one with
//                        `node --prof-process FILE`. The package's modules carry no function
//                        names (wasm-opt drops them): bind them again with `wasm-opt -g` for
//                        names instead of wasm-function[N].
// Needs: pkg/ built (bash scripts/build-wasm.sh), Debian's chromium, and tests/browser's
// packages (cd tests/browser && npm ci) for playwright-core.
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join, resolve as absolutePath } from 'node:path';
import { fileURLToPath } from 'node:url';
import { parseArgs } from 'node:util';

import { launch } from '../tests/browser/lib/chromium.mjs';
import { serve } from './serve.mjs';
import { median as medianOf } from './wasm-timing.mjs';

const { values: args } = parseArgs({
    options: {
        weights: { type: 'string' }, runs: { type: 'string', default: '5' }, warmup: { type: 'string', default: '1' },
        threads: { type: 'string', default: '1,auto' }, json: { type: 'string' }, 'v8-log': { type: 'string' },
    },
});
if (!args.weights) {
    console.error('usage: node scripts/bench-wasm-browser.mjs --weights FILE.safetensors [--runs 5] [--warmup 1] [--threads 1,auto] [--json out.json] [--v8-log DIR]');
    process.exit(2);
}

// The site: the package, the weights and a worker that loads and times the model.
const site = mkdtempSync(join(tmpdir(), 'm3dfel-bench-'));
symlinkSync(fileURLToPath(new URL('../pkg', import.meta.url)), join(site, 'pkg'));
copyFileSync(args.weights, join(site, 'weights.safetensors'));
writeFileSync(join(site, 'index.html'), '<!doctype html><meta charset="utf-8"><title>m3dfel bench</title>');
symlinkSync(fileURLToPath(new URL('./wasm-timing.mjs', import.meta.url)), join(site, 'wasm-timing.mjs'));
writeFileSync(join(site, 'worker.js'), `import { M3dfel } from '/pkg/m3dfel.js';
import { timeClassify } from '/wasm-timing.mjs';
onmessage = async ({ data: { threads, runs, warmup } }) => {
  try {
    const began = performance.now();
    const model = await M3dfel.load({ weights: '/weights.safetensors', backend: 'cpu', threads, warmUp: false });
    const { firstResult, seconds } = await timeClassify(model, { runs, warmup });
    postMessage({ threads: model.threads, reason: model.backendReason, preset: model.preset, frameSize: model.frameSize, startup: (firstResult - began) / 1000, seconds });
  } catch (error) { postMessage({ error: error.message }); }
};`);

const server = await serve(site);
const v8Log = args['v8-log'] && absolutePath(args['v8-log']);
if (v8Log) mkdirSync(v8Log, { recursive: true });
const browser = await launch({ webgpu: false, args: v8Log ? [`--js-flags=--prof --logfile=${join(v8Log, 'v8.log')}`] : [] });
const measurements = [];
try {
    for (const setting of args.threads.split(',')) {
        const threads = setting === 'auto' ? 'auto' : Number(setting);
        // A fresh page per setting: its worker starts the thread pool (once per module).
        const page = await browser.newPage();
        await page.goto(`${server.url}/`);
        const out = await page.evaluate((request) => new Promise((resolve) => {
            const worker = new Worker('/worker.js', { type: 'module' });
            worker.onmessage = ({ data }) => resolve(data);
            worker.onerror = (event) => resolve({ error: event.message });
            worker.postMessage(request);
        }), { threads, runs: Number(args.runs), warmup: Number(args.warmup) });
        await page.close();
        if (out.error) throw new Error(`threads=${setting}: ${out.error}`);
        const median = medianOf(out.seconds);
        console.error(`wasm inference in Chromium: ${out.preset} preset, ${out.frameSize}×${out.frameSize} frames, batch 1, `
            + `${out.threads} thread(s): median ${median.toFixed(3)} s of ${out.seconds.length} runs; first result `
            + `${out.startup.toFixed(2)} s after the load began (${out.reason})`);
        measurements.push({
            name: 'inference', preset: out.preset, frame_size: out.frameSize, batch: 1, threads: out.threads, requested_threads: setting,
            backend_reason: out.reason, startup_seconds: out.startup, seconds: out.seconds, median_seconds: median, clips_per_second: 1 / median,
        });
    }
    const report = { implementation: `m3dfel package (WebAssembly, Chromium ${browser.version()}, in a Web Worker)`, device: 'cpu (wasm)', measurements };
    if (args.json) writeFileSync(args.json, JSON.stringify(report, null, 1));
    if (v8Log) console.error(`V8 profiles (one per thread) in ${v8Log}: node --prof-process ${v8Log}/isolate-…-v8.log`);
} finally {
    await browser.close();
    await server.close();
    rmSync(site, { recursive: true, force: true });
}
