// The model's thread: the m3dfel package runs here so that the page never freezes.
// Messages in:  {id, type: 'load', weights, backend}   weights: URL string, File or ArrayBuffer
//               {id, type: 'window', frames: [{time, frame: ImageData}], index, end, faceCrop}
// Messages out: {type: 'progress', progress}  (while loading)
//               window replies: {window, milliseconds, where: {backend, backendReason, placement, …}}
//               {id, ok: true, value} | {id, ok: false, error}
import { DEMO_WEIGHTS, M3dfel } from './m3dfel/m3dfel.js';

let model = null;

/** What the page shows of where the model runs (it can change: WebGPU failing mid-run). */
function whereItRuns() {
    const { backend, backendReason, placement, adapter, threads } = model;
    return { backend, backendReason, placement: { ...placement }, adapter, threads };
}

const handlers = {
    async load({ weights, backend }) {
        model?.dispose();
        model = null;
        const loaded = await M3dfel.load({
            weights: weights ?? DEMO_WEIGHTS,
            backend,
            onProgress: (progress) => postMessage({ type: 'progress', progress }),
        });
        model = loaded;
        const { preset, frameSize, numFrames, instanceLength, parameters, weightBytes } = model;
        return {
            ...whereItRuns(), preset, frameSize, numFrames, instanceLength,
            parameters, weightBytes, weights: model.weights, demo: weights === undefined,
        };
    },

    async window({ frames, index, end, faceCrop }) {
        if (!model) throw new Error('no model is loaded');
        const started = performance.now();
        const window = await model.classifyWindow(frames, { index, end, faceCrop });
        // Where it ran: the package moves an 'auto' model to the CPU if WebGPU fails.
        return { window, milliseconds: performance.now() - started, where: whereItRuns() };
    },
};

onmessage = async ({ data: { id, type, ...request } }) => {
    try {
        postMessage({ id, ok: true, value: await handlers[type](request) });
    } catch (error) {
        postMessage({ id, ok: false, error: error?.message ?? String(error) });
    }
};
