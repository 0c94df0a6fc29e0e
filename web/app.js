// The page: loads the model in a worker, feeds it windows from the webcam or a video file,
// and shows the answers (current clip, per-instance timeline, probabilities over time).
// Its latest state is kept in `window.m3dfelDemo` ({state, backend, timeline, …}) and in
// <body data-state data-backend data-windows> for tests and other tools.
import { CLASSES, COLORS, argmax, percent } from './emotions.js';
import { drawChart } from './chart.js';
import { download, timelineCsv, timelineJson } from './export.js';
import { ModelWorker } from './model.js';
import { drawTimeline } from './timeline.js';
import { openVideo, videoWindows } from './upload.js';
import { Webcam } from './webcam.js';

const WINDOW_SECONDS = 2;
const STRIDE_SECONDS = 1;
/** Frames are scaled down to this side before face detection (the detector's own limit). */
const MAX_SIDE = 640;
/** Seconds of live timeline shown at once. */
const LIVE_SPAN = 30;
/** Live windows kept (older ones are dropped). */
const LIVE_KEEP = 1000;

const $ = (id) => document.getElementById(id);
const video = $('video');

const demo = {
    state: 'loading',
    backend: null,
    /** The window results, in the package's shape (WindowResult, with faces and crops when cropping). */
    timeline: [],
    /** What is being classified: {kind: 'webcam'} or {kind: 'file', name, duration}. */
    source: null,
    /** The loaded model: backend, backendReason, placement ({backbone, head, dmin}), preset, frameSize, weights, demo, … */
    model: null,
    /** The face box last drawn on the preview ({x, y, width, height, score} in frame pixels). */
    faceBox: null,
    /** The message shown to the person, if any. */
    message: null,
    /** Milliseconds the model took for the latest window. */
    milliseconds: null,
};
window.m3dfelDemo = demo;

let currentWeights; // undefined: the demo weights
let frameSize = null; // {width, height} of the frames given to the model
let selected = null;
let run = null; // {stop(), done: Promise} of the webcam or file being classified

const model = new ModelWorker(showLoadProgress);

function setState(state) {
    demo.state = state;
    document.body.dataset.state = state;
    const busy = state === 'loading';
    for (const id of ['webcam-start', 'video-file', 'face-crop']) $(id).disabled = busy || !demo.model;
    $('weights-form').querySelector('button').disabled = busy;
    const hasResults = demo.timeline.length > 0;
    $('export-json').disabled = !hasResults;
    $('export-csv').disabled = !hasResults;
}

function showMessage(text, kind = 'error') {
    demo.message = text;
    const box = $('message');
    box.textContent = text ?? '';
    box.className = `message ${kind}`;
    box.hidden = !text;
}

// ---- the model ----------------------------------------------------------------------

function showLoadProgress({ phase, loaded, total, backend }) {
    const where = backend === 'webgpu' ? 'WebGPU' : 'the CPU';
    const text = {
        wasm: 'Starting the WebAssembly module…',
        weights: `Reading the weights: ${megabytes(loaded ?? 0)}${total ? ` of ${megabytes(total)}` : ''}…`,
        backend: `Starting the model on ${where}…`,
        'warm-up': `Warming up on ${where} (the first run prepares its kernels)…`,
        ready: 'Ready.',
    }[phase];
    $('model-status').textContent = text;
    const progress = $('model-progress');
    progress.hidden = phase === 'ready';
    if (phase === 'weights' && total) progress.value = loaded / total;
    else progress.removeAttribute('value'); // indeterminate
}

function megabytes(bytes) {
    return `${(bytes / 1e6).toFixed(1)} MB`;
}

async function loadModel(weights, backend) {
    await stopRun();
    demo.model = null;
    setState('loading');
    showMessage(null);
    $('model-progress').hidden = false;
    try {
        const info = await model.load(weights, backend);
        currentWeights = weights;
        demo.model = info;
        showWhereItRuns(info);
        $('weights').textContent = `${weightsName(weights)}: preset ${info.preset}, ${(info.parameters / 1e6).toFixed(2)} M parameters, ` +
            `${megabytes(info.weightBytes)}, ${info.numFrames} frames of ${info.frameSize}×${info.frameSize} per clip`;
        $('demo-warning').hidden = !info.demo;
        $('model-status').textContent = readyText();
        $('model-progress').hidden = true;
        setState('ready');
    } catch (error) {
        $('model-status').textContent = 'No model loaded.';
        $('model-progress').hidden = true;
        showMessage(`The model could not be loaded from ${weightsName(weights)}: ${error.message}`);
        setState('error');
    }
}

