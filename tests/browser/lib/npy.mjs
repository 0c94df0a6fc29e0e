// Float32 .npy files (NumPy format 1.0), as `m3dfel predict --tensor` reads them.
import { writeFileSync } from 'node:fs';

export function writeNpy(path, values, shape) {
    let header = `{'descr': '<f4', 'fortran_order': False, 'shape': (${shape.length === 1 ? `${shape[0]},` : shape.join(', ')}), }`;
    header += ' '.repeat(63 - ((10 + header.length) % 64)) + '\n';
    const prefix = Buffer.alloc(10);
    Buffer.from('\x93NUMPY', 'latin1').copy(prefix);
    prefix[6] = 1;
    prefix.writeUInt16LE(header.length, 8);
    writeFileSync(path, Buffer.concat([prefix, Buffer.from(header, 'latin1'), Buffer.from(values.buffer, values.byteOffset, values.byteLength)]));
}

/** Reproducible values in [0, 1): smooth moving blobs plus a little noise. */
export function syntheticClip([frames, channels, height, width], seed = 1) {
    let state = seed >>> 0;
    const random = () => ((state = (Math.imul(state, 1664525) + 1013904223) >>> 0) / 2 ** 32);
    const values = new Float32Array(frames * channels * height * width);
    let i = 0;
    for (let f = 0; f < frames; f++) {
        for (let c = 0; c < channels; c++) {
            for (let y = 0; y < height; y++) {
                for (let x = 0; x < width; x++) {
                    const wave = Math.sin((x + 2 * f) / (3 + c)) * Math.cos((y - f) / 4);
                    values[i++] = Math.min(0.999, Math.max(0, 0.5 + 0.35 * wave + 0.1 * (random() - 0.5)));
                }
            }
        }
    }
    return values;
}
