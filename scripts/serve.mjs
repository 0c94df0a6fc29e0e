// A static file server with HTTP Range support (video seeking needs it) and the isolation
// headers that enable SharedArrayBuffer; it logs every request so tests can check that
// nothing else was fetched. Node only, no packages.
//   node scripts/serve.mjs FOLDER [PORT]     serves FOLDER on http://127.0.0.1:PORT (default 8080)
//   import { serve } from './serve.mjs'      (the browser tests: a free port, a request log)
import { createServer } from 'node:http';
import { createReadStream, statSync } from 'node:fs';
import { extname, join, normalize, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const TYPES = {
    '.html': 'text/html; charset=utf-8', '.js': 'text/javascript', '.mjs': 'text/javascript',
    '.css': 'text/css', '.json': 'application/json', '.wasm': 'application/wasm',
    '.png': 'image/png', '.jpg': 'image/jpeg', '.mp4': 'video/mp4', '.webm': 'video/webm',
    '.bin': 'application/octet-stream', '.svg': 'image/svg+xml', '.ico': 'image/x-icon', '.safetensors': 'application/octet-stream',
};

export async function serve(root, { port = 0, keepProcessAlive = false } = {}) {
    const requests = [];
    const server = createServer((request, response) => {
        const path = decodeURIComponent(new URL(request.url, 'http://localhost').pathname);
        requests.push(path);
        const file = normalize(join(root, path.endsWith('/') ? `${path}index.html` : path));
        let stat;
        try {
            stat = statSync(file);
        } catch {
            stat = null;
        }
        if (!file.startsWith(normalize(root)) || !stat?.isFile()) {
            response.writeHead(404, { 'content-type': 'text/plain' }).end('not found');
            return;
        }
        const headers = {
            'content-type': TYPES[extname(file)] ?? 'application/octet-stream',
            'accept-ranges': 'bytes',
            'cross-origin-opener-policy': 'same-origin',
            'cross-origin-embedder-policy': 'require-corp',
            'cache-control': 'no-store',
        };
        const range = /^bytes=(\d*)-(\d*)$/.exec(request.headers.range ?? '');
        if (range) {
            const start = range[1] === '' ? Math.max(0, stat.size - Number(range[2])) : Number(range[1]);
            const end = range[1] !== '' && range[2] !== '' ? Math.min(Number(range[2]), stat.size - 1) : stat.size - 1;
            if (start > end) {
                response.writeHead(416, { 'content-range': `bytes */${stat.size}` }).end();
                return;
            }
            response.writeHead(206, { ...headers, 'content-range': `bytes ${start}-${end}/${stat.size}`, 'content-length': end - start + 1 });
            createReadStream(file, { start, end }).pipe(response);
        } else {
            response.writeHead(200, { ...headers, 'content-length': stat.size });
            createReadStream(file).pipe(response);
        }
    });
    await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
    if (!keepProcessAlive) server.unref(); // never the reason a finished test run keeps waiting
    return {
        url: `http://127.0.0.1:${server.address().port}`,
        requests,
        close: () => new Promise((resolve) => {
            server.close(resolve);
            server.closeAllConnections();
        }),
    };
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
    const [folder, port = '8080'] = process.argv.slice(2);
    if (!folder || !statSync(folder, { throwIfNoEntry: false })?.isDirectory()) {
        console.error('usage: node scripts/serve.mjs FOLDER [PORT]   (FOLDER: e.g. the one scripts/build-web.sh prints)');
        process.exit(2);
    }
    const server = await serve(resolve(folder), { port: Number(port), keepProcessAlive: true });
    console.log(`serving ${resolve(folder)} at ${server.url}/  (Ctrl+C stops)`);
}