const PLACES = { webgpu: 'WebGPU', cpu: 'the CPU', wgsl: 'the WGSL kernel on WebGPU', none: 'not in this model' };

/** The model panel's "Runs on", "Parts" and "Why" (again when WebGPU failed mid-run). */
function showWhereItRuns(where) {
    Object.assign(demo.model, where);
    demo.backend = where.backend;
    document.body.dataset.backend = where.backend;
    document.body.dataset.head = where.placement.head;
    $('backend').textContent = where.backend === 'webgpu'
        ? `WebGPU (${where.adapter ?? 'adapter'})`
        : `CPU (WebAssembly, ${where.threads} thread${where.threads > 1 ? 's' : ''})`;
    const { backbone, head, dmin } = where.placement;
    $('placement').textContent = `R3D-18 on ${PLACES[backbone]}; DLIAM and the classifier on ${PLACES[head]}; DMIN: ${PLACES[dmin]}`;
    $('backend-reason').textContent = where.backendReason;
}

function readyText() {
    const { preset, backend } = demo.model;
    return `Ready: ${preset} preset on ${backend === 'webgpu' ? 'WebGPU' : 'the CPU'}. Use the webcam or choose a video.`;
}

function weightsName(weights) {
    if (weights === undefined) return 'the demo weights (m3dfel-tiny-synthetic.safetensors)';
    return weights instanceof File ? `“${weights.name}”` : weights;
}

$('weights-form').addEventListener('submit', (event) => {
    event.preventDefault();
    const file = $('weights-file').files[0];
    const url = $('weights-url').value.trim();
    const weights = file ?? (url ? new URL(url, location.href).href : currentWeights);
    loadModel(weights, $('backend-choice').value);
});

// ---- sources ------------------------------------------------------------------------

/** Stops the webcam or the file being classified and waits until the model is free. */
async function stopRun() {
    const current = run;
    run = null;
    if (current) {
        current.stop();
        await current.done;
    }
    $('webcam-start').hidden = false;
    $('webcam-stop').hidden = true;
    $('cancel').hidden = true;
    $('video-progress').hidden = true;
}

function beginRun(source, stop, task) {
    demo.timeline = [];
    demo.source = source;
    demo.faceBox = null;
    selected = null;
    frameSize = null;
    showMessage(null);
    $('current').textContent = 'No clip yet.';
    $('preview').hidden = false;
    $('drop-hint').hidden = true;
    clearOverlay();
    redraw();
    setState('running');
    const current = { stop };
    current.done = task(() => run === current).then(
        () => run === current && setState('ready'),
        (error) => {
            if (run !== current) return;
            showMessage(error.message);
            $('model-status').textContent = readyText();
            if (demo.timeline.length === 0) {
                $('preview').hidden = true;
                $('drop-hint').hidden = false;
            }
            setState('error');
        },
    ).finally(() => {
        if (run === current) stopRun();
    });
    run = current;
}

function isNoFace(error) {
    return /no face was found/.test(error.message);
}

async function startWebcam() {
    await stopRun();
    const webcam = new Webcam(video, { numFrames: demo.model.numFrames, windowSeconds: WINDOW_SECONDS, maxSide: MAX_SIDE });
    beginRun({ kind: 'webcam' }, () => webcam.stop(), async (active) => {
        await webcam.start(); // resolves once the camera plays: its size is known
        fitPreview();
        $('webcam-start').hidden = true;
        $('webcam-stop').hidden = false;
        $('model-status').textContent = 'Watching the camera: every new window of the last 2 seconds is classified.';
        let index = 0;
        let newest = -1;
        while (active()) {
            const frames = webcam.latest();
            if (!frames || frames.at(-1).time === newest) {
                await new Promise((resolve) => setTimeout(resolve, 30));
                continue;
            }
            newest = frames.at(-1).time;
            try {
                const { window, milliseconds, where } = await model.classifyWindow(frames, { index, faceCrop: $('face-crop').checked });
                if (where.backend !== demo.model.backend) showWhereItRuns(where);
                if (!active()) break;
                index += 1;
                showMessage(null);
                addWindow(window, milliseconds, frames[0].frame);
                if (demo.timeline.length > LIVE_KEEP) demo.timeline.shift();
            } catch (error) {
                if (!active()) break;
                if (!isNoFace(error)) throw error;
                showMessage('No face in view: face the camera (or turn off “Find and crop the face”).', 'note');
                clearOverlay();
            }
        }
    });
}

