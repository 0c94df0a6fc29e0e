// m3dfel: clip-level facial expression recognition (M3DFEL, CVPR 2023) in the browser,
// on WebGPU with a CPU fallback. The model itself is the Rust crate compiled to
// WebAssembly (./wasm/); this file fetches weights, picks the backend, turns images and
// videos into clips and shapes the results. Types: m3dfel.d.ts.

import init, { Engine, detectFaces as detectFacesIn, faceClip, framePlanes } from './wasm/m3dfel_wasm.js';

/** The seven classes, in the order of every `probabilities` and `logits` array. */
export const CLASSES = Object.freeze(['happy', 'sad', 'neutral', 'angry', 'surprise', 'disgust', 'fear']);

/** Demo weights shipped with the package: the `tiny` preset trained on synthetic faces. */
export const DEMO_WEIGHTS = new URL('./weights/m3dfel-tiny-synthetic.safetensors', import.meta.url).href;

/** Every error this package throws; `message` is written for people. */
export class M3dfelError extends Error {
    constructor(message, options) {
        super(message, options);
        this.name = 'M3dfelError';
    }
}

let wasmReady = null;

/** Instantiates the WebAssembly module once (from `wasm`: URL, bytes or module, if given). */
function loadWasm(wasm) {
    wasmReady ??= init(wasm === undefined ? undefined : { module_or_path: wasm }).catch((error) => {
        wasmReady = null;
        throw new M3dfelError(`could not start the m3dfel WebAssembly module: ${error.message}`, { cause: error });
    });
    return wasmReady;
}

/** Most Web Workers the threaded CPU backend starts with `threads: 'auto'`. */
const MAX_THREADS = 16;

let threadPool = null;

/** Why the threaded CPU module cannot run here, or null where it can. */
function whyNoThreads() {
    if (typeof WorkerGlobalScope === 'undefined' || !(globalThis instanceof WorkerGlobalScope)) {
        return typeof document === 'undefined'
            ? 'threads need a Web Worker of a browser'
            : "the model runs on the page's main thread (threads need it in a Web Worker)";
    }
    if (!globalThis.crossOriginIsolated) {
        return 'the page is not cross-origin isolated (threads need the COOP and COEP headers)';
    }
    return null;
}

/**
 * The threaded CPU module (./wasm-threads/: built with atomics, no WebGPU) with its pool of
 * Web Workers sharing the module's memory; started once, on the first CPU load that may use
 * it. Resolves to {module, threads} or, where threads cannot run, {threads: 1, reason}.
 */
function startThreads(requested) {
    const why = whyNoThreads();
    if (why) return { threads: 1, reason: why };
    const wanted = requested === 'auto' ? Math.min(globalThis.navigator?.hardwareConcurrency || 1, MAX_THREADS) : requested;
    if (wanted < 2) return { threads: 1, reason: requested === 'auto' ? 'this device reports one processor' : 'one thread was requested' };
    threadPool ??= (async () => {
        const module = await import('./wasm-threads/m3dfel_wasm.js');
        await module.default();
        // Rayon's pool is global to the module and starts once: later loads share it.
        await module.initThreadPool(wanted);
        return { module, threads: module.threadCount() };
    })().catch((error) => {
        threadPool = null;
        return { threads: 1, reason: `the threaded module failed to start (${error.message})` };
    });
    return threadPool;
}

/** Errors from the module as M3dfelError; a trap (a bug) says so instead of "unreachable". */
function explain(error, context) {
    if (error instanceof M3dfelError || error?.name === 'AbortError') return error;
    const trapped = typeof WebAssembly !== 'undefined' && error instanceof WebAssembly.RuntimeError;
    const message = trapped
        ? `the model stopped with an internal error (${error.message}); load it again`
        : error?.message ?? String(error);
    return new M3dfelError(context ? `${context}: ${message}` : message, { cause: error });
}

