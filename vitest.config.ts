import { configDefaults, defineConfig } from 'vitest/config';

const ALL = ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'tests/**/*.test.ts'];

/**
 * Files whose check compares wall-clock latencies measured inside the file (a request under a
 * flood against the same request just before it): another file on the same cores moves the two
 * apart for reasons that are not the code's. They run one at a time after every other file.
 */
const QUIET = ['tests/attacks/node-api-session-flood.test.ts'];

// Test files run two at a time (docs/decisions/1680-parallel-test-files.md): most of a file's time
// is spent waiting on its child processes (anvil, enclaves, node hosts) and timers, and every file
// has its own ports (anvil binds port 0, servers listen on 0), FIRN_HOME and temporary folders.
const shared = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  pool: 'forks',
  // A FIRN_HOME of its own per test file (tests/setup/firnHome.ts).
  setupFiles: ['tests/setup/firnHome.ts'],
} as const;

export default defineConfig({
  test: {
    // The pool's size; each project's maxWorkers is taken within it.
    maxWorkers: 2,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          ...shared,
          name: 'parallel',
          include: ALL,
          exclude: [...configDefaults.exclude, ...QUIET],
          maxWorkers: 2,
          sequence: { groupOrder: 0 },
        },
      },
      {
        extends: true,
        test: {
          ...shared,
          name: 'quiet',
          include: QUIET,
          fileParallelism: false,
          sequence: { groupOrder: 1 },
        },
      },
    ],
  },
});
