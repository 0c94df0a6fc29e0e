// Test media with faces in them: the trainer's synthetic faces (`trainer synth`) placed on a
// plain background and encoded by FFmpeg, so that the face detector has something to find.
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, readdirSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

/** Folders of JPEG frames, one per synthetic clip (36 frames each, `size` px square). */
export function syntheticFaceClips(trainer, { clips = 5, size = 224 } = {}) {
    const out = mkdtempSync(join(tmpdir(), 'm3dfel-faces-'));
    execFileSync(trainer, ['synth', '--out', out, '--clips', String(clips), '--frame-size', String(size)], { stdio: 'pipe' });
    const root = join(out, 'Clip/clip_224x224'); // DFEW's folder name, whatever the size
    return readdirSync(root).sort().map((name) => join(root, name));
}

/**
 * The frames of `clips`, one clip after another at `fps`, padded into a larger picture
 * (`pad`: FFmpeg's pad filter, WIDTH:HEIGHT:X:Y:COLOUR), encoded with FFmpeg's `codec`
 * arguments into `output`.
 */
export function encodeFaces(clips, output, { fps = 15, pad = '400:300:120:40:0x445566', codec }) {
    const jpegs = clips.flatMap((dir) => readdirSync(dir).sort().map((name) => readFileSync(join(dir, name))));
    execFileSync('ffmpeg', ['-v', 'error', '-y', '-f', 'image2pipe', '-framerate', String(fps), '-c:v', 'mjpeg', '-i', '-',
        '-vf', `pad=${pad},format=yuv420p`, ...codec, output], { input: Buffer.concat(jpegs), stdio: ['pipe', 'pipe', 'pipe'] });
    return output;
}
