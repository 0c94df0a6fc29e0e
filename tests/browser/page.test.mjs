// The web page (web/, built by scripts/build-web.sh) as a person uses it, in headless
// Chromium: a fake webcam fed with synthetic faces, uploaded MP4 and WebM files, broken
// files, other weights, WebGPU on and off, a phone-sized screen. Screenshots of each state
// go to tests/browser/artifacts/.
//
// Needs: the site (bash scripts/build-web.sh), the m3dfel CLI and the trainer (cargo build
// --release), FFmpeg, Debian's chromium. Run: cd tests/browser && npm test
import { after, before, describe, test } from 'node:test';
import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { launch, openPage } from './lib/chromium.mjs';
import { encodeFaces, syntheticFaceClips } from './lib/faces.mjs';
import { ARTIFACTS, DEMO_WEIGHTS, M3DFEL, SITE, TRAINER } from './lib/paths.mjs';
import { serve } from '../../scripts/serve.mjs';

const CLASSES = ['happy', 'sad', 'neutral', 'angry', 'surprise', 'disgust', 'fear'];
const DURATION = 4.8; // two synthetic clips of 36 frames at 15 frames/s
// Page vs `m3dfel predict --video` (see assertMatchesCli): largest probability difference in a
// window whose faces agree (measured: 1.5e-2 MP4, 2.0e-3 WebM), in one with a flipped face
// (measured: 9.4e-2, WebM), and how far two boxes of the same face may lie (measured ≤ 1.4 px).
const VIDEO_TOLERANCE = 0.03;
const FLIPPED_TOLERANCE = 0.15;
const FACE_PIXELS = 3;
const media = {};
let server;
/** The timeline of faces.mp4 on WebGPU, compared with the CPU's later. */
let webgpuTimeline;

before(() => {
    for (const [path, hint] of [[join(SITE, 'index.html'), 'bash scripts/build-web.sh'], [M3DFEL, 'cargo build --release -p m3dfel-cli'], [TRAINER, 'cargo build --release -p trainer']]) {
        assert.ok(existsSync(path), `${path} is missing: run ${hint} first`);
    }
    rmSync(ARTIFACTS, { recursive: true, force: true });
    mkdirSync(ARTIFACTS, { recursive: true });
    const dir = mkdtempSync(join(tmpdir(), 'm3dfel-page-'));
    const clips = syntheticFaceClips(TRAINER, { clips: 3 });
    media.mp4 = encodeFaces(clips.slice(0, 2), join(dir, 'faces.mp4'), { codec: ['-c:v', 'libx264', '-preset', 'veryfast'] });
    media.webm = encodeFaces(clips.slice(0, 2), join(dir, 'faces.webm'), { codec: ['-c:v', 'libvpx-vp9', '-deadline', 'realtime', '-cpu-used', '8'] });
    // The fake camera: y4m (Chromium loops it at the file's frame rate). Only the first clip:
    // the detector finds its face in 14–16 of any 16 frames (`m3dfel predict --video`),
    // whereas the second clip's frowning face is missed in most frames of its last second,
    // so a window that happened to fall there (on a slow machine) found 2 faces of 16.
    media.camera = encodeFaces(clips.slice(0, 1), join(dir, 'camera.y4m'), { fps: 10, pad: '400:300:100:50:0x556644', codec: ['-f', 'yuv4mpegpipe'] });
    media.text = join(dir, 'holiday.mp4');
    writeFileSync(media.text, 'this is a shopping list, not a video\n'.repeat(50));
    media.truncated = join(dir, 'cut-short.mp4');
    const bytes = readFileSync(media.mp4);
    writeFileSync(media.truncated, bytes.subarray(0, Math.floor(bytes.length / 3))); // FFmpeg writes the index (moov) last
    media.badWeights = join(dir, 'model.safetensors');
    writeFileSync(media.badWeights, readFileSync(DEMO_WEIGHTS).subarray(0, 5000));
});

before(async () => {
    server = await serve(SITE);
});

after(async () => server?.close());

/** The page in a browser, with every request it makes recorded from before it loads. */
function openSite(browser, { viewport, query = '' } = {}) {
    return openPage(browser, `${server.url}/${query}`, { viewport });
}

function waitForState(page, states, timeout = 120_000) {
    return page.waitForFunction((states) => states.includes(window.m3dfelDemo?.state), states, { timeout });
}

function demoState(page) {
    return page.evaluate(() => {
        const { state, backend, timeline, message, model, faceBox, source } = window.m3dfelDemo;
        const body = document.body.dataset;
        return { state, backend, timeline, message, model, faceBox, source, dom: { state: body.state, backend: body.backend, windows: Number(body.windows ?? 0) } };
    });
}

