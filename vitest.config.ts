import { configDefaults, defineConfig } from 'vitest/config';

const ALL = ['packages/*/src/**/*.test.ts', 'packages/*/test/**/*.test.ts', 'tests/**/*.test.ts'];

/**
 * Files whose check compares wall-clock latencies measured inside the file (a request under a
 * flood against the same request just before it; refusal times of differently altered copies of
 * one message): another file on the same cores moves the two
 * apart for reasons that are not the code's. They run one at a time after every other file.
 */
const QUIET = [
  'tests/attacks/node-api-session-flood.test.ts',
  'tests/attacks/session-unauthenticated-parse-oracle.test.ts',
];

// How many test files run at once (docs/decisions/1680-parallel-test-files.md): 1 unless
// FIRN_TEST_WORKERS says more. Every file has its own ports (anvil binds port 0, servers listen on
// 0), FIRN_HOME and temporary folders, so files may run side by side; the default stays 1 until a
// full run with 2 has passed on a machine carrying only the tests.
const WORKERS = Math.max(1, Number.parseInt(process.env.FIRN_TEST_WORKERS ?? '1', 10) || 1);
const shared = {
  testTimeout: 60_000,
  hookTimeout: 120_000,
  pool: 'forks' as const,
  // A FIRN_HOME of its own per test file (tests/setup/firnHome.ts).
  setupFiles: ['tests/setup/firnHome.ts'],
};

export default defineConfig({
  test: {
    // The pool's size; each project's maxWorkers is taken within it.
    maxWorkers: WORKERS,
    reporters: ['default'],
    projects: [
      {
        extends: true,
        test: {
          ...shared,
          name: 'parallel',
          include: ALL,
          exclude: [...configDefaults.exclude, ...QUIET],
          maxWorkers: WORKERS,
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