async function classifyFile(file) {
    await stopRun();
    if (!demo.model) return;
    // Cancelling needs nothing stopped: the loop sees that the run is no longer active.
    beginRun({ kind: 'file', name: file.name }, () => {}, async (active) => {
        $('cancel').hidden = false;
        $('model-status').textContent = `Opening “${file.name}”…`;
        await openVideo(file, video);
        fitPreview();
        video.controls = false;
        const progress = $('video-progress');
        progress.hidden = false;
        progress.value = 0;
        let skipped = 0;
        let total = 0;
        const windows = videoWindows(video, { windowSeconds: WINDOW_SECONDS, strideSeconds: STRIDE_SECONDS, numFrames: demo.model.numFrames, maxSide: MAX_SIDE });
        let next = windows.next();
        for (;;) {
            const { value, done } = await next;
            if (done || !active()) break;
            demo.source.duration = value.duration;
            total = value.total;
            const pending = model.classifyWindow(value.frames, { index: value.index, end: value.end, faceCrop: $('face-crop').checked });
            next = windows.next();
            next.catch(() => {}); // awaited (and reported) on the next turn
            try {
                const { window, milliseconds, where } = await pending;
                if (where.backend !== demo.model.backend) showWhereItRuns(where);
                if (!active()) return;
                addWindow(window, milliseconds, value.frames[0].frame);
            } catch (error) {
                if (!isNoFace(error)) throw error;
                skipped += 1;
            }
            progress.value = (value.index + 1) / value.total;
            $('model-status').textContent = `Classifying “${file.name}”: window ${value.index + 1} of ${value.total}…`;
        }
        if (!active()) return;
        video.controls = true;
        $('model-status').textContent = `Done: ${demo.timeline.length} windows of “${file.name}” (${demo.source.duration.toFixed(1)} s). Play the video or click the timeline to browse.`;
        if (demo.timeline.length === 0) {
            throw new Error(`No face was found in “${file.name}”. If the video is already cropped to a face, turn off “Find and crop the face” and choose it again.`);
        }
        if (skipped > 0) showMessage(`${skipped} of ${total} windows had no face and were left out of the timeline.`, 'note');
        setState('ready');
        select(demo.timeline[0].index);
    });
}

$('webcam-start').addEventListener('click', startWebcam);
$('webcam-stop').addEventListener('click', async () => {
    await stopRun();
    setState('ready');
});
$('cancel').addEventListener('click', async () => {
    await stopRun();
    $('model-status').textContent = 'Cancelled.';
    setState('ready');
});
$('video-file').addEventListener('change', (event) => {
    const [file] = event.target.files;
    event.target.value = '';
    if (file) classifyFile(file);
});
const dropZone = $('drop-zone');
for (const type of ['dragenter', 'dragover']) {
    dropZone.addEventListener(type, (event) => {
        event.preventDefault();
        dropZone.classList.add('dragging');
    });
}
dropZone.addEventListener('dragleave', () => dropZone.classList.remove('dragging'));
dropZone.addEventListener('drop', (event) => {
    event.preventDefault();
    dropZone.classList.remove('dragging');
    const [file] = event.dataTransfer.files;
    if (file && demo.model) classifyFile(file);
});
// A file dropped elsewhere must not make the browser leave the page.
window.addEventListener('dragover', (event) => event.preventDefault());
window.addEventListener('drop', (event) => event.preventDefault());

// ---- results ------------------------------------------------------------------------

