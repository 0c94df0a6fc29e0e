// The page's side of the model worker (worker.js): each request is a promise.
export class ModelWorker {
    #worker = new Worker(new URL('./worker.js', import.meta.url), { type: 'module' });
    #pending = new Map();
    #next = 0;

    /** `onProgress(progress)` sees the package's loading phases. */
    constructor(onProgress) {
        this.#worker.onmessage = ({ data }) => {
            if (data.type === 'progress') {
                onProgress(data.progress);
                return;
            }
            const request = this.#pending.get(data.id);
            this.#pending.delete(data.id);
            if (data.ok) request.resolve(data.value);
            else request.reject(new Error(data.error));
        };
        this.#worker.onerror = (event) => {
            const error = new Error(`the model's worker failed: ${event.message || 'it could not start'}`);
            for (const request of this.#pending.values()) request.reject(error);
            this.#pending.clear();
        };
    }

    #call(type, request) {
        const id = this.#next++;
        return new Promise((resolve, reject) => {
            this.#pending.set(id, { resolve, reject });
            this.#worker.postMessage({ id, type, ...request });
        });
    }

    /** Loads weights (URL, File or undefined for the demo weights) on 'auto' | 'webgpu' | 'cpu'. */
    load(weights, backend) {
        return this.#call('load', { weights, backend });
    }

    /** Classifies 16 frames [{time, frame: ImageData}] → {window, milliseconds}. */
    classifyWindow(frames, { index, end, faceCrop }) {
        return this.#call('window', { frames, index, end, faceCrop });
    }
}
