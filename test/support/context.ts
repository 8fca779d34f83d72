import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { Redis } from 'ioredis';
import { loadConfig, type Config } from '../../src/config.ts';
import { createLogger, type Logger } from '../../src/log.ts';
import { Runtime } from '../../src/runtime.ts';

export const PG_ADMIN_URL = process.env.TEST_PG_URL ?? 'postgres://postgres@127.0.0.1:5432/postgres';
export const TEST_REDIS_URL = process.env.TEST_REDIS_URL ?? 'redis://127.0.0.1:6379';

export interface TestContext {
  id: string;
  config: Config;
  env: Record<string, string>;
  log: Logger;
  runtime(overrides?: Record<string, string>): Promise<Runtime>;
  cleanup(): Promise<void>;
}

/**
 * A database and a Redis prefix of this test file's own, dropped afterwards, so files can run in
 * parallel against the one local Postgres and Redis.
 */
export async function createTestContext(overrides: Record<string, string> = {}): Promise<TestContext> {
  const id = randomBytes(5).toString('hex');
  const dbUrl = new URL(PG_ADMIN_URL);
  dbUrl.pathname = `/dreambot_test_${id}`;
  const env: Record<string, string> = {
    DATABASE_URL: dbUrl.toString(),
    REDIS_URL: TEST_REDIS_URL,
    REDIS_PREFIX: `{test-${id}}`,
    HTTP_PORT: '0',
    LOG_LEVEL: 'silent',
    JOB_BACKOFF_MS: '200',
    ...overrides,
  };
  const config = loadConfig(env);
  const log = createLogger({ level: process.env.TEST_LOG_LEVEL ?? 'silent' });
  const runtimes: Runtime[] = [];
  return {
    id, config, env, log,
    async runtime(more = {}) {
      const rt = await Runtime.create(loadConfig({ ...env, ...more }), { log });
      runtimes.push(rt);
      return rt;
    },
    async cleanup() {
      for (const rt of runtimes.reverse()) await rt.close(1000).catch(() => undefined);
      const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists "dreambot_test_${id}" with (force)`);
      await admin.end();
      await deleteRedisPrefix(env.REDIS_PREFIX!);
    },
  };
}

export async function deleteRedisPrefix(prefix: string): Promise<void> {
  const redis = new Redis(TEST_REDIS_URL);
  let cursor = '0';
  do {
    const [next, keys] = await redis.scan(cursor, 'MATCH', `${prefix}*`, 'COUNT', 1000);
    cursor = next;
    if (keys.length > 0) await redis.del(...keys);
  } while (cursor !== '0');
  await redis.quit();
}

/** Polls until `check` returns a value, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined | null | false>, timeoutMs = 30_000, what = 'condition'): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const value = await check();
    if (value) return value;
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}