async function screenshot(page, name) {
    await page.screenshot({ path: join(ARTIFACTS, `${name}.png`), fullPage: true });
}

/** Every window: 16 frame times inside it, 4 instances tiling it, probabilities summing to 1. */
function checkWindows(timeline) {
    for (const window of timeline) {
        assert.deepEqual(window.classes, CLASSES);
        assert.equal(window.frameTimes.length, 16);
        assert.ok(window.frameTimes.every((t, i) => t >= window.start - 1e-6 && t < window.end && (i === 0 || t > window.frameTimes[i - 1])));
        assert.equal(window.instances.length, 4, 'four 3D instances per window');
        assert.equal(window.instances[0].start, window.start);
        assert.equal(window.instances.at(-1).end, window.end);
        window.instances.forEach((instance, i) => {
            if (i > 0) assert.equal(instance.start, window.instances[i - 1].end, 'instances follow each other');
            assert.ok(instance.gate > 0 && instance.gate < 1);
            assert.ok(Math.abs(instance.probabilities.reduce((a, b) => a + b) - 1) < 1e-4);
        });
        assert.ok(Math.abs(window.probabilities.reduce((a, b) => a + b) - 1) < 1e-4);
        assert.equal(window.prediction, CLASSES[window.probabilities.indexOf(Math.max(...window.probabilities))]);
    }
}

/** The page only ever fetched its own files. */
/**
 * The page's timeline of an uploaded video against `m3dfel predict --video` on the same file:
 * the same windows, frame times and predictions. The CLI decodes with FFmpeg, the page with
 * Chromium, so a colour may differ by a level; through the face detector that moves a box by a
 * pixel or so, and now and then flips a discrete choice (a score at the 0.5 threshold, two
 * boxes of nearly equal score). Windows whose faces all agree (both none, or boxes within
 * FACE_PIXELS) must give probabilities within VIDEO_TOLERANCE; a window with a flipped face
 * within FLIPPED_TOLERANCE, and flips must stay rare.
 */
