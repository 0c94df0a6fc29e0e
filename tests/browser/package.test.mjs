// The browser package as a web developer gets it: `npm pack` in pkg/, the tarball installed
// into a scratch project, used from a page (WebGPU and CPU), from a Web Worker and from
// Node, and compared with `m3dfel predict --json` on the same input and weights.
//
// Needs: pkg/wasm built (bash scripts/build-wasm.sh), the m3dfel CLI built (cargo build
// --release), Debian's chromium. Run: cd tests/browser && npm test
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFile, execFileSync } from 'node:child_process';
import { createServer } from 'node:http';
import { promisify } from 'node:util';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { launch } from './lib/chromium.mjs';
import { syntheticFaceClips } from './lib/faces.mjs';
import { DEMO_WEIGHTS as WEIGHTS, M3DFEL, PKG, TRAINER } from './lib/paths.mjs';
import { syntheticClip, writeNpy } from './lib/npy.mjs';
import { serve } from '../../scripts/serve.mjs';

const SHAPE = [16, 3, 32, 32]; // the demo weights' clip shape
const TOLERANCE = 1e-4;

/** `m3dfel predict --json` on the same weights: the reference every result must equal. */
function predict(args) {
    const output = execFileSync(M3DFEL, ['predict', '--weights', WEIGHTS, '--json', ...args], { encoding: 'utf8' });
    return JSON.parse(output);
}

/** Largest difference between two results' probabilities (clip and instances) and gates. */
function difference(a, b) {
    const pairs = [[a.probabilities, b.probabilities]];
    assert.equal(a.instances.length, b.instances.length);
    a.instances.forEach((instance, i) => {
        pairs.push([instance.probabilities, b.instances[i].probabilities], [[instance.gate], [b.instances[i].gate]]);
        assert.deepEqual(instance.frames, b.instances[i].frames);
    });
    let largest = 0;
    for (const [x, y] of pairs) {
        assert.equal(x.length, y.length);
        x.forEach((v, i) => { largest = Math.max(largest, Math.abs(v - y[i])); });
    }
    return largest;
}

function assertSameResult(ours, reference, what) {
    const error = difference(ours, reference);
    assert.ok(error <= TOLERANCE, `${what}: differs from the reference by ${error}`);
    assert.equal(ours.prediction, reference.prediction, what);
    assert.deepEqual(ours.classes, ['happy', 'sad', 'neutral', 'angry', 'surprise', 'disgust', 'fear']);
}

let app, server, reference;

