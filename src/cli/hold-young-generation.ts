/**
 * Imported first by the `rtcedge` command, before any other module: for
 * `serve`, V8's young generation stays at its initial size (1 MB semi-spaces)
 * while the modules load and the server starts, instead of doubling to 8 or
 * 16 MB there and staying so (V8 shrinks it again only after a while of low
 * allocation). Once the configuration is read, transport/heap-tuning.ts lets it grow to
 * `memory.young_generation_mb` (or without a cap when that is 0).
 */
import v8 from 'node:v8';

if (process.argv.slice(2).includes('serve')) v8.setFlagsFromString('--semi-space-growth-factor=1');