/** Weights from a URL, string, Blob/File, ArrayBuffer or typed array, with byte progress. */
async function readWeights(weights, onProgress, signal, stallSeconds) {
    const report = (loaded, total) => onProgress?.({ phase: 'weights', loaded, total });
    if (weights instanceof ArrayBuffer) {
        report(weights.byteLength, weights.byteLength);
        return { name: 'weights (ArrayBuffer)', bytes: new Uint8Array(weights) };
    }
    if (ArrayBuffer.isView(weights)) {
        report(weights.byteLength, weights.byteLength);
        return { name: 'weights (bytes)', bytes: new Uint8Array(weights.buffer, weights.byteOffset, weights.byteLength) };
    }
    if (typeof Blob !== 'undefined' && weights instanceof Blob) {
        const name = weights.name || 'weights (Blob)';
        return { name, bytes: await readStream(weights.stream(), weights.size, report, name) };
    }
    if (typeof weights !== 'string' && !(weights instanceof URL)) {
        throw new M3dfelError('`weights` must be a URL, a File/Blob, an ArrayBuffer or a Uint8Array');
    }
    const url = String(weights);
    // A server that stops answering (before the headers or mid-file) fails the load after
    // stallSeconds without a byte, rather than leaving it pending for ever.
    const stalled = new M3dfelError(`could not download the weights from ${url}: nothing arrived for ${stallSeconds} s ` +
        '(the server does not answer); check the address and the connection, or allow longer with the stallSeconds option');
    const download = new AbortController();
    const cancel = () => download.abort(signal.reason);
    signal?.addEventListener('abort', cancel, { once: true });
    if (signal?.aborted) cancel();
    let timer;
    const waitForData = () => {
        clearTimeout(timer);
        timer = setTimeout(() => download.abort(stalled), stallSeconds * 1000);
    };
    waitForData();
    try {
        let response;
        try {
            response = await fetch(url, { signal: download.signal });
        } catch (error) {
            if (error === stalled || error?.name === 'AbortError' || error === signal?.reason) throw error;
            throw new M3dfelError(`could not download the weights from ${url}: ${error.message}`, { cause: error });
        }
        if (!response.ok) {
            throw new M3dfelError(`could not download the weights from ${url}: HTTP ${response.status} ${response.statusText}`.trim());
        }
        // Content-Length counts compressed bytes when the server compresses; then it is no total.
        const encoded = response.headers.get('content-encoding');
        const length = Number(response.headers.get('content-length'));
        const total = !encoded && length > 0 ? length : undefined;
        const progress = (loaded, all) => {
            waitForData();
            report(loaded, all);
        };
        return { name: url, bytes: await readStream(response.body, total, progress, url) };
    } catch (error) {
        throw download.signal.reason === stalled ? stalled : error;
    } finally {
        clearTimeout(timer);
        signal?.removeEventListener('abort', cancel);
    }
}

async function readStream(stream, total, report, name) {
    const chunks = [];
    let loaded = 0;
    report(0, total);
    try {
        for (const reader = stream.getReader(); ;) {
            const { done, value } = await reader.read();
            if (done) break;
            chunks.push(value);
            loaded += value.byteLength;
            report(loaded, total);
        }
    } catch (error) {
        if (error?.name === 'AbortError') throw error;
        throw new M3dfelError(`reading the weights from ${name} failed after ${loaded} bytes: ${error.message}`, { cause: error });
    }
    const bytes = new Uint8Array(loaded);
    let offset = 0;
    for (const chunk of chunks) {
        bytes.set(chunk, offset);
        offset += chunk.byteLength;
    }
    return bytes;
}

/** Whether this browser (or worker) can run WebGPU, and if not, why. */
export async function webgpuSupport() {
    const gpu = globalThis.navigator?.gpu;
    if (!gpu) return { available: false, reason: 'this browser has no WebGPU (navigator.gpu is missing)' };
    try {
        const adapter = await gpu.requestAdapter();
        if (!adapter) return { available: false, reason: 'WebGPU is present but offers no adapter (GPU blocked or disabled)' };
        const info = adapter.info ?? {};
        const name = [info.vendor, info.architecture, info.description].filter(Boolean).join(' ') || 'unnamed adapter';
        return { available: true, adapter: name, fallbackAdapter: Boolean(adapter.isFallbackAdapter ?? info.isFallbackAdapter) };
    } catch (error) {
        return { available: false, reason: `WebGPU failed to start: ${error.message}` };
    }
}

/**
 * Faces in one frame, best first: [{x, y, width, height, score}] in the frame's pixels
 * (face-api.js's Tiny Face Detector, run by the package's WebAssembly; the same detector,
 * input size and threshold as `m3dfel predict --video`).
 */
