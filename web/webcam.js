// The live source: the camera shown in the preview, sampled at the rate of the model's
// windows (16 frames per `windowSeconds`), keeping the latest 16 frames.
export class Webcam {
    #video;
    #stream = null;
    #timer = null;
    #frames = [];
    #started = 0;
    #context = null;

    constructor(video, { numFrames, windowSeconds, maxSide }) {
        Object.assign(this, { numFrames, windowSeconds, maxSide });
        this.#video = video;
    }

    /** Asks for the camera and starts sampling; rejects with a message for people. */
    async start() {
        if (!navigator.mediaDevices?.getUserMedia) {
            throw new Error('The webcam cannot be used here: this browser offers cameras only to pages opened over https or from localhost.');
        }
        try {
            this.#stream = await navigator.mediaDevices.getUserMedia({ video: { width: { ideal: 640 }, height: { ideal: 480 } }, audio: false });
        } catch (error) {
            const reasons = {
                NotAllowedError: 'the browser did not allow it: allow the camera for this page and try again',
                NotFoundError: 'no camera was found',
                NotReadableError: 'the camera is in use by another program',
            };
            throw new Error(`The webcam could not start: ${reasons[error.name] ?? error.message}.`);
        }
        this.#video.srcObject = this.#stream;
        this.#video.controls = false;
        await this.#video.play();
        this.#frames = [];
        this.#started = performance.now();
        this.#timer = setInterval(() => this.#sample(), (1000 * this.windowSeconds) / this.numFrames);
    }

    get running() {
        return this.#stream !== null;
    }

    #sample() {
        const { videoWidth, videoHeight } = this.#video;
        if (!(videoWidth > 0)) return;
        const scale = Math.min(1, this.maxSide / Math.max(videoWidth, videoHeight));
        const width = Math.round(videoWidth * scale);
        const height = Math.round(videoHeight * scale);
        if (this.#context?.canvas.width !== width || this.#context?.canvas.height !== height) {
            this.#context = new OffscreenCanvas(width, height).getContext('2d', { willReadFrequently: true });
        }
        this.#context.drawImage(this.#video, 0, 0, width, height);
        const time = (performance.now() - this.#started) / 1000;
        this.#frames.push({ time, frame: this.#context.getImageData(0, 0, width, height) });
        if (this.#frames.length > this.numFrames) this.#frames.shift();
    }

    /** The latest numFrames frames [{time, frame}] (null until there are enough). */
    latest() {
        return this.#frames.length === this.numFrames ? [...this.#frames] : null;
    }

    stop() {
        clearInterval(this.#timer);
        for (const track of this.#stream?.getTracks() ?? []) track.stop();
        this.#stream = null;
        this.#video.srcObject = null;
    }
}
