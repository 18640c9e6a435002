import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts', 'interop/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Interop tests bind fixed loopback ports and spawn real peers: one file at a time.
    fileParallelism: false,
  },
});
