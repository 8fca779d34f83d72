import { defineConfig } from 'vitest/config';

export default defineConfig({
  test: {
    include: ['test/**/*.test.ts'],
    testTimeout: 60_000,
    hookTimeout: 60_000,
    // Two cores: files run two at a time; each makes its own database and Redis prefix.
    maxWorkers: 2,
    pool: 'forks',
  },
});