function assertMatchesCli(timeline, file, what) {
    const cli = JSON.parse(execFileSync(M3DFEL, ['predict', '--weights', DEMO_WEIGHTS, '--video', file, '--json'], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
    assert.equal(cli.windows.length, timeline.length, what);
    let flips = 0;
    const errors = cli.windows.map((reference, i) => {
        const ours = timeline[i];
        assert.deepEqual(ours.frameTimes.map((t) => +t.toFixed(4)), reference.frameTimes.map((t) => +t.toFixed(4)), `${what}: window ${i}`);
        assert.equal(ours.prediction, reference.prediction, `${what}: window ${i}`);
        const agree = ours.faces.map((face, j) => {
            const other = reference.faces[j];
            if (!face || !other) return !face && !other;
            return Math.max(...['x', 'y', 'width', 'height'].map((k) => Math.abs(face[k] - other[k]))) <= FACE_PIXELS;
        });
        const flipped = agree.filter((same) => !same).length;
        flips += flipped;
        const error = Math.max(...ours.probabilities.map((p, c) => Math.abs(p - reference.probabilities[c])));
        assert.ok(error < (flipped ? FLIPPED_TOLERANCE : VIDEO_TOLERANCE),
            `${what}: window ${i}: the page and the CLI differ by ${error} (${flipped} of 16 faces differ)`);
        return `${error.toExponential(1)}${flipped ? ` (${flipped} face${flipped > 1 ? 's' : ''} flipped)` : ''}`;
    });
    console.log(`${what}: the page's probabilities differ from the CLI's by ${errors.join(', ')}`);
    assert.ok(flips <= 0.1 * 16 * timeline.length, `${what}: ${flips} of ${16 * timeline.length} faces differ between the page and the CLI`);
}

function assertOnlyOwnRequests(requests) {
    // Recorded from before the page loaded: its own scripts and styles are among them.
    for (const file of ['/app.js', '/style.css', '/m3dfel/m3dfel.js']) {
        assert.ok(requests.some((url) => new URL(url).pathname === file), `the load-time request for ${file} was not recorded`);
    }
    const foreign = requests.filter((url) => !url.startsWith(`${server.url}/`) && !url.startsWith('blob:') && !url.startsWith('data:'));
    assert.deepEqual(foreign, [], 'the page sent requests elsewhere');
}

async function upload(page, file) {
    await page.setInputFiles('#video-file', file);
    await page.waitForFunction(() => window.m3dfelDemo.state !== 'running', null, { timeout: 300_000 });
    return demoState(page);
}

describe('with WebGPU and a fake webcam', () => {
    let browser, page, problems, requests;
    before(async () => {
        browser = await launch({
            webgpu: true,
            args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${media.camera}`],
        });
        ({ page, problems, requests } = await openSite(browser));
    });
    after(async () => browser?.close());

    test('loads the demo model on WebGPU and says what it is', async () => {
        await screenshot(page, '1-loading');
        await waitForState(page, ['ready', 'error']);
        const s = await demoState(page);
        assert.equal(s.state, 'ready', s.message);
        assert.equal(s.dom.state, 'ready');
        assert.equal(s.backend, 'webgpu');
        assert.equal(s.dom.backend, 'webgpu');
        assert.equal(s.model.preset, 'tiny');
        // The whole model on the GPU, the WGSL DMIN kernel included, and the panel says so.
        assert.deepEqual(s.model.placement, { backbone: 'webgpu', head: 'webgpu', dmin: 'wgsl' }, s.model.backendReason);
        assert.equal(await page.textContent('#placement'), 'R3D-18 on WebGPU; DLIAM and the classifier on WebGPU; DMIN: the WGSL kernel on WebGPU');
        const text = await page.evaluate(() => document.body.innerText);
        assert.match(text, /WebGPU \(google swiftshader/);
        assert.match(text, /WebGPU adapter found/);
        assert.match(text, /demo weights/);
        assert.match(text, /synthetic/, 'the page says the demo weights are synthetic');
        assert.match(text, /nothing leaves this device/i);
        assert.ok(await page.isVisible('#demo-warning'));
        await screenshot(page, '2-ready');
    });

    test('webcam: windows of the last 2 s are classified continuously, with the face found', async () => {
        await page.click('#webcam-start');
        await page.waitForFunction(() => window.m3dfelDemo.timeline.length >= 3 || window.m3dfelDemo.state === 'error', null, { timeout: 180_000 });
        const s = await demoState(page);
        assert.equal(s.state, 'running', s.message);
        assert.equal(s.source.kind, 'webcam');
        assert.ok(s.timeline.length >= 3);
        assert.equal(s.dom.windows, s.timeline.length);
        checkWindows(s.timeline);
        // A sliding window: each new one ends later than the one before and lasts ~2 s.
        s.timeline.forEach((w, i) => {
            assert.ok(Math.abs(w.end - w.start - 2) < 0.3, `window ${i} lasts ${w.end - w.start} s`);
            if (i > 0) assert.ok(w.end > s.timeline[i - 1].end);
        });
        // The synthetic face is pasted at x 100–324, y 50–274 of the 400×300 camera picture.
        assert.ok(s.faceBox, 'a face box was drawn');
        const cx = s.faceBox.x + s.faceBox.width / 2;
        const cy = s.faceBox.y + s.faceBox.height / 2;
        assert.ok(cx > 100 && cx < 324 && cy > 50 && cy < 274, `face centre (${cx}, ${cy}) is not on the face`);
        const found = s.timeline.map((w) => w.faces.filter(Boolean).length);
        assert.ok(found.every((n) => n >= 12), `faces found per window (of 16): ${found}`);
        // Each frame is detected once: the first window runs the detector on its 16 frames,
        // each later one (the latest 16 frames) only on those the window before did not have.
        // How many it shares depends on how long a window took (none on a machine so loaded
        // that a window takes over 2 s): counted from the frame times, not assumed.
        const detected = s.timeline.map((w) => w.detectedFrames);
        const shared = s.timeline.map((w, i) => (i === 0 ? 0 : w.frameTimes.filter((t) => s.timeline[i - 1].frameTimes.includes(t)).length));
        console.log(`webcam: frames detected per window ${detected}, shared with the window before ${shared}`);
        assert.equal(detected[0], 16, `frames detected per window: ${detected}`);
        detected.forEach((n, i) => assert.ok(n <= 16 - shared[i], `window ${i} ran the detector on ${n} frames, but shares ${shared[i]} of 16 with the window before`));
        assert.match(await page.getAttribute('#overlay', 'data-face'), /^\d+,\d+,\d+,\d+$/);
        assert.equal(await page.locator('#timeline [data-window]').count(), s.timeline.length);
        assert.match(await page.textContent('#speed'), /ms per window/);
        await screenshot(page, '3-webcam-running');
        await page.click('#webcam-stop');
        await waitForState(page, ['ready']);
        assert.equal(await page.evaluate(() => document.getElementById('video').srcObject), null, 'the camera was released');
    });

    test('upload (MP4, H.264): the timeline covers the video and matches `m3dfel predict --video`', async () => {
        const s = await upload(page, media.mp4);
        assert.equal(s.state, 'ready', s.message);
        assert.equal(s.source.name, 'faces.mp4');
        assert.ok(Math.abs(s.source.duration - DURATION) < 0.05, `duration ${s.source.duration}`);
        checkWindows(s.timeline);
        assert.deepEqual(s.timeline.map((w) => [w.start, w.end].map((t) => +t.toFixed(3))), [[0, 2], [1, 3], [2, 4], [2.8, 4.8]]);
        // The second and third windows share their first 8 frames with the one before: only
        // their new frames go through the face detector.
        const detected = s.timeline.map((w) => w.detectedFrames);
        assert.ok(detected[0] === 16 && detected[1] <= 8 && detected[2] <= 8, `frames detected per window: ${detected}`);
        assertMatchesCli(s.timeline, media.mp4, 'MP4');
        webgpuTimeline = s.timeline;
        await screenshot(page, '4-upload-mp4');
    });

    test('the timeline shows each instance with its probabilities and gate on hover', async () => {
        assert.equal(await page.locator('#timeline .bag').count(), 4);
        const instances = page.locator('#timeline .instance');
        assert.equal(await instances.count(), 16);
        await instances.nth(5).hover();
        const tip = await page.textContent('#tooltip');
        assert.match(tip, /Window 2 · instance 2/);
        assert.match(tip, /gate 0\.\d{3}/);
        for (const name of CLASSES) assert.ok(tip.includes(name), `the tooltip lacks ${name}`);
        await screenshot(page, '5-tooltip');
        // Clicking a window shows it as the current answer.
        await page.locator('#timeline [data-window="3"] .bag').click();
        assert.match(await page.textContent('#current'), /window 4, 2\.8–4\.8 s/);
    });

    test('smoothing changes the chart; JSON and CSV exports hold the timeline', async () => {
        const line = () => page.getAttribute('#chart polyline[data-class="happy"]', 'points');
        const raw = await line();
        await page.fill('#smoothing', '2');
        assert.notEqual(await line(), raw, 'smoothing did not change the chart');
        assert.equal(await page.textContent('#smoothing-value'), '±2 windows');
        await page.fill('#smoothing', '0');
        assert.equal(await line(), raw);

        const [json] = await Promise.all([page.waitForEvent('download'), page.click('#export-json')]);
        assert.equal(json.suggestedFilename(), 'm3dfel-timeline-faces.json');
        const exported = JSON.parse(readFileSync(await json.path(), 'utf8'));
        assert.deepEqual(exported.windows, webgpuTimeline);
        assert.equal(exported.model.preset, 'tiny');
        assert.deepEqual(exported.classes, CLASSES);

        const [csv] = await Promise.all([page.waitForEvent('download'), page.click('#export-csv')]);
        const rows = readFileSync(await csv.path(), 'utf8').trim().split('\n').map((row) => row.split(','));
        assert.deepEqual(rows[0], ['window', 'kind', 'instance', 'start', 'end', 'prediction', 'gate', ...CLASSES]);
        assert.equal(rows.length, 1 + 4 * 5, 'a bag row and four instance rows per window');
        assert.deepEqual(rows[1].slice(0, 6), ['0', 'bag', '', '0.000', '2.000', webgpuTimeline[0].prediction]);
        assert.ok(Math.abs(Number(rows[2][7]) - webgpuTimeline[0].instances[0].probabilities[0]) < 1e-6);
    });

    test('upload (WebM, VP9): the timeline covers the video', async () => {
        const s = await upload(page, media.webm);
        assert.equal(s.state, 'ready', s.message);
        assert.ok(Math.abs(s.source.duration - DURATION) < 0.1, `duration ${s.source.duration}`);
        checkWindows(s.timeline);
        assert.equal(s.timeline[0].start, 0);
        assert.ok(Math.abs(s.timeline.at(-1).end - s.source.duration) < 1e-6);
        assertMatchesCli(s.timeline, media.webm, 'WebM');
        await screenshot(page, '6-upload-webm');
    });

    test('a file that is not a video, and a damaged one: a message, and the page still works', async () => {
        for (const [file, name] of [[media.text, 'holiday.mp4'], [media.truncated, 'cut-short.mp4']]) {
            const s = await upload(page, file);
            assert.equal(s.state, 'error');
            assert.ok(s.message.includes(name) && /cannot be played/.test(s.message), s.message);
            assert.ok(await page.isVisible('#message'));
            assert.equal(s.timeline.length, 0);
            await screenshot(page, `7-error-${name.replace('.mp4', '')}`);
        }
        const s = await upload(page, media.mp4);
        assert.equal(s.state, 'ready', s.message);
        assert.equal(s.timeline.length, 4);
        assert.ok(await page.isHidden('#message'));
    });

    test('wrong weights: a message naming the file; then the demo weights on the CPU', async () => {
        await page.click('#load-weights summary');
        await page.setInputFiles('#weights-file', media.badWeights);
        await page.click('#weights-form button');
        await waitForState(page, ['error']);
        const s = await demoState(page);
        assert.ok(s.message.includes('model.safetensors') && /damaged or truncated/.test(s.message), s.message);
        assert.ok(await page.isDisabled('#webcam-start'), 'no model: nothing to run');
        await screenshot(page, '8-error-weights');

        await page.setInputFiles('#weights-file', DEMO_WEIGHTS);
        await page.selectOption('#backend-choice', 'cpu');
        await page.click('#weights-form button');
        await waitForState(page, ['ready', 'error']);
        const loaded = await demoState(page);
        assert.equal(loaded.state, 'ready', loaded.message);
        assert.equal(loaded.backend, 'cpu');
        // The page runs the model in a worker and is served cross-origin isolated: the CPU
        // backend gets the thread pool (one thread per processor Chromium reports).
        assert.ok(loaded.model.threads >= 2, loaded.model.backendReason);
        assert.equal(loaded.model.backendReason, `the CPU was requested; ${loaded.model.threads} threads`);
        assert.deepEqual(loaded.model.placement, { backbone: 'cpu', head: 'cpu', dmin: 'cpu' });
        assert.equal(loaded.model.demo, false);
        assert.ok(await page.isHidden('#demo-warning'));
        assert.match(await page.textContent('#weights'), /m3dfel-tiny-synthetic\.safetensors/);
    });

    test('nothing but the page\'s own files was requested, and nothing went wrong in it', () => {
        assertOnlyOwnRequests(requests);
        assert.deepEqual(problems, []);
    });
});

describe('without WebGPU, on a phone-sized screen', () => {
    let browser, page, problems, requests;
    before(async () => {
        browser = await launch({ webgpu: false });
        ({ page, problems, requests } = await openSite(browser, { viewport: { width: 390, height: 844 } }));
    });
    after(async () => browser?.close());

    test('falls back to the CPU and says why', async () => {
        await waitForState(page, ['ready', 'error']);
        const s = await demoState(page);
        assert.equal(s.state, 'ready', s.message);
        assert.equal(s.backend, 'cpu');
        assert.equal(s.dom.backend, 'cpu');
        assert.match(s.model.backendReason, /no adapter|no WebGPU/);
        assert.match(await page.textContent('#backend-reason'), /running on the CPU/);
        assert.ok(s.model.threads >= 2, s.model.backendReason);
        assert.equal(await page.textContent('#backend'), `CPU (WebAssembly, ${s.model.threads} threads)`);
    });

    test('no camera: a message that says so', async () => {
        await page.click('#webcam-start');
        await waitForState(page, ['error'], 30_000);
        const s = await demoState(page);
        assert.match(s.message, /^The webcam could not start: no camera was found/);
        assert.ok(await page.isVisible('#message'));
    });

    test('the same upload gives the WebGPU results; the page fits 390 px', async () => {
        assert.ok(webgpuTimeline, 'the WebGPU upload test ran first');
        const s = await upload(page, media.mp4);
        assert.equal(s.state, 'ready', s.message);
        assert.equal(s.timeline.length, webgpuTimeline.length);
        s.timeline.forEach((w, i) => {
            const reference = webgpuTimeline[i];
            const error = Math.max(...w.probabilities.map((p, c) => Math.abs(p - reference.probabilities[c])),
                ...w.instances.flatMap((instance, k) => [Math.abs(instance.gate - reference.instances[k].gate),
                    ...instance.probabilities.map((p, c) => Math.abs(p - reference.instances[k].probabilities[c]))]));
            assert.ok(error <= 1e-4, `window ${i}: CPU and WebGPU differ by ${error}`);
        });
        const widths = await page.evaluate(() => [document.documentElement.scrollWidth, window.innerWidth]);
        assert.ok(widths[0] <= widths[1], `the page is ${widths[0]} px wide on a ${widths[1]} px screen`);
        const box = await page.locator('#timeline').boundingBox();
        assert.ok(box.x >= 0 && box.x + box.width <= 390, 'the timeline fits the screen');
        await screenshot(page, '9-narrow-cpu');
        assertOnlyOwnRequests(requests);
        assert.deepEqual(problems, []);
    });
});