function addWindow(window, milliseconds, frame) {
    frameSize = { width: frame.width, height: frame.height };
    demo.timeline.push(window);
    demo.milliseconds = milliseconds;
    document.body.dataset.windows = demo.timeline.length;
    const live = demo.source.kind === 'webcam';
    $('speed').textContent = `${Math.round(milliseconds)} ms per window of ${window.frameTimes.length} frames ` +
        `(${(window.frameTimes.length / (milliseconds / 1000)).toFixed(1)} frames/s through the model` +
        `${live ? `; the camera is sampled at ${window.frameTimes.length / WINDOW_SECONDS} frames/s` : ''})`;
    showCurrent(window);
    drawFace(window, window.frameTimes.at(-1));
    redraw();
    setState(demo.state);
}

function showCurrent(window) {
    const best = argmax(window.probabilities);
    const bars = CLASSES.map((name, c) => `<li><span class="name">${name}</span>` +
        `<span class="bar"><span style="width:${(100 * window.probabilities[c]).toFixed(1)}%;background:${COLORS[c]}"></span></span>` +
        `<span class="value">${percent(window.probabilities[c])}</span></li>`).join('');
    const instances = window.instances.map((instance) => {
        const dominant = argmax(instance.probabilities);
        return `<li style="--color:${COLORS[dominant]};--gate:${instance.gate.toFixed(3)}">` +
            `<b>${CLASSES[dominant]}</b> ${percent(instance.probabilities[dominant])}<br><small>gate ${instance.gate.toFixed(2)}</small></li>`;
    }).join('');
    $('current').innerHTML = `<p class="answer"><span class="swatch" style="background:${COLORS[best]}"></span>` +
        `<b>${CLASSES[best]}</b> ${percent(window.probabilities[best])} <small>window ${window.index + 1}, ` +
        `${window.start.toFixed(1)}–${window.end.toFixed(1)} s</small></p><ul class="bars">${bars}</ul>` +
        `<p class="instances-title">Its 3D instances (what each ${window.instances[0].frames[1] - window.instances[0].frames[0] + 1}-frame piece shows, and its gate):</p>` +
        `<ol class="instances">${instances}</ol>`;
}

function span() {
    const last = demo.timeline.at(-1);
    if (demo.source?.kind === 'file') return { from: 0, to: demo.source.duration ?? last?.end ?? 1 };
    const to = Math.max(LIVE_SPAN, last?.end ?? 0);
    return { from: to - LIVE_SPAN, to };
}

function redraw() {
    const { from, to } = span();
    drawTimeline($('timeline'), demo.timeline, { from, to, selected });
    drawChart($('chart'), demo.timeline, { from, to, radius: Number($('smoothing').value) });
}

/** Index of the value nearest `target`. */
function nearestIndex(values, target) {
    return values.reduce((best, value, i) => (Math.abs(value - target) < Math.abs(values[best] - target) ? i : best), 0);
}

/** Shows `window` as the current answer, outlined in the timeline, with its face at `time` (if given). */
function show(window, time) {
    if (window.index !== selected) {
        selected = window.index;
        showCurrent(window);
        redraw();
    }
    if (time !== undefined) drawFace(window, time);
}

/** A window chosen in the timeline; a file's video is moved to its middle (the camera's is gone). */
function select(index) {
    const window = demo.timeline.find((w) => w.index === index);
    if (!window) return;
    if (demo.source?.kind !== 'file') {
        show(window);
        return;
    }
    const middle = (window.start + window.end) / 2;
    show(window, middle);
    if (Math.abs(video.currentTime - middle) > 0.05 && video.paused) video.currentTime = middle;
}

$('timeline').addEventListener('click', (event) => {
    const group = event.target.closest('[data-window]');
    if (group && demo.state !== 'running') select(Number(group.dataset.window));
});

// While a classified file plays or is seeked: the window around the current time.
for (const type of ['timeupdate', 'seeked']) {
    video.addEventListener(type, () => {
        if (demo.source?.kind !== 'file' || demo.state === 'running' || !demo.timeline.length) return;
        const time = video.currentTime;
        show(demo.timeline[nearestIndex(demo.timeline.map((w) => (w.start + w.end) / 2), time)], time);
    });
}

$('smoothing').addEventListener('input', (event) => {
    const radius = Number(event.target.value);
    $('smoothing-value').textContent = radius === 0 ? 'off' : `±${radius} window${radius > 1 ? 's' : ''}`;
    redraw();
});