export async function detectFaces(frame, { wasm } = {}) {
    await loadWasm(wasm);
    const { rgba, width, height } = pixels(frame, undefined, 'the frame');
    try {
        return detectFacesIn(rgba, width, height);
    } catch (error) {
        throw explain(error);
    }
}

/** A 2D context of the given size (OffscreenCanvas where it exists, e.g. in workers). */
function context2d(width, height) {
    const canvas = typeof OffscreenCanvas !== 'undefined'
        ? new OffscreenCanvas(width, height)
        : Object.assign(document.createElement('canvas'), { width, height });
    return canvas.getContext('2d', { willReadFrequently: true });
}

function frameSize(frame) {
    const width = frame.displayWidth ?? frame.videoWidth ?? frame.naturalWidth ?? frame.width;
    const height = frame.displayHeight ?? frame.videoHeight ?? frame.naturalHeight ?? frame.height;
    return [width, height];
}

/**
 * RGBA pixels of one frame: ImageData (or any {data, width, height}), or anything a canvas
 * can draw (ImageBitmap, canvas, <img>, <video>, VideoFrame), optionally cropped to `crop`
 * ({x, y, width, height} in the frame's pixels).
 */
function pixels(frame, crop, position) {
    if (frame?.data && frame.width > 0 && frame.height > 0 && !crop) {
        return { rgba: frame.data, width: frame.width, height: frame.height };
    }
    let [width, height] = frameSize(frame ?? {});
    if (!(width > 0 && height > 0)) {
        throw new M3dfelError(`${position} is not an image (expected ImageData, ImageBitmap, a canvas, an <img>, a <video> or a VideoFrame)`);
    }
    let source = frame;
    if (frame.data) {
        // ImageData with a crop: draw it onto a canvas first.
        const full = context2d(width, height);
        full.putImageData(frame instanceof ImageData ? frame : new ImageData(new Uint8ClampedArray(frame.data), width, height), 0, 0);
        source = full.canvas;
    }
    const box = crop ? clampBox(crop, width, height) : { x: 0, y: 0, width, height };
    const context = context2d(box.width, box.height);
    context.drawImage(source, box.x, box.y, box.width, box.height, 0, 0, box.width, box.height);
    return { rgba: context.getImageData(0, 0, box.width, box.height).data, width: box.width, height: box.height };
}

/** A crop box rounded to whole pixels and kept inside the frame. */
function clampBox(box, width, height) {
    const x = Math.min(Math.max(0, Math.round(box.x)), width - 1);
    const y = Math.min(Math.max(0, Math.round(box.y)), height - 1);
    return {
        x,
        y,
        width: Math.max(1, Math.min(Math.round(box.width), width - x)),
        height: Math.max(1, Math.min(Math.round(box.height), height - y)),
    };
}

/** Where each part runs and why: what a model reports as backend, backendReason, placement, threads, adapter. */
function whereItRuns(engine, reason, pool, adapter) {
    const onCpu = engine.backend === 'cpu';
    return {
        backend: engine.backend,
        backendReason: onCpu ? `${reason}; ${pool.module ? `${pool.threads} threads` : `one thread: ${pool.reason}`}` : `${reason}; ${engine.placementReason}`,
        placement: Object.freeze(engine.placement),
        threads: pool.threads, // 1 on WebGPU: the pool starts with the CPU backend only
        adapter: onCpu ? undefined : adapter,
    };
}

/** A loaded model. Create with `await M3dfel.load(options)`. */
export class M3dfel {
    #engine;
    #faceClip;
    #queue = Promise.resolve();
    /** backend, backendReason, placement, threads, adapter: they change if WebGPU fails later. */
    #where;
    /** With backend 'auto' on WebGPU: starts the CPU engine that takes over when the GPU fails. */
    #cpuFallback;

    /** @private use M3dfel.load */
    constructor(engine, where, details, module, cpuFallback) {
        this.#engine = engine;
        this.#where = where;
        this.#cpuFallback = cpuFallback;
        // The threaded module's when the model runs on its pool: faceCrop's detection then
        // spreads the frames over the threads too.
        this.#faceClip = module?.faceClip ?? faceClip;
        Object.assign(this, details);
        Object.freeze(this);
    }

