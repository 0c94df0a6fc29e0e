// Where the tests find what earlier build steps made (see scripts/test.sh).
import { homedir } from 'node:os';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const ROOT = fileURLToPath(new URL('../../..', import.meta.url));
export const PKG = join(ROOT, 'pkg');
export const DEMO_WEIGHTS = join(PKG, 'weights/m3dfel-tiny-synthetic.safetensors');
const TARGET = process.env.CARGO_TARGET_DIR ?? join(homedir(), '.cache/m3dfel/target');
/** The m3dfel CLI (cargo build --release -p m3dfel-cli). */
export const M3DFEL = process.env.M3DFEL_BIN ?? join(TARGET, 'release/m3dfel');
/** The trainer (cargo build --release -p trainer), for its synthetic faces. */
export const TRAINER = process.env.M3DFEL_TRAINER_BIN ?? join(TARGET, 'release/trainer');
/** The web page's static site (bash scripts/build-web.sh). */
export const SITE = process.env.M3DFEL_SITE ?? join(ROOT, 'web/dist');
/** Screenshots and other files for people to look at after a run. */
export const ARTIFACTS = join(ROOT, 'tests/browser/artifacts');
