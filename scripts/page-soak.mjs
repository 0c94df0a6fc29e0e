// The demo page left running on a webcam: classifies the fake camera (the trainer's synthetic
// faces) for MINUTES on each backend and samples, every SAMPLE seconds, the windows done, the
// page's JavaScript heap, its element count and the resident memory of all
// Chromium processes (GPU buffers included: SwiftShader's WebGPU lives in the GPU process).
// Memory must level off (the live timeline keeps its last 1,000 windows) and the window rate
// must not decay. Not run by CI (it takes MINUTES × backends); figures go to BENCHMARKS.md.
//
//   bash scripts/build-web.sh && cargo build --release -p trainer
//   cd tests/browser && npm ci && cd ../.. && node scripts/page-soak.mjs [MINUTES=10] [BACKENDS=webgpu,cpu] [SAMPLE=60]
//
// Prints one line per sample and a JSON summary (minute 1 vs the last minute) at the end.
import { execFileSync } from 'node:child_process';
import { mkdtempSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';

import { CHROMIUM, launch } from '../tests/browser/lib/chromium.mjs';
import { encodeFaces, syntheticFaceClips } from '../tests/browser/lib/faces.mjs';
import { SITE, TRAINER } from '../tests/browser/lib/paths.mjs';
import { serve } from './serve.mjs';

const minutes = Number(process.argv[2] ?? 10);
const backends = (process.argv[3] ?? 'webgpu,cpu').split(',');
const sampleSeconds = Number(process.argv[4] ?? 60);
if (!(minutes > 0 && sampleSeconds > 0) || backends.some((b) => !['webgpu', 'cpu'].includes(b))) {
    console.error('usage: node scripts/page-soak.mjs [MINUTES > 0] [webgpu,cpu] [SAMPLE SECONDS > 0]');
    process.exit(2);
}

/** Resident memory of every process started from Chromium's executable, in MB. */
function chromiumResidentMb() {
    const table = execFileSync('ps', ['-eo', 'rss=,args='], { encoding: 'utf8' });
    const kb = table.split('\n').filter((line) => line.includes(CHROMIUM)).reduce((sum, line) => sum + Number(line.trim().split(/\s+/)[0] || 0), 0);
    return kb / 1024;
}

const dir = mkdtempSync(join(tmpdir(), 'm3dfel-soak-'));
const camera = encodeFaces(syntheticFaceClips(TRAINER, { clips: 1 }), join(dir, 'camera.y4m'),
    { fps: 10, pad: '400:300:100:50:0x556644', codec: ['-f', 'yuv4mpegpipe'] });
const server = await serve(SITE);
const summary = {};
try {
    for (const backend of backends) {
        const browser = await launch({
            webgpu: backend === 'webgpu',
            args: ['--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream', `--use-file-for-fake-video-capture=${camera}`,
                '--enable-precise-memory-info'],
        });
        try {
            const page = await browser.newPage();
            const errors = [];
            page.on('pageerror', (error) => errors.push(error.message));
            await page.goto(`${server.url}/?backend=${backend}`);
            await page.waitForFunction(() => ['ready', 'error'].includes(window.m3dfelDemo?.state), null, { timeout: 300_000 });
            await page.click('#webcam-start');
            await page.waitForFunction(() => window.m3dfelDemo.timeline.length > 0 || window.m3dfelDemo.state === 'error', null, { timeout: 300_000 });
            const samples = [];
            const started = Date.now();
            let before = await page.evaluate(() => window.m3dfelDemo.timeline.at(-1).index);
            while (Date.now() - started < minutes * 60_000) {
                await new Promise((resolve) => setTimeout(resolve, sampleSeconds * 1000));
                const s = await page.evaluate(() => ({
                    state: window.m3dfelDemo.state,
                    windows: window.m3dfelDemo.timeline.at(-1)?.index ?? -1,
                    kept: window.m3dfelDemo.timeline.length,
                    heapMb: performance.memory.usedJSHeapSize / 2 ** 20,
                    elements: document.getElementsByTagName('*').length,
                }));
                const sample = {
                    minute: +((Date.now() - started) / 60_000).toFixed(2),
                    windowsPerMinute: +((s.windows - before) * (60 / sampleSeconds)).toFixed(1),
                    windows: s.windows + 1,
                    kept: s.kept,
                    heapMb: +s.heapMb.toFixed(1),
                    elements: s.elements,
                    chromiumMb: +chromiumResidentMb().toFixed(0),
                    state: s.state,
                };
                before = s.windows;
                samples.push(sample);
                console.log(`${backend}: ${JSON.stringify(sample)}`);
                if (s.state === 'error') throw new Error(`${backend}: the page stopped with an error`);
            }
            const first = samples[0];
            const last = samples.at(-1);
            summary[backend] = { first, last, pageErrors: errors };
        } finally {
            await browser.close();
        }
    }
} finally {
    server.close();
}
console.log(JSON.stringify(summary, null, 2));