    /** 'webgpu' or 'cpu': where R3D-18 runs. */
    get backend() { return this.#where.backend; }
    /** Why the model runs where it does, for people. */
    get backendReason() { return this.#where.backendReason; }
    /** Where each part runs: {backbone, head, dmin} (see m3dfel.d.ts). */
    get placement() { return this.#where.placement; }
    /** Threads of the CPU backend (1 on WebGPU). */
    get threads() { return this.#where.threads; }
    /** The WebGPU adapter, when running on WebGPU. */
    get adapter() { return this.#where.adapter; }

    /**
     * Runs the clips on the engine. With backend 'auto', a failure the GPU reports (a lost
     * device, a kernel that does not run) moves the model to the CPU for good, with a
     * console warning and a new backendReason, and the clips run again there.
     */
    async #classify(tensor) {
        try {
            return await this.#engine.classify(tensor);
        } catch (error) {
            const fromGpu = this.#where.backend === 'webgpu' && /WebGPU reported an error/.test(error?.message ?? '');
            if (!fromGpu || !this.#cpuFallback) throw explain(error);
            const start = this.#cpuFallback;
            this.#cpuFallback = undefined;
            console.warn(`m3dfel: ${error.message}; continuing on the CPU`);
            const { engine, pool } = await start();
            try { this.#engine.free(); } catch { /* the lost device's engine may already be unusable */ }
            this.#engine = engine;
            this.#where = whereItRuns(engine, `WebGPU failed while classifying (${error.message}); running on the CPU`, pool);
            return this.#engine.classify(tensor).catch((cpuError) => { throw explain(cpuError); });
        }
    }

    /**
     * Loads the WebAssembly module and the weights, picks the backend, warms up.
     * backend: 'auto' (WebGPU when an adapter exists, otherwise or on any WebGPU failure
     * the CPU), 'webgpu' or 'cpu'. threads: how many threads the CPU backend uses, 'auto'
     * (one per processor, at most 16) or a number; more than one needs the model in a Web
     * Worker of a cross-origin isolated page, and falls back to one thread elsewhere.
     */
    static async load({ weights = DEMO_WEIGHTS, backend = 'auto', threads = 'auto', onProgress, wasm, signal, stallSeconds = 30, warmUp = true } = {}) {
        if (!['auto', 'webgpu', 'cpu'].includes(backend)) {
            throw new M3dfelError(`unknown backend "${backend}": use "auto", "webgpu" or "cpu"`);
        }
        if (threads !== 'auto' && !(Number.isInteger(threads) && threads >= 1)) {
            throw new M3dfelError(`threads must be 'auto' or a whole number from 1, got ${JSON.stringify(threads)}`);
        }
        if (!(typeof stallSeconds === 'number' && stallSeconds > 0)) {
            throw new M3dfelError(`stallSeconds must be a positive number of seconds, got ${JSON.stringify(stallSeconds)}`);
        }
        onProgress?.({ phase: 'wasm' });
        await loadWasm(wasm);
        const { name, bytes } = await readWeights(weights, onProgress, signal, stallSeconds);
        let pool = { threads: 1 };
        const start = async (choice, report = true) => {
            if (report) onProgress?.({ phase: 'backend', backend: choice });
            if (choice === 'cpu') pool = await startThreads(threads);
            const engine = await (pool.module?.Engine ?? Engine).load(name, bytes, choice).catch((error) => {
                throw explain(error, choice === 'webgpu' ? 'WebGPU' : undefined);
            });
            if (warmUp && report) {
                onProgress?.({ phase: 'warm-up', backend: choice });
                const size = engine.numFrames * 3 * engine.frameSize ** 2;
                await engine.classify(new Float32Array(size).fill(0.5)).catch((error) => {
                    engine.free();
                    throw explain(error, `warming up on ${choice}`);
                });
            }
            return engine;
        };
        let engine, reason, adapter;
        if (backend === 'cpu') {
            engine = await start('cpu');
            reason = 'the CPU was requested';
        } else {
            const support = await webgpuSupport();
            adapter = support.adapter;
            if (backend === 'webgpu') {
                if (!support.available) throw new M3dfelError(`WebGPU was requested but ${support.reason}`);
                engine = await start('webgpu');
                reason = `WebGPU was requested (adapter: ${support.adapter})`;
            } else if (!support.available) {
                engine = await start('cpu');
                reason = `${support.reason}; running on the CPU`;
            } else {
                try {
                    engine = await start('webgpu');
                    reason = `WebGPU adapter found: ${support.adapter}`;
                } catch (error) {
                    // The same weights fail on the CPU too when they are at fault; then the
                    // CPU's error is the one people see.
                    engine = await start('cpu');
                    reason = `WebGPU failed (${error.message}); running on the CPU`;
                }
            }
        }
        onProgress?.({ phase: 'ready', backend: engine.backend });
        const cpuFallback = backend === 'auto' && engine.backend === 'webgpu'
            ? async () => ({ engine: await start('cpu', false), pool })
            : undefined;
        return new M3dfel(engine, whereItRuns(engine, reason, pool, adapter), {
            preset: engine.preset,
            frameSize: engine.frameSize,
            numFrames: engine.numFrames,
            instanceLength: engine.instanceLength,
            parameters: engine.parameters,
            weights: name,
            weightBytes: bytes.byteLength,
            classes: CLASSES,
        }, pool.module, cpuFallback);
    }

    /** Runs calls one after another (the model is not re-entrant). */
    #serial(task) {
        const result = this.#queue.then(task);
        this.#queue = result.catch(() => {});
        return result;
    }

    /**
     * Turns a clip into the model's input: a Float32Array [frames, 3, size, size] is used
     * as is; otherwise `frames` is an array of numFrames images, each resized (bilinear,
     * like `m3dfel predict --frames`) after an optional `crop`, or, with `faceCrop`, after
     * cutting out the face found and tracked across the frames (like `m3dfel predict --video`).
     */
    toTensor(frames, options = {}) {
        return this.#prepare(frames, options).tensor;
    }

    #prepare(frames, { crop, faceCrop = false } = {}) {
        const { numFrames, frameSize } = this;
        const length = numFrames * 3 * frameSize * frameSize;
        if (frames instanceof Float32Array) {
            if (frames.length !== length) {
                throw new M3dfelError(
                    `a clip tensor must be ${numFrames} frames × 3 colours × ${frameSize} × ${frameSize} pixels = ${length} values, got ${frames.length}`);
            }
            if (faceCrop) throw new M3dfelError('faceCrop needs images, not a tensor');
            return { tensor: frames };
        }
        if (!frames || typeof frames.length !== 'number') {
            throw new M3dfelError(`a clip is an array of ${numFrames} frames or a Float32Array of ${length} values`);
        }
        if (frames.length !== numFrames) {
            throw new M3dfelError(`a clip needs exactly ${numFrames} frames, got ${frames.length}`);
        }
        const images = Array.from(frames, (frame, i) =>
            pixels(frame, faceCrop ? undefined : Array.isArray(crop) ? crop[i] : crop, `frame ${i + 1} of ${numFrames}`));
        if (faceCrop) {
            const { width, height } = images[0];
            const odd = images.findIndex((image) => image.width !== width || image.height !== height);
            if (odd >= 0) {
                throw new M3dfelError(`faceCrop needs frames of one size: frame 1 is ${width}×${height}, frame ${odd + 1} is ${images[odd].width}×${images[odd].height}`);
            }
            const rgba = new Uint8Array(numFrames * width * height * 4);
            images.forEach((image, i) => rgba.set(image.rgba, i * width * height * 4));
            try {
                const clip = this.#faceClip(rgba, width, height, numFrames, frameSize);
                const result = { tensor: clip.values, faces: clip.faces, crops: clip.crops, detectedFrames: clip.detected };
                clip.free();
                return result;
            } catch (error) {
                throw explain(error);
            }
        }
        const tensor = new Float32Array(length);
        const plane = 3 * frameSize * frameSize;
        images.forEach(({ rgba, width, height }, i) => {
            try {
                tensor.set(framePlanes(rgba, width, height, frameSize), i * plane);
            } catch (error) {
                throw explain(error, `frame ${i + 1} of ${numFrames}`);
            }
        });
        return { tensor };
    }

    /** Classifies one clip; resolves to a ClipResult (see m3dfel.d.ts). */
    async classifyClip(frames, options = {}) {
        const { tensor, faces, crops, detectedFrames } = this.#prepare(frames, options);
        return this.#serial(async () => {
            const [clip] = await this.#classify(tensor);
            return { classes: CLASSES, preset: this.preset, ...clip, ...(faces && { faces, crops, detectedFrames }) };
        });
    }

    /**
     * Classifies a whole video window by window. `source` is an HTMLVideoElement, or an
     * array / (async) iterable of {time, frame} in seconds. Each window takes numFrames
     * frames evenly spread over windowSeconds; windows start every strideSeconds and the
     * last one ends at the end of the video. `onWindow(window, {index, total})` sees each
     * result as soon as it is ready.
     */
    async classifyVideo(source, { windowSeconds = 2, strideSeconds = 1, onWindow, signal, crop, faceCrop = false } = {}) {
        if (!(windowSeconds > 0) || !(strideSeconds > 0)) {
            throw new M3dfelError('windowSeconds and strideSeconds must be positive numbers of seconds');
        }
        const frames = await frameSource(source);
        const spans = windowSpans(frames.duration, windowSeconds, strideSeconds);
        const windows = [];
        for (const [index, [start, end]] of spans.entries()) {
            if (signal?.aborted) throw signal.reason ?? new DOMException('classification aborted', 'AbortError');
            frames.forget?.(start);
            const timed = [];
            for (const time of windowTimes(start, end, this.numFrames)) timed.push({ time, frame: await frames.at(time) });
            const window = await this.classifyWindow(timed, { index, end, faceCrop, crop: typeof crop === 'function' ? timed.map(({ time }) => crop(time)) : crop });
            windows.push(window);
            onWindow?.(window, { index, total: spans.length });
        }
        return { classes: CLASSES, preset: this.preset, duration: frames.duration, windows };
    }

    /**
     * Classifies one window of numFrames frames taken at known times, e.g. the latest
     * frames of a live camera: `frames` is [{time, frame}] in time order. The window runs
     * from the first frame's time to `end` (default: one frame step after the last).
     */
    async classifyWindow(frames, { index = 0, end, ...options } = {}) {
        if (!Array.isArray(frames) || frames.some((item) => !(Number.isFinite(item?.time) && item.frame))) {
            throw new M3dfelError('classifyWindow needs an array of {time, frame} (time in seconds)');
        }
        const times = frames.map(({ time }) => time);
        const step = times.length > 1 ? (times.at(-1) - times[0]) / (times.length - 1) : 0;
        const clip = await this.classifyClip(frames.map(({ frame }) => frame), options);
        return withTimes(clip, index, times[0], end ?? times.at(-1) + step, times);
    }

    /** Frees the model's memory; the object cannot be used afterwards. */
    dispose() {
        this.#engine.free();
    }
}

/** Window [start, end] spans covering [0, duration]. */
export function windowSpans(duration, windowSeconds, strideSeconds) {
    if (!(duration > 0)) return [[0, 0]];
    if (duration <= windowSeconds) return [[0, duration]];
    const spans = [];
    let start = 0;
    for (; start + windowSeconds <= duration + 1e-9; start += strideSeconds) spans.push([start, start + windowSeconds]);
    if (spans.at(-1)[1] < duration - 1e-9) spans.push([duration - windowSeconds, duration]);
    return spans;
}

/** numFrames frame times evenly spread over [start, end): where classifyVideo samples a window. */
export function windowTimes(start, end, numFrames) {
    return Array.from({ length: numFrames }, (_, i) => start + ((end - start) * i) / numFrames);
}

/** A clip result placed in time: the window's span and each instance's own span. */
function withTimes(clip, index, start, end, times) {
    const instances = clip.instances.map((instance) => {
        const [first, last] = instance.frames;
        return { ...instance, start: times[first], end: last + 1 < times.length ? times[last + 1] : end };
    });
    return { index, start, end, frameTimes: times, ...clip, instances };
}

/** A uniform view of the frame sources: duration and the frame shown at a time. */
async function frameSource(source) {
    if (typeof HTMLVideoElement !== 'undefined' && source instanceof HTMLVideoElement) return videoReader(source);
    const list = [];
    if (source?.[Symbol.asyncIterator] || source?.[Symbol.iterator]) {
        for await (const item of source) list.push(item);
    } else {
        throw new M3dfelError('classifyVideo needs a <video> element or a list of {time, frame} (time in seconds)');
    }
    if (list.length === 0) throw new M3dfelError('the video has no frames');
    if (list.some((item) => !(Number.isFinite(item?.time) && item.frame))) {
        throw new M3dfelError('every item of the frame list needs a `time` (seconds) and a `frame` (an image)');
    }
    list.sort((a, b) => a.time - b.time);
    const step = list.length > 1 ? (list.at(-1).time - list[0].time) / (list.length - 1) : 0;
    return {
        duration: list.at(-1).time + step,
        // The frame on screen at `time`: the last one that started at or before it.
        at: async (time) => {
            let lo = 0;
            for (let hi = list.length - 1; lo < hi;) {
                const mid = (lo + hi + 1) >> 1;
                if (list[mid].time <= time + 1e-9) lo = mid; else hi = mid - 1;
            }
            return list[lo].frame;
        },
    };
}

function once(target, event, what) {
    return new Promise((resolve, reject) => {
        const done = () => { target.removeEventListener('error', failed); resolve(); };
        const failed = () => {
            target.removeEventListener(event, done);
            const code = target.error?.code;
            const message = code === 4 ? 'the format is not supported by this browser' : target.error?.message || 'it cannot be decoded';
            reject(new M3dfelError(`${what}: ${message}`));
        };
        target.addEventListener(event, done, { once: true });
        target.addEventListener('error', failed, { once: true });
    });
}

/**
 * Frames of a <video> by seeking: `{duration, at(time) → ImageData, forget(before)}`.
 * A duration the file does not state (MediaRecorder's webm) is found by seeking to the end.
 * `maxSide` scales frames down so that neither side exceeds it (default: full size).
 * The same times give the same pictures: a seek whose picture equals the previous one's is
 * watched for up to 150 ms in case the browser has not shown the sought frame yet.
 */
export async function videoReader(video, { maxSide = Infinity } = {}) {
    const name = video.currentSrc || 'the video';
    if (video.error) throw new M3dfelError(`${name} cannot be played: ${video.error.message || 'unsupported or corrupt'}`);
    if (video.readyState < 1) await once(video, 'loadedmetadata', `${name} cannot be opened`);
    video.pause();
    if (!Number.isFinite(video.duration)) {
        const known = once(video, 'durationchange', `${name} has no known duration`);
        video.currentTime = 1e9;
        await known;
    }
    if (!(video.videoWidth > 0)) throw new M3dfelError(`${name} has no video track`);
    const cache = new Map();
    const scale = Math.min(1, maxSide / Math.max(video.videoWidth, video.videoHeight));
    const width = Math.max(1, Math.round(video.videoWidth * scale));
    const height = Math.max(1, Math.round(video.videoHeight * scale));
    const context = context2d(width, height);
    const picture = () => {
        context.drawImage(video, 0, 0, width, height);
        return context.getImageData(0, 0, width, height);
    };
    let previous = null;
    return {
        duration: video.duration,
        // Windows run forward in time: frames before the current window are not needed again.
        forget: (before) => {
            for (const key of cache.keys()) if (key < Math.round(before * 1000)) cache.delete(key);
        },
        at: async (time) => {
            const key = Math.round(time * 1000);
            if (!cache.has(key)) {
                const seeked = once(video, 'seeked', `seeking ${name} to ${time.toFixed(2)} s failed`);
                video.currentTime = Math.min(time, Math.max(0, video.duration - 1e-3));
                await seeked;
                let image = picture();
                // Chromium can fire 'seeked' before the frame sought reaches the element, which
                // then still draws the previous seek's picture (measured: 8 of ~2,000 seeks in the
                // page tests while the model ran, each replaced within 11 ms). A picture equal to
                // the previous one is drawn again until it changes, for at most STALE_WAIT_MS
                // (after which it is a frame lasting longer than the step between the times).
                for (const until = performance.now() + STALE_WAIT_MS; previous && samePixels(image, previous) && performance.now() < until;) {
                    await new Promise((resolve) => setTimeout(resolve, 5));
                    image = picture();
                }
                previous = image;
                cache.set(key, image);
            }
            return cache.get(key);
        },
    };
}

/** How long a seek's picture that equals the previous seek's is watched for a change. */
const STALE_WAIT_MS = 150;

function samePixels(a, b) {
    if (a.data.length !== b.data.length) return false;
    const [x, y] = [new Uint32Array(a.data.buffer), new Uint32Array(b.data.buffer)];
    for (let i = 0; i < x.length; i++) if (x[i] !== y[i]) return false;
    return true;
}