before(() => {
    for (const [path, hint] of [[join(PKG, 'wasm/m3dfel_wasm_bg.wasm'), 'bash scripts/build-wasm.sh'], [M3DFEL, 'cargo build --release -p m3dfel-cli'], [TRAINER, 'cargo build --release -p trainer']]) {
        assert.ok(existsSync(path), `${path} is missing: run ${hint} first`);
    }
    const scratch = mkdtempSync(join(tmpdir(), 'm3dfel-package-'));
    const [packed] = JSON.parse(execFileSync('npm', ['pack', '--json', '--pack-destination', scratch], { cwd: PKG, encoding: 'utf8' }));
    const packedFiles = packed.files.map((f) => f.path);
    for (const file of ['m3dfel.js', 'm3dfel.d.ts', 'wasm/m3dfel_wasm_bg.wasm', 'wasm/m3dfel_wasm.js',
        'wasm-threads/m3dfel_wasm_bg.wasm', 'wasm-threads/m3dfel_wasm.js', 'weights/m3dfel-tiny-synthetic.safetensors', 'README.md', 'LICENSE']) {
        assert.ok(packedFiles.includes(file), `the tarball lacks ${file} (has ${packedFiles.join(', ')})`);
    }
    app = join(scratch, 'app');
    mkdirSync(app);
    writeFileSync(join(app, 'package.json'), JSON.stringify({ name: 'scratch-app', private: true, type: 'module' }));
    execFileSync('npm', ['install', '--no-audit', '--no-fund', '--offline', join(scratch, packed.filename)], { cwd: app, stdio: 'pipe' });

    const clip = syntheticClip(SHAPE, 7);
    writeNpy(join(scratch, 'clip.npy'), clip, SHAPE);
    writeFileSync(join(app, 'clip.bin'), Buffer.from(clip.buffer));
    reference = predict(['--tensor', join(scratch, 'clip.npy')]).clips[0];

    const weights = readFileSync(WEIGHTS);
    writeFileSync(join(app, 'truncated.safetensors'), weights.subarray(0, Math.floor(weights.length * 0.6)));
    writeFileSync(join(app, 'notes.safetensors'), 'these are my notes, not weights\n'.repeat(20));
    writeFileSync(join(app, 'index.html'), `<!doctype html><meta charset="utf-8"><title>m3dfel package test</title>
<script type="importmap">{"imports": {"m3dfel": "/node_modules/m3dfel/m3dfel.js"}}</script>
<script type="module">import * as m3dfel from 'm3dfel'; window.m3dfel = m3dfel; window.ready = true;</script>`);
    // Import maps do not reach workers: the worker imports the installed file by path.
    writeFileSync(join(app, 'worker.js'), `import { M3dfel } from '/node_modules/m3dfel/m3dfel.js';
const ready = M3dfel.load();
onmessage = async () => {
  try {
    const model = await ready;
    const clip = new Float32Array(await (await fetch('/clip.bin')).arrayBuffer());
    postMessage({ backend: model.backend, result: await model.classifyClip(clip) });
  } catch (error) { postMessage({ error: error.message }); }
};`);
    // The CPU backend in a worker of this (cross-origin isolated) page: on the thread pool
    // ('auto') and on one thread.
    writeFileSync(join(app, 'cpu-worker.js'), `import { M3dfel } from '/node_modules/m3dfel/m3dfel.js';
onmessage = async ({ data: threads }) => {
  try {
    const model = await M3dfel.load({ backend: 'cpu', threads });
    const clip = new Float32Array(await (await fetch('/clip.bin')).arrayBuffer());
    postMessage({ threads: model.threads, reason: model.backendReason, processors: navigator.hardwareConcurrency,
      isolated: crossOriginIsolated, result: await model.classifyClip(clip) });
  } catch (error) { postMessage({ error: error.message }); }
};`);
});

before(async () => {
    server = await serve(app);
});

after(async () => {
    await server?.close();
});

/** Uncaught exceptions of every page the tests open: the last test fails on any. */
const pageErrors = [];

/** Opens the scratch app's page in a fresh browser and returns it once the package is imported. */
async function appPage(browser) {
    const page = await browser.newPage();
    page.on('pageerror', (error) => pageErrors.push(error.message));
    await page.goto(`${server.url}/`);
    await page.waitForFunction(() => window.ready === true, null, { timeout: 30_000 });
    return page;
}

