// Builds the TURN data-plane addon (native/) with node-gyp; run by `npm install`/`npm ci`
// and by `npm run build:native`. Uses the system's Node headers (/usr/include/node, Debian's
// nodejs-dev / libnode-dev) when present so nothing is downloaded. A failed build does not fail
// the install: rtcedge then runs the TypeScript data path and says so at start-up.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const require = createRequire(import.meta.url);
const strict = process.argv.includes('--strict');

let gyp;
try {
  gyp = require.resolve('node-gyp/bin/node-gyp.js');
} catch {
  console.warn('native: node-gyp not installed; skipping the TURN data-plane addon (TypeScript data path will be used)');
  process.exit(strict ? 1 : 0);
}
const args = [gyp, 'rebuild', '--directory', here];
if (!process.env.npm_config_nodedir && existsSync('/usr/include/node/node_api.h') && existsSync('/usr/include/node/common.gypi')) {
  args.push('--nodedir=/usr');
}
const r = spawnSync(process.execPath, args, { stdio: 'inherit' });
if (r.status !== 0) {
  console.warn(
    `native: building the TURN data-plane addon failed (${join(here, 'binding.gyp')}); ` +
      'install g++ make python3 and run `npm run build:native`. Until then rtcedge uses the TypeScript data path.',
  );
  process.exit(strict ? 1 : 0);
}
