import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'tests/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 120_000,
    pool: 'forks',
    // A FIRN_HOME of its own per test file (tests/setup/firnHome.ts).
    setupFiles: ['tests/setup/firnHome.ts'],
    reporters: ['default'],
  },
});