describe('in headless Chromium with WebGPU', () => {
    let browser, page;
    before(async () => {
        browser = await launch({ webgpu: true });
        page = await appPage(browser);
    });
    after(async () => browser?.close());

    test('webgpu and cpu give the probabilities of `m3dfel predict --json` on the same tensor', async () => {
        const out = await page.evaluate(async () => {
            const { M3dfel } = window.m3dfel;
            const clip = new Float32Array(await (await fetch('/clip.bin')).arrayBuffer());
            const progress = [];
            const gpu = await M3dfel.load({ backend: 'webgpu', onProgress: (p) => progress.push(p) });
            const cpu = await M3dfel.load({ backend: 'cpu' });
            const auto = await M3dfel.load({ backend: 'auto', warmUp: false });
            const summary = (m) => ({ backend: m.backend, reason: m.backendReason, placement: m.placement, preset: m.preset, frameSize: m.frameSize });
            const result = { gpu: await gpu.classifyClip(clip), cpu: await cpu.classifyClip(clip), progress };
            return { ...result, models: [summary(gpu), summary(cpu), summary(auto)] };
        });
        const [gpu, cpu, auto] = out.models;
        assert.equal(gpu.backend, 'webgpu');
        assert.equal(cpu.backend, 'cpu');
        assert.equal(auto.backend, 'webgpu', `auto chose ${auto.backend}: ${auto.reason}`);
        assert.equal(gpu.preset, 'tiny');
        assert.equal(gpu.frameSize, 32);
        // The whole model on the GPU: DLIAM passed the check against the CPU at load.
        assert.deepEqual(gpu.placement, { backbone: 'webgpu', head: 'webgpu', dmin: 'wgsl' }, gpu.reason);
        assert.match(gpu.reason, /whole model runs on WebGPU/);
        assert.deepEqual(cpu.placement, { backbone: 'cpu', head: 'cpu', dmin: 'cpu' });
        assertSameResult(out.gpu, reference, 'webgpu vs m3dfel predict');
        assertSameResult(out.cpu, reference, 'cpu vs m3dfel predict');
        assert.ok(difference(out.gpu, out.cpu) <= TOLERANCE, 'webgpu vs cpu');
        const weightSteps = out.progress.filter((p) => p.phase === 'weights');
        const size = readFileSync(WEIGHTS).length;
        assert.ok(weightSteps.length >= 2, 'byte progress was reported');
        assert.deepEqual(weightSteps.at(-1), { phase: 'weights', loaded: size, total: size });
        assert.deepEqual(out.progress.map((p) => p.phase).filter((p, i, all) => p !== all[i - 1]),
            ['wasm', 'weights', 'backend', 'warm-up', 'ready']);
    });

    test('the whole model on WebGPU equals the CPU on three clips in a row and on a video', async () => {
        const out = await page.evaluate(async () => {
            const { M3dfel } = window.m3dfel;
            const gpu = await M3dfel.load({ backend: 'webgpu', warmUp: false });
            const cpu = await M3dfel.load({ backend: 'cpu', warmUp: false });
            // Clips that differ from call to call: a GPU that kept a stale buffer would repeat itself.
            const clip = (seed) => Float32Array.from({ length: 16 * 3 * 32 * 32 }, (_, i) => (Math.sin(i * 0.37 + seed * 1.3) + 1) / 2);
            const clips = [];
            for (const seed of [1, 2, 3]) clips.push({ gpu: await gpu.classifyClip(clip(seed)), cpu: await cpu.classifyClip(clip(seed)) });
            const canvas = new OffscreenCanvas(48, 40);
            const context = canvas.getContext('2d', { willReadFrequently: true });
            const frames = Array.from({ length: 40 }, (_, i) => {
                context.fillStyle = `hsl(${i * 9}, 55%, 50%)`;
                context.fillRect(0, 0, 48, 40);
                context.fillStyle = '#222';
                context.fillRect(8 + (i % 10), 10, 16, 6 + (i % 7));
                return { time: i / 10, frame: context.getImageData(0, 0, 48, 40) };
            });
            const video = { gpu: await gpu.classifyVideo(frames), cpu: await cpu.classifyVideo(frames) };
            return { clips, video, placement: gpu.placement };
        });
        assert.deepEqual(out.placement, { backbone: 'webgpu', head: 'webgpu', dmin: 'wgsl' });
        out.clips.forEach(({ gpu, cpu }, i) => assert.ok(difference(gpu, cpu) <= TOLERANCE, `clip ${i + 1}: webgpu vs cpu differ by ${difference(gpu, cpu)}`));
        assert.notDeepEqual(out.clips[0].gpu.probabilities, out.clips[1].gpu.probabilities, 'different clips, different results');
        assert.equal(out.video.gpu.windows.length, out.video.cpu.windows.length);
        assert.ok(out.video.gpu.windows.length >= 3);
        out.video.gpu.windows.forEach((window, i) => {
            const error = difference(window, out.video.cpu.windows[i]);
            assert.ok(error <= TOLERANCE, `video window ${i}: webgpu vs cpu differ by ${error}`);
        });
    });

    test('a WebGPU device lost mid-run: auto goes on on the CPU, webgpu rejects with a message', async () => {
        // A fresh page whose WebGPU devices are kept, so that the test can destroy them.
        const lostPage = await browser.newPage();
        lostPage.on('pageerror', (error) => pageErrors.push(error.message));
        await lostPage.addInitScript(() => {
            const requestDevice = GPUAdapter.prototype.requestDevice;
            GPUAdapter.prototype.requestDevice = async function (...args) {
                const device = await requestDevice.apply(this, args);
                (window.gpuDevices ??= []).push(device);
                return device;
            };
        });
        const warnings = [];
        lostPage.on('console', (message) => { if (message.type() === 'warning') warnings.push(message.text()); });
        await lostPage.goto(`${server.url}/`);
        await lostPage.waitForFunction(() => window.ready === true, null, { timeout: 30_000 });
        const out = await lostPage.evaluate(async () => {
            const { M3dfel } = window.m3dfel;
            const clip = new Float32Array(await (await fetch('/clip.bin')).arrayBuffer());
            const auto = await M3dfel.load({ backend: 'auto' });
            const gpu = await M3dfel.load({ backend: 'webgpu', warmUp: false });
            const before = { backend: auto.backend, result: await auto.classifyClip(clip) };
            for (const device of window.gpuDevices) device.destroy();
            await new Promise((resolve) => setTimeout(resolve, 200));
            const after = await auto.classifyClip(clip).catch((error) => ({ error: error.message }));
            const explicit = await gpu.classifyClip(clip).then(() => ({}), (error) => ({ error: error.message }));
            return { devices: window.gpuDevices.length, before, after, explicit, backend: auto.backend, reason: auto.backendReason, placement: auto.placement };
        });
        await lostPage.close();
        assert.ok(out.devices >= 1, 'the package asked for a WebGPU device');
        assert.equal(out.before.backend, 'webgpu');
        assertSameResult(out.before.result, reference, 'auto on WebGPU before the loss');
        assert.equal(out.after.error, undefined, `auto failed after the loss: ${out.after.error}`);
        assertSameResult(out.after, reference, 'auto on the CPU after the loss');
        assert.equal(out.backend, 'cpu');
        assert.deepEqual(out.placement, { backbone: 'cpu', head: 'cpu', dmin: 'cpu' });
        assert.match(out.reason, /WebGPU failed while classifying .*running on the CPU/);
        assert.ok(warnings.some((w) => /continuing on the CPU/.test(w)), `no console warning: ${warnings.join(' | ')}`);
        assert.match(out.explicit.error ?? '', /WebGPU reported an error/, 'backend webgpu after the loss must reject');
    });

    test('images are resized like `m3dfel predict --frames` and give its numbers', async () => {
        const out = await page.evaluate(async () => {
            const { M3dfel } = window.m3dfel;
            const model = await M3dfel.load({ backend: 'cpu', warmUp: false });
            const canvas = Object.assign(document.createElement('canvas'), { width: 56, height: 44 });
            const context = canvas.getContext('2d', { willReadFrequently: true });
            const frames = [], pngs = [];
            for (let i = 0; i < 16; i++) {
                const gradient = context.createLinearGradient(0, 0, 56, 44);
                gradient.addColorStop(0, `rgb(${40 + 10 * i}, 90, 160)`);
                gradient.addColorStop(1, 'rgb(230, 200, 120)');
                context.fillStyle = gradient;
                context.fillRect(0, 0, 56, 44);
                context.fillStyle = '#d9a07a';
                context.beginPath();
                context.ellipse(28, 22, 12 + i / 4, 16, 0, 0, 2 * Math.PI);
                context.fill();
                context.fillStyle = '#402020';
                context.fillRect(21, 28, 14, 2 + i / 3);
                frames.push(context.getImageData(0, 0, 56, 44));
                pngs.push(canvas.toDataURL('image/png').split(',')[1]);
            }
            return { result: await model.classifyClip(frames), pngs };
        });
        const dir = mkdtempSync(join(tmpdir(), 'm3dfel-frames-'));
        out.pngs.forEach((png, i) => writeFileSync(join(dir, `${String(i + 1).padStart(4, '0')}.png`), Buffer.from(png, 'base64')));
        assertSameResult(out.result, predict(['--frames', dir]).clips[0], 'ImageData frames vs m3dfel predict --frames');
    });

    test('faces are found and cropped like `m3dfel predict --frames --face-crop`', async () => {
        // The trainer's synthetic faces (224 px), padded into 400×300 frames, as PNG files
        // that the page and the CLI decode to the same pixels.
        const [clip] = syntheticFaceClips(TRAINER);
        const frames = join(app, 'faces');
        mkdirSync(frames);
        execFileSync('ffmpeg', ['-v', 'error', '-i', join(clip, '%05d.jpg'),
            '-vf', 'pad=400:300:150:60:gray', join(frames, '%05d.png')]);
        const names = execFileSync('ls', [frames], { encoding: 'utf8' }).trim().split('\n');
        const reference = predict(['--frames', frames, '--face-crop']).clips[0];
        const out = await page.evaluate(async (names) => {
            const { M3dfel } = window.m3dfel;
            const model = await M3dfel.load({ backend: 'cpu', warmUp: false });
            const picked = Array.from({ length: 16 }, (_, i) => names[Math.floor((names.length * i) / 16)]);
            const images = [];
            for (const name of picked) {
                const bitmap = await createImageBitmap(await (await fetch(`/faces/${name}`)).blob());
                const context = new OffscreenCanvas(bitmap.width, bitmap.height).getContext('2d');
                context.drawImage(bitmap, 0, 0);
                images.push(context.getImageData(0, 0, bitmap.width, bitmap.height));
            }
            return model.classifyClip(images, { faceCrop: true });
        }, names);
        assertSameResult(out, reference, 'page vs m3dfel predict --frames --face-crop');
        const found = out.faces.filter(Boolean);
        assert.ok(found.length >= 8, `a face in ${found.length} of 16 frames`);
        for (const face of found) {
            const [x, y] = [face.x + face.width / 2, face.y + face.height / 2];
            assert.ok(x > 150 && x < 374 && y > 60 && y < 284, `face centre (${x}, ${y}) outside the synthetic face`);
        }
        assert.ok(out.crops.every((c) => c.x + c.size <= 400 && c.y + c.size <= 300));
    });

    test('the package works inside a Web Worker', async () => {
        const out = await page.evaluate(() => new Promise((resolve) => {
            const worker = new Worker('/worker.js', { type: 'module' });
            worker.onmessage = ({ data }) => resolve(data);
            worker.onerror = (event) => resolve({ error: event.message });
            worker.postMessage('go');
        }));
        assert.equal(out.error, undefined);
        assert.equal(out.backend, 'webgpu');
        assertSameResult(out.result, reference, 'worker');
    });

    test('classifyVideo covers a frame list and a recorded <video> window by window', async () => {
        const out = await page.evaluate(async () => {
            const { M3dfel } = window.m3dfel;
            const model = await M3dfel.load({ backend: 'cpu', warmUp: false });
            const canvas = Object.assign(document.createElement('canvas'), { width: 64, height: 48 });
            const context = canvas.getContext('2d', { willReadFrequently: true });
            const draw = (t) => {
                context.fillStyle = `hsl(${(t * 90) % 360}, 60%, 50%)`;
                context.fillRect(0, 0, 64, 48);
                context.fillStyle = '#fff';
                context.fillRect(10 + 10 * Math.sin(t * 3), 12, 20, 20);
            };
            // 48 frames at 10 fps: 4.8 s.
            const list = [];
            for (let i = 0; i < 48; i++) {
                draw(i / 10);
                list.push({ time: i / 10, frame: context.getImageData(0, 0, 64, 48) });
            }
            const streamed = [];
            const fromList = await model.classifyVideo(list, { windowSeconds: 2, strideSeconds: 1, onWindow: (w, p) => streamed.push([w.index, p.total]) });

            // 3 s recorded from the canvas with MediaRecorder (webm without a stated duration).
            const recorder = new MediaRecorder(canvas.captureStream(30), { mimeType: 'video/webm' });
            const chunks = [];
            recorder.ondataavailable = (e) => chunks.push(e.data);
            const stopped = new Promise((resolve) => { recorder.onstop = resolve; });
            recorder.start();
            const begin = performance.now();
            await new Promise((resolve) => {
                const tick = () => {
                    const t = (performance.now() - begin) / 1000;
                    draw(t);
                    if (t < 3) requestAnimationFrame(tick); else resolve();
                };
                tick();
            });
            recorder.stop();
            await stopped;
            // A loaded machine draws late and stops late: the recording lasts what the wall clock says.
            const recorded = (performance.now() - begin) / 1000;
            const video = document.createElement('video');
            video.muted = true;
            video.src = URL.createObjectURL(new Blob(chunks, { type: 'video/webm' }));
            const fromVideo = await model.classifyVideo(video, { windowSeconds: 1, strideSeconds: 0.5 });
            const shape = (r) => ({
                duration: r.duration,
                windows: r.windows.map((w) => ({ start: w.start, end: w.end, sum: w.probabilities.reduce((a, b) => a + b, 0), instances: w.instances.map((i) => [i.start, i.end]), frames: w.frameTimes.length })),
            });
            return { list: shape(fromList), video: shape(fromVideo), streamed, recorded };
        });
        const check = (timeline, windowSeconds, what) => {
            const { duration, windows } = timeline;
            assert.ok(windows.length >= 2, `${what}: ${windows.length} windows`);
            assert.equal(windows[0].start, 0, what);
            assert.ok(Math.abs(windows.at(-1).end - duration) < 1e-6, `${what}: last window ends at ${windows.at(-1).end}, video at ${duration}`);
            for (const w of windows) {
                assert.ok(Math.abs(w.end - w.start - windowSeconds) < 1e-6, `${what}: window ${w.start}–${w.end}`);
                assert.ok(Math.abs(w.sum - 1) < 1e-5, `${what}: probabilities sum to ${w.sum}`);
                assert.equal(w.frames, 16);
                assert.equal(w.instances.length, 4);
                assert.equal(w.instances[0][0], w.start);
                assert.equal(w.instances.at(-1)[1], w.end);
                w.instances.slice(1).forEach(([start], i) => assert.equal(start, w.instances[i][1], `${what}: instances are contiguous`));
            }
        };
        assert.ok(Math.abs(out.list.duration - 4.8) < 1e-9);
        check(out.list, 2, 'frame list');
        assert.deepEqual(out.list.windows.map((w) => [w.start, w.end].map((t) => Math.round(t * 10) / 10)), [[0, 2], [1, 3], [2, 4], [2.8, 4.8]]);
        assert.deepEqual(out.streamed, [[0, 4], [1, 4], [2, 4], [3, 4]]);
        assert.ok(out.video.duration > 2.5 && out.video.duration <= out.recorded + 0.25, `recorded video lasts ${out.video.duration} s, recorded for ${out.recorded} s`);
        check(out.video, 1, 'recorded webm');
    });
});

