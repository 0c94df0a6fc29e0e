// Headless Chromium from Debian (never a downloaded browser), with or without WebGPU.
// --enable-unsafe-webgpu gives SwiftShader's CPU WebGPU adapter on machines without a GPU.
import { chromium } from 'playwright-core';

export const CHROMIUM = process.env.M3DFEL_CHROMIUM ?? '/usr/lib/chromium/chromium';

export function launch({ webgpu = true, args = [] } = {}) {
    return chromium.launch({
        executablePath: CHROMIUM,
        args: [
            ...(webgpu ? ['--enable-unsafe-webgpu'] : []),
            '--no-sandbox', '--disable-dev-shm-usage', '--disable-quic', '--no-first-run',
            '--disable-background-networking', '--disable-component-update', '--disable-sync',
            '--disable-default-apps', ...args,
        ],
    });
}

/**
 * A page whose console errors and uncaught exceptions are collected (and printed), and every
 * request it makes from before it starts loading (scripts, styles, fonts included).
 */
export async function openPage(browser, url, { viewport = { width: 1280, height: 800 } } = {}) {
    const page = await browser.newPage({ viewport });
    const problems = [];
    const requests = [];
    page.on('request', (request) => requests.push(request.url()));
    page.on('pageerror', (error) => problems.push(`uncaught: ${error.message}`));
    page.on('console', (message) => {
        if (message.type() === 'error') problems.push(`console: ${message.text()}`);
    });
    await page.goto(url);
    return { page, problems, requests };
}
