// The file source: a video the person chose or dropped, opened in the preview's <video>
// element and cut into the package's windows (frames by seeking).
import { videoReader, windowSpans, windowTimes } from './m3dfel/m3dfel.js';

/** Opens `file` in `video`; rejects with a message naming the file when it cannot be played. */
export async function openVideo(file, video) {
    if (video.src.startsWith('blob:')) URL.revokeObjectURL(video.src);
    video.srcObject = null;
    video.src = URL.createObjectURL(file);
    await new Promise((resolve, reject) => {
        video.onloadedmetadata = resolve;
        video.onerror = () => {
            const unsupported = video.error?.code === 4;
            reject(new Error(`“${file.name}” cannot be played by this browser: ${unsupported
                ? 'the file is not a video, is damaged, or uses a format this browser does not decode'
                : video.error?.message || 'it is damaged'}. Try an MP4 (H.264) or WebM (VP8/VP9) file.`));
        };
    });
    video.onerror = null;
    if (!(video.videoWidth > 0)) throw new Error(`“${file.name}” has no picture (audio only?)`);
}

/**
 * The video's windows, each as {index, end, total, duration, frames: [{time, frame: ImageData}]}.
 * The page asks for the next one while the model works on the current one.
 */
export async function* videoWindows(video, { windowSeconds, strideSeconds, numFrames, maxSide }) {
    const reader = await videoReader(video, { maxSide });
    const spans = windowSpans(reader.duration, windowSeconds, strideSeconds);
    for (const [index, [start, end]] of spans.entries()) {
        reader.forget(start);
        const frames = [];
        for (const time of windowTimes(start, end, numFrames)) frames.push({ time, frame: await reader.at(time) });
        yield { index, end, frames, total: spans.length, duration: reader.duration };
    }
}