describe('in headless Chromium without WebGPU', () => {
    let browser, page;
    before(async () => {
        browser = await launch({ webgpu: false });
        page = await appPage(browser);
    });
    after(async () => browser?.close());

    test("'auto' falls back to the CPU, says why, and still answers", async () => {
        const out = await page.evaluate(async () => {
            const { M3dfel } = window.m3dfel;
            const model = await M3dfel.load();
            const clip = new Float32Array(await (await fetch('/clip.bin')).arrayBuffer());
            const webgpu = await M3dfel.load({ backend: 'webgpu' }).then(() => 'loaded', (e) => e.message);
            return { backend: model.backend, reason: model.backendReason, threads: model.threads, result: await model.classifyClip(clip), webgpu };
        });
        assert.equal(out.backend, 'cpu');
        assert.match(out.reason, /WebGPU.*(adapter|missing)/);
        assert.equal(out.threads, 1);
        assert.match(out.reason, /one thread: the model runs on the page's main thread/);
        assert.match(out.webgpu, /^WebGPU was requested but/);
        assertSameResult(out.result, reference, 'auto → cpu');
    });

    test('in a worker of an isolated page the CPU runs on one thread per processor, with the same numbers', async () => {
        const run = (threads) => page.evaluate((threads) => new Promise((resolve) => {
            const worker = new Worker('/cpu-worker.js', { type: 'module' });
            worker.onmessage = ({ data }) => { worker.terminate(); resolve(data); };
            worker.onerror = (event) => resolve({ error: event.message });
            worker.postMessage(threads);
        }), threads);
        const [pool, one] = [await run('auto'), await run(1)];
        assert.equal(pool.error, undefined);
        assert.equal(one.error, undefined);
        assert.ok(pool.isolated, 'the test server sends COOP and COEP');
        assert.ok(pool.processors >= 2, `Chromium reports ${pool.processors} processor(s): this test needs 2 or more`);
        assert.equal(pool.threads, Math.min(pool.processors, 16), pool.reason);
        assert.match(pool.reason, new RegExp(`; ${pool.threads} threads$`));
        assert.equal(one.threads, 1);
        assert.match(one.reason, /one thread: one thread was requested/);
        assertSameResult(pool.result, reference, 'cpu, thread pool');
        assertSameResult(one.result, reference, 'cpu, one thread');
        assert.ok(difference(pool.result, one.result) <= 1e-6, 'thread pool vs one thread');
    });

    test('bad inputs reject with a clear message and the model keeps working', async () => {
        const out = await page.evaluate(async () => {
            const { M3dfel } = window.m3dfel;
            const model = await M3dfel.load({ backend: 'cpu', warmUp: false });
            const frame = new ImageData(40, 30);
            const clip = new Float32Array(await (await fetch('/clip.bin')).arrayBuffer());
            const withNaN = clip.slice();
            withNaN[123] = NaN;
            const bytes = clip.map((v) => Math.round(v * 255)); // 0–255 data, as pixels are stored
            // Every promise must settle: a hung one is reported as such.
            const outcome = (promise) => Promise.race([
                promise.then(() => ({ resolved: true }), (e) => ({ name: e.name, message: e.message })),
                new Promise((resolve) => setTimeout(() => resolve({ hung: true }), 60_000)),
            ]);
            const cases = {
                fifteenFrames: () => model.classifyClip(Array(15).fill(frame)),
                wrongTensorSize: () => model.classifyClip(new Float32Array(16 * 3 * 112 * 112)),
                notImages: () => model.classifyClip(Array(16).fill('frame.png')),
                nan: () => model.classifyClip(withNaN),
                bytes: () => model.classifyClip(bytes),
                truncatedWeights: () => M3dfel.load({ weights: '/truncated.safetensors', backend: 'cpu' }),
                notWeights: () => M3dfel.load({ weights: '/notes.safetensors', backend: 'cpu' }),
                missingWeights: () => M3dfel.load({ weights: '/nowhere.safetensors', backend: 'cpu' }),
                badBackend: () => M3dfel.load({ backend: 'tpu' }),
                badThreads: () => M3dfel.load({ backend: 'cpu', threads: 0 }),
                noFace: () => model.classifyClip(Array(16).fill(frame), { faceCrop: true }),
                mixedSizes: () => model.classifyClip([new ImageData(20, 20), ...Array(15).fill(frame)], { faceCrop: true }),
            };
            const results = {};
            for (const [name, run] of Object.entries(cases)) results[name] = await outcome((async () => run())());
            results.afterwards = (await model.classifyClip(clip)).prediction;
            results.facesInBlackFrame = await window.m3dfel.detectFaces(frame);
            return results;
        });
        const expected = {
            fifteenFrames: /needs exactly 16 frames, got 15/,
            wrongTensorSize: /16 frames × 3 colours × 32 × 32 pixels = 49152 values, got 602112/,
            notImages: /frame 1 of 16 is not an image/,
            nan: /clip cannot be classified: value #123 is NaN/,
            bytes: /the values range from \d+ to 2\d\d, but the model expects pixel \/ 255, in \[0, 1\]: for 0–255 data, divide by 255/,
            truncatedWeights: /truncated\.safetensors: damaged or truncated safetensors file/,
            notWeights: /notes\.safetensors: not a weight file: .*unknown content/,
            missingWeights: /could not download the weights from .*nowhere\.safetensors: HTTP 404/,
            badBackend: /unknown backend "tpu"/,
            badThreads: /threads must be 'auto' or a whole number from 1, got 0/,
            noFace: /no face was found in any of the 16 frames: .*turn the face crop off/,
            mixedSizes: /faceCrop needs frames of one size: frame 1 is 20×20, frame 2 is 40×30/,
        };
        for (const [name, pattern] of Object.entries(expected)) {
            const result = out[name];
            assert.ok(!result.hung && !result.resolved, `${name}: ${JSON.stringify(result)}`);
            assert.equal(result.name, 'M3dfelError', `${name}: ${result.message}`);
            assert.match(result.message, pattern, name);
            assert.doesNotMatch(result.message, /unreachable|panicked|RuntimeError/, name);
        }
        assert.equal(out.afterwards, reference.prediction);
        assert.deepEqual(out.facesInBlackFrame, []);
    });
});

test('the installed package runs in Node on the CPU with the documented call', () => {
    const script = `import { readFileSync } from 'node:fs';
import { M3dfel } from 'm3dfel';
const dir = new URL('./node_modules/m3dfel/', import.meta.url);
const model = await M3dfel.load({
  wasm: readFileSync(new URL('wasm/m3dfel_wasm_bg.wasm', dir)),
  weights: readFileSync(new URL('weights/m3dfel-tiny-synthetic.safetensors', dir)),
  backend: 'cpu',
});
const bytes = readFileSync(new URL('./clip.bin', import.meta.url));
const clip = new Float32Array(bytes.buffer, bytes.byteOffset, bytes.byteLength / 4);
console.log(JSON.stringify(await model.classifyClip(clip)));`;
    writeFileSync(join(app, 'node-check.mjs'), script);
    const output = execFileSync(process.execPath, ['node-check.mjs'], { cwd: app, encoding: 'utf8' });
    assertSameResult(JSON.parse(output), reference, 'node');
});

test('a weights URL that stops answering fails the load after stallSeconds, with a message', async () => {
    // A server that never answers, and one that sends the headers and 100 of 1000 bytes.
    const sockets = new Set();
    const server = createServer((request, response) => {
        if (request.url === '/half.safetensors') {
            response.writeHead(200, { 'content-length': '1000' });
            response.write(Buffer.alloc(100));
        }
    });
    server.on('connection', (socket) => sockets.add(socket));
    await new Promise((resolve) => server.listen(0, '127.0.0.1', resolve));
    const base = `http://127.0.0.1:${server.address().port}`;
    const script = `import { readFileSync } from 'node:fs';
import { M3dfel } from 'm3dfel';
const wasm = readFileSync(new URL('./node_modules/m3dfel/wasm/m3dfel_wasm_bg.wasm', import.meta.url));
const out = {};
for (const name of ['silent', 'half']) {
  const started = Date.now();
  out[name] = await M3dfel.load({ wasm, weights: '${base}/' + name + '.safetensors', backend: 'cpu', stallSeconds: 1 })
    .then(() => ({ loaded: true }), (e) => ({ name: e.name, message: e.message, seconds: (Date.now() - started) / 1000 }));
}
console.log(JSON.stringify(out));`;
    writeFileSync(join(app, 'stall-check.mjs'), script);
    try {
        // Asynchronously: this process serves the requests.
        const { stdout } = await promisify(execFile)(process.execPath, ['stall-check.mjs'], { cwd: app, timeout: 120_000 });
        const out = JSON.parse(stdout);
        for (const name of ['silent', 'half']) {
            const result = out[name];
            assert.equal(result.name, 'M3dfelError', `${name}: ${JSON.stringify(result)}`);
            assert.equal(result.message, `could not download the weights from ${base}/${name}.safetensors: nothing arrived for 1 s ` +
                '(the server does not answer); check the address and the connection, or allow longer with the stallSeconds option');
            assert.ok(result.seconds >= 1 && result.seconds < 30, `${name}: failed after ${result.seconds} s`);
        }
    } finally {
        for (const socket of sockets) socket.destroy();
        server.close();
    }
});

test('no page the tests opened had an uncaught exception', () => {
    assert.deepEqual(pageErrors, []);
});
