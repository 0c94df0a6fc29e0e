// Types of the m3dfel browser package. Field names are those of `m3dfel predict --json`.

/** The seven classes, in the order of every `probabilities` and `logits` array. */
export declare const CLASSES: readonly ['happy', 'sad', 'neutral', 'angry', 'surprise', 'disgust', 'fear'];
export type ClassName = (typeof CLASSES)[number];

/** URL of the demo weights shipped with the package (`tiny` preset, synthetic faces). */
export declare const DEMO_WEIGHTS: string;

/** Every error the package throws; `message` says what went wrong and what to do. */
export declare class M3dfelError extends Error {
    name: 'M3dfelError';
}

export type Backend = 'webgpu' | 'cpu';

export interface LoadProgress {
    phase: 'wasm' | 'weights' | 'backend' | 'warm-up' | 'ready';
    /** Bytes of weights read so far ('weights'). */
    loaded?: number;
    /** Size of the weights in bytes when the server states it ('weights'). */
    total?: number;
    /** The backend being started ('backend', 'warm-up', 'ready'). */
    backend?: Backend;
}

export interface LoadOptions {
    /** The project's .safetensors weights (f32 or f16): URL, File/Blob or bytes. Default: DEMO_WEIGHTS. */
    weights?: string | URL | Blob | ArrayBuffer | ArrayBufferView;
    /** 'auto' (default): WebGPU when an adapter exists, otherwise or on any WebGPU failure the CPU. */
    backend?: 'auto' | Backend;
    /**
     * Threads of the CPU backend: 'auto' (default: one per processor, at most 16) or a
     * number. More than one runs the threaded module (./wasm-threads/) on a pool of Web
     * Workers and needs the model in a Web Worker of a cross-origin isolated page (COOP
     * `same-origin` + COEP `require-corp`); elsewhere the CPU backend uses one thread.
     */
    threads?: 'auto' | number;
    onProgress?: (progress: LoadProgress) => void;
    /** Where the .wasm comes from, when not next to this file (e.g. its bytes in Node). */
    wasm?: string | URL | ArrayBuffer | ArrayBufferView | WebAssembly.Module | Response;
    /** Cancels the weights download. */
    signal?: AbortSignal;
    /**
     * Seconds without a byte of the weights arriving (before the server answers or in the
     * middle of the file) after which loading fails with a message. Default 30.
     */
    stallSeconds?: number;
    /** Run one clip right after loading so that the first real answer is fast. Default true. */
    warmUp?: boolean;
}

/** One 3D instance (a run of consecutive frames) of a clip. */
export interface InstanceResult {
    /** Position in the bag, 0-based. */
    index: number;
    /** First and last of the clip's sampled frames (inclusive, 0-based). */
    frames: [number, number];
    logits: number[];
    probabilities: number[];
    /** Mean activation of the instance's sigmoid gate (how much DLIAM lets it through). */
    gate: number;
}

/** The prediction for one clip. */
export interface ClipResult {
    classes: readonly ClassName[];
    /** Preset of the weights ('paper', 'small', 'tiny'). */
    preset: string;
    logits: number[];
    /** Softmax of `logits`; sums to 1. */
    probabilities: number[];
    /** Name of the most probable class. */
    prediction: ClassName;
    instances: InstanceResult[];
    /** With `faceCrop`: the best face found in each frame (null where none). */
    faces?: (Face | null)[];
    /** With `faceCrop`: the square each frame was cropped to. */
    crops?: Crop[];
    /**
     * With `faceCrop`: how many frames the face detector ran on; the others' detections were
     * remembered from earlier calls (the module remembers the last 64 frames, by their pixels).
     */
    detectedFrames?: number;
}

/** An instance placed in time (seconds). */
export interface TimedInstance extends InstanceResult {
    start: number;
    end: number;
}

/** One window of a video: a clip result with its time span. */
export interface WindowResult extends Omit<ClipResult, 'instances'> {
    index: number;
    start: number;
    end: number;
    /** When each of the clip's frames was taken from the video. */
    frameTimes: number[];
    instances: TimedInstance[];
}

export interface VideoResult {
    classes: readonly ClassName[];
    preset: string;
    duration: number;
    windows: WindowResult[];
}

/** A crop rectangle in the frame's pixels (e.g. a face box). */
export interface Box {
    x: number;
    y: number;
    width: number;
    height: number;
}

/** Anything with RGBA pixels: ImageData or a plain {data, width, height}. */
export interface Pixels {
    data: Uint8ClampedArray | Uint8Array;
    width: number;
    height: number;
}

export type Frame = Pixels | ImageData | ImageBitmap | HTMLCanvasElement | OffscreenCanvas | HTMLImageElement | HTMLVideoElement | VideoFrame;

export interface ClipOptions {
    /** Crop every frame to this box, or frame i to box i, before resizing. */
    crop?: Box | Box[];
    /** Find the face in every frame, track it and cut out a square around it (frames of one size). */
    faceCrop?: boolean;
}

/** A detected face, in the frame's pixels. */
export interface Face extends Box {
    /** Detector confidence, 0.5–1. */
    score: number;
}

