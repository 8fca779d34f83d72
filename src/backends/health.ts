import type { Redis } from 'ioredis';

const TTL_SECONDS = 15 * 60;

/**
 * Backend problems an operator must fix (a rejected API key, servers down), seen by whichever worker hit
 * them and shown by every process's /readyz. Kept in Redis, expiring, and cleared by the next success,
 * so a fixed key or a restarted server drops out of the report without anyone resetting it.
 */
export class BackendHealth {
  constructor(private readonly redis: Redis, private readonly prefix: string) {}

  private key(backend: string): string {
    return `${this.prefix}:backend-health:${backend}`;
  }

  async report(backend: string, problem: string): Promise<void> {
    await this.redis.set(this.key(backend), problem.slice(0, 500), 'EX', TTL_SECONDS);
  }

  async clear(backend: string): Promise<void> {
    await this.redis.del(this.key(backend));
  }

  /** Each backend's current problem, or 'ok'. */
  async snapshot(backends: Iterable<string>): Promise<Record<string, string>> {
    const names = [...backends];
    if (names.length === 0) return {};
    const values = await this.redis.mget(...names.map((n) => this.key(n)));
    return Object.fromEntries(names.map((n, i) => [n, values[i] ?? 'ok']));
  }
}