function exportName(extension) {
    const base = demo.source?.kind === 'file' ? demo.source.name.replace(/\.[^.]+$/, '') : 'webcam';
    return `m3dfel-timeline-${base}.${extension}`;
}

$('export-json').addEventListener('click', () => {
    const { backend, preset, weights, demo: isDemo } = demo.model;
    const text = timelineJson({ source: demo.source, model: { backend, preset, weights, demoWeights: isDemo }, windows: demo.timeline });
    download(exportName('json'), 'application/json', text);
});
$('export-csv').addEventListener('click', () => download(exportName('csv'), 'text/csv', timelineCsv(demo.timeline)));

// ---- preview: the video and the face box ----------------------------------------------

function fitPreview() {
    if (video.videoWidth > 0) $('preview').style.aspectRatio = `${video.videoWidth} / ${video.videoHeight}`;
}

function clearOverlay() {
    const overlay = $('overlay');
    overlay.getContext('2d').clearRect(0, 0, overlay.width, overlay.height);
    delete overlay.dataset.face;
}

/** Draws the tracked crop (dashed) and the detected face of the window's frame nearest `time`. */
function drawFace(window, time) {
    const overlay = $('overlay');
    if (!frameSize || !window.crops) {
        clearOverlay();
        return;
    }
    overlay.width = frameSize.width;
    overlay.height = frameSize.height;
    const context = overlay.getContext('2d');
    const nearest = nearestIndex(window.frameTimes, time);
    const crop = window.crops[nearest];
    const face = window.faces[nearest] ?? window.faces.find(Boolean);
    const line = Math.max(2, frameSize.width / 240);
    context.lineWidth = line;
    context.setLineDash([4 * line, 3 * line]);
    context.strokeStyle = 'rgba(255, 255, 255, 0.9)';
    context.strokeRect(crop.x, crop.y, crop.size, crop.size);
    context.setLineDash([]);
    if (face) {
        context.strokeStyle = '#00e060';
        context.strokeRect(face.x, face.y, face.width, face.height);
        context.font = `${Math.round(7 * line)}px system-ui, sans-serif`;
        context.fillStyle = '#00e060';
        context.fillText(`face ${face.score.toFixed(2)}`, face.x, Math.max(7 * line, face.y - 2 * line));
        demo.faceBox = face;
        overlay.dataset.face = [face.x, face.y, face.width, face.height].map(Math.round).join(',');
    }
}

// ---- tooltip --------------------------------------------------------------------------

const tooltip = $('tooltip');
function showTip(event) {
    const target = event.target.closest?.('[data-tip]');
    if (!target) {
        tooltip.hidden = true;
        return;
    }
    const [title, ...lines] = target.dataset.tip.split('\n');
    tooltip.replaceChildren(Object.assign(document.createElement('b'), { textContent: title }));
    for (const line of lines) {
        const [name, value] = line.split('\t');
        const row = document.createElement('div');
        row.textContent = name;
        if (value !== undefined) row.append(Object.assign(document.createElement('span'), { textContent: value }));
        tooltip.append(row);
    }
    tooltip.hidden = false;
    const { innerWidth, innerHeight } = window;
    const box = tooltip.getBoundingClientRect();
    tooltip.style.left = `${Math.min(event.clientX + 12, innerWidth - box.width - 4)}px`;
    tooltip.style.top = `${Math.min(event.clientY + 12, innerHeight - box.height - 4)}px`;
}
$('timeline').addEventListener('pointermove', showTip);
$('timeline').addEventListener('pointerleave', () => { tooltip.hidden = true; });

// ---- start ----------------------------------------------------------------------------

$('legend').innerHTML = CLASSES.map((name, c) => `<li><span class="swatch" style="background:${COLORS[c]}"></span>${name}</li>`).join('');
window.addEventListener('resize', redraw);
redraw();
// ?backend=cpu (or webgpu) chooses the backend from the address, e.g. for a bookmark.
const backendChoice = $('backend-choice');
backendChoice.value = new URLSearchParams(location.search).get('backend') ?? 'auto';
if (!backendChoice.value) backendChoice.value = 'auto';
loadModel(undefined, backendChoice.value);
