import { randomBytes } from 'node:crypto';
import postgres from 'postgres';
import { loadConfig, type Config } from '../src/config.ts';
import { createLogger } from '../src/log.ts';
import { Runtime, type RuntimeOptions } from '../src/runtime.ts';
import { deleteRedisPrefix, PG_ADMIN_URL, TEST_REDIS_URL } from '../test/support/context.ts';

export interface BenchEnv {
  config: Config;
  env: Record<string, string>;
  runtime(options?: RuntimeOptions): Promise<Runtime>;
  cleanup(): Promise<void>;
}

/** A throwaway database and Redis prefix, like the tests', so a bench never touches real data. */
export async function benchEnv(overrides: Record<string, string> = {}): Promise<BenchEnv> {
  const id = randomBytes(4).toString('hex');
  const url = new URL(PG_ADMIN_URL);
  url.pathname = `/dreambot_bench_${id}`;
  const env = { DATABASE_URL: url.toString(), REDIS_URL: TEST_REDIS_URL, REDIS_PREFIX: `{bench-${id}}`, LOG_LEVEL: 'silent', ...overrides };
  const config = loadConfig(env);
  const runtimes: Runtime[] = [];
  return {
    config, env,
    async runtime(options = {}) {
      const rt = await Runtime.create(config, { log: createLogger({ level: 'silent' }), ...options });
      runtimes.push(rt);
      return rt;
    },
    async cleanup() {
      for (const rt of runtimes) await rt.close(1000).catch(() => undefined);
      const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
      await admin.unsafe(`drop database if exists "dreambot_bench_${id}" with (force)`);
      await admin.end();
      await deleteRedisPrefix(env.REDIS_PREFIX);
    },
  };
}

export function percentile(sorted: number[], p: number): number {
  if (sorted.length === 0) return NaN;
  const i = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[i]!;
}

export function median(values: number[]): number {
  return percentile([...values].sort((a, b) => a - b), 50);
}

/** Runs `total` calls of `fn` from `workers` concurrent loops; returns throughput and latency figures. */
export async function load(total: number, workers: number, fn: (i: number) => Promise<unknown>) {
  const latencies: number[] = [];
  let next = 0;
  const started = performance.now();
  await Promise.all(Array.from({ length: workers }, async () => {
    for (;;) {
      const i = next++;
      if (i >= total) return;
      const t0 = performance.now();
      await fn(i);
      latencies.push(performance.now() - t0);
    }
  }));
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { perSecond: total / seconds, p50Ms: percentile(latencies, 50), p99Ms: percentile(latencies, 99) };
}

export const round = (n: number, digits = 2) => Number(n.toFixed(digits));