/** The square a frame was cropped to. */
export interface Crop {
    x: number;
    y: number;
    size: number;
}

/** Faces in one frame, best first (the detector `m3dfel predict --video` uses). */
export declare function detectFaces(frame: Frame, options?: { wasm?: LoadOptions['wasm'] }): Promise<Face[]>;

export interface VideoOptions {
    /** Length of each window in seconds (default 2). */
    windowSeconds?: number;
    /** Time between window starts in seconds (default 1). */
    strideSeconds?: number;
    /** Sees each window as soon as it is classified. */
    onWindow?: (window: WindowResult, position: { index: number; total: number }) => void;
    signal?: AbortSignal;
    /** A fixed crop box, or one per frame time (seconds). */
    crop?: Box | ((time: number) => Box);
    /** Find, track and crop the face in each window (see ClipOptions). */
    faceCrop?: boolean;
}

export interface WebGpuSupport {
    available: boolean;
    /** Why not, when not available. */
    reason?: string;
    /** Vendor and architecture of the adapter. */
    adapter?: string;
    fallbackAdapter?: boolean;
}

/** Whether WebGPU can run here (page or worker), and if not, why. */
export declare function webgpuSupport(): Promise<WebGpuSupport>;

/** The numFrames frame times (seconds) classifyVideo samples in the window [start, end). */
export declare function windowTimes(start: number, end: number, numFrames: number): number[];
export interface VideoReader {
    /** Length of the video in seconds. */
    duration: number;
    /** The frame shown at `time` seconds (seeks the element). */
    at(time: number): Promise<ImageData>;
    /** Drops cached frames before `before` seconds. */
    forget(before: number): void;
}
/** Frames of a <video> by seeking (the element is paused); `maxSide` scales frames down. */
export declare function videoReader(video: HTMLVideoElement, options?: { maxSide?: number }): Promise<VideoReader>;
/** The [start, end] spans (seconds) of the windows classifyVideo uses for a duration. */
export declare function windowSpans(duration: number, windowSeconds: number, strideSeconds: number): [number, number][];

/** Where each part of the model runs. */
export interface Placement {
    /** R3D-18, the 3D CNN that embeds each instance. */
    readonly backbone: Backend;
    /**
     * DLIAM (BiLSTM, attention, DMIN, gate, Conv1d) and the classifier: on WebGPU when, at
     * load, they gave the CPU's results (within 1e-4) on a probe clip on this GPU.
     */
    readonly head: Backend;
    /** DMIN + gate: the package's WGSL kernel, the CPU, or none (a model without DMIN). */
    readonly dmin: 'wgsl' | 'cpu' | 'none';
}

export declare class M3dfel {
    private constructor();
    static load(options?: LoadOptions): Promise<M3dfel>;
    /**
     * Where the model runs. With backend 'auto', an error WebGPU reports while classifying
     * (a lost device, a kernel that does not run) moves the model to the CPU for good: the
     * call still resolves, and backend, backendReason and placement say so afterwards.
     */
    readonly backend: Backend;
    /**
     * Why this backend was chosen (and, on the CPU, why this many threads; on WebGPU, where
     * DLIAM runs and why), for people.
     */
    readonly backendReason: string;
    /** Where each part runs, e.g. `{backbone: 'webgpu', head: 'webgpu', dmin: 'wgsl'}`. */
    readonly placement: Placement;
    /** Threads the CPU backend runs on (1 on WebGPU, whose small CPU part is single-threaded). */
    readonly threads: number;
    /** The WebGPU adapter, when running on WebGPU. */
    readonly adapter?: string;
    readonly preset: string;
    /** Side of the square frames the model takes, in pixels. */
    readonly frameSize: number;
    /** Frames per clip (16). */
    readonly numFrames: number;
    /** Frames per 3D instance. */
    readonly instanceLength: number;
    readonly parameters: number;
    /** Where the weights came from (URL or file name). */
    readonly weights: string;
    readonly weightBytes: number;
    readonly classes: readonly ClassName[];
    /** The model input for a clip: Float32Array [numFrames, 3, frameSize, frameSize], values in 0..1. */
    toTensor(frames: ArrayLike<Frame> | Float32Array, options?: ClipOptions): Float32Array;
    /** Classifies numFrames frames, or a Float32Array [numFrames, 3, frameSize, frameSize] in 0..1. */
    classifyClip(frames: ArrayLike<Frame> | Float32Array, options?: ClipOptions): Promise<ClipResult>;
    /** Classifies a whole video window by window. */
    classifyVideo(
        source: HTMLVideoElement | Iterable<{ time: number; frame: Frame }> | AsyncIterable<{ time: number; frame: Frame }>,
        options?: VideoOptions,
    ): Promise<VideoResult>;
    /**
     * Classifies one window of numFrames frames taken at known times (e.g. the latest frames
     * of a live camera), in time order. The window ends at `end` (default: one frame step
     * after the last frame); `index` is copied into the result.
     */
    classifyWindow(
        frames: { time: number; frame: Frame }[],
        options?: ClipOptions & { index?: number; end?: number },
    ): Promise<WindowResult>;
    /** Frees the model's memory. */
    dispose(): void;
}
