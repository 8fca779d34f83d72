import type { Redis } from 'ioredis';
import { setTimeout as sleep } from 'node:timers/promises';
import { ConfigError } from '../../config.ts';
import { ErrorCode, permanentError, transientError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { holdLease, releaseLease } from '../../queue/lease.ts';
import { ComfyClient } from './client.ts';
import { serverKey } from './ids.ts';

/**
 * The ComfyUI servers and who may use each. A server runs one prompt at a time, and that holds across
 * every worker process: a job claims a server with `SET lock <prompt id> NX PX ttl` under REDIS_PREFIX
 * and renews it while its prompt runs. Health is each process's own observation: a server that refuses
 * connections or fails /system_stats leaves rotation and is probed again with exponential backoff.
 */
export interface PoolTiming {
  lockTtlMs: number;
  /** How often a healthy server's /system_stats is checked. */
  probeEveryMs: number;
  backoffBaseMs: number;
  backoffMaxMs: number;
  claimPollMs: number;
}

export interface ServerState {
  readonly url: string;
  readonly client: ComfyClient;
  readonly lockKey: string;
  healthy: boolean;
  /** false once the workflow check found this server unable to run the templates; never used then. */
  usable: boolean;
  verified: boolean;
  failures: number;
  nextProbeAt: number;
  lastError: string | undefined;
  probes: number;
}

export interface PoolOptions {
  urls: readonly string[];
  redis: Redis;
  prefix: string;
  timing: PoolTiming;
  log: Logger;
  requestTimeoutMs: number;
  /** Runs once per server before it first enters rotation; throws ConfigError when it cannot run the workflow. */
  verify: (server: ServerState) => Promise<void>;
}

export class ServerPool {
  readonly servers: ServerState[];
  private timer: NodeJS.Timeout | undefined;
  private next = 0;
  private closed = false;

  constructor(private readonly options: PoolOptions) {
    this.servers = options.urls.map((url) => ({
      url, client: new ComfyClient(url, options.requestTimeoutMs), lockKey: `${options.prefix}:comfyui:lock:${serverKey(url)}`,
      healthy: false, usable: true, verified: false, failures: 0, nextProbeAt: 0, lastError: undefined, probes: 0,
    }));
  }

  get waitingKey(): string {
    return `${this.options.prefix}:comfyui:waiting`;
  }

  get(url: string): ServerState | undefined {
    return this.servers.find((s) => s.url === url);
  }

  /** Servers that may take work now. */
  healthy(): ServerState[] {
    return this.servers.filter((s) => s.healthy && s.usable);
  }

  /**
   * Probes every server once (the startup check), then keeps probing in the background. Rejects with the
   * first ConfigError when a reachable server cannot run the workflow.
   */
  async start(): Promise<void> {
    await Promise.all(this.servers.map((s) => this.probe(s)));
    const broken = this.servers.find((s) => !s.usable);
    if (broken) throw new ConfigError(broken.lastError ?? `${broken.url} cannot run the workflow`);
    const tick = Math.max(50, Math.min(this.options.timing.backoffBaseMs, 1000));
    this.timer = setInterval(() => {
      const now = Date.now();
      for (const s of this.servers) if (s.usable && s.nextProbeAt <= now) void this.probe(s);
    }, tick);
    this.timer.unref();
  }

  stop(): void {
    this.closed = true;
    if (this.timer) clearInterval(this.timer);
  }

  private probing = new Set<ServerState>();

  async probe(server: ServerState): Promise<void> {
    if (this.probing.has(server) || !server.usable) return;
    this.probing.add(server);
    server.probes += 1;
    try {
      await server.client.systemStats();
      if (!server.verified) {
        await this.options.verify(server);
        server.verified = true;
      }
      if (!server.healthy) this.options.log.info({ server: server.url }, 'comfyui server in rotation');
      server.healthy = true;
      server.failures = 0;
      server.lastError = undefined;
      server.nextProbeAt = Date.now() + this.options.timing.probeEveryMs;
    } catch (error) {
      if (error instanceof ConfigError) {
        server.usable = false;
        server.healthy = false;
        server.lastError = error.message;
        this.options.log.error({ server: server.url, err: error }, 'comfyui server cannot run the workflow; never used');
        return;
      }
      this.markDown(server, (error as Error).message);
    } finally {
      this.probing.delete(server);
    }
  }

  /** Out of rotation until a probe succeeds; probes back off 1×, 2×, 4× … up to the maximum. */
  markDown(server: ServerState, reason: string): void {
    const { backoffBaseMs, backoffMaxMs } = this.options.timing;
    if (server.healthy) this.options.log.warn({ server: server.url, reason }, 'comfyui server out of rotation');
    server.healthy = false;
    server.failures += 1;
    server.lastError = reason;
    server.nextProbeAt = Date.now() + Math.min(backoffMaxMs, backoffBaseMs * 2 ** Math.min(20, server.failures - 1));
  }

  /** Takes the server's lock for `promptId`, or renews it when it already holds it. False when another holds it. */
  async hold(server: ServerState, promptId: string): Promise<boolean> {
    return holdLease(this.options.redis, server.lockKey, promptId, this.options.timing.lockTtlMs);
  }

  async release(server: ServerState, promptId: string): Promise<void> {
    await releaseLease(this.options.redis, server.lockKey, promptId);
  }

  /** Which prompt holds each server, in `servers` order. */
  async holders(): Promise<(string | null)[]> {
    if (this.servers.length === 0) return [];
    return this.options.redis.mget(...this.servers.map((s) => s.lockKey));
  }

  /**
   * A healthy server for `promptId`: the one it already holds (a retry after a crash), else a free one.
   * Waits while all are busy; a transient BACKEND_UNAVAILABLE when none frees up within `timeoutMs`.
   */
  async claim(promptId: string, opts: { signal?: AbortSignal; timeoutMs: number; exclude?: ReadonlySet<string> }): Promise<ServerState> {
    const { redis, timing } = this.options;
    const deadline = Date.now() + opts.timeoutMs;
    let registered = false;
    try {
      for (;;) {
        if (opts.signal?.aborted) throw permanentError(ErrorCode.Cancelled, 'cancelled while waiting for a GPU server');
        if (this.closed) throw transientError(ErrorCode.BackendUnavailable, 'the comfyui backend is shutting down');
        const holders = await this.holders();
        const mine = this.servers.findIndex((s, i) => holders[i] === promptId && s.healthy && s.usable && !opts.exclude?.has(s.url));
        if (mine >= 0) {
          const server = this.servers[mine]!;
          if (await this.hold(server, promptId)) return server;
        }
        const n = this.servers.length;
        for (let k = 0; k < n; k++) {
          const i = (this.next + k) % n;
          const server = this.servers[i]!;
          if (holders[i] !== null || !server.healthy || !server.usable || opts.exclude?.has(server.url)) continue;
          if ((await redis.set(server.lockKey, promptId, 'PX', timing.lockTtlMs, 'NX')) === 'OK') {
            this.next = (i + 1) % n;
            return server;
          }
        }
        if (Date.now() >= deadline) {
          const healthy = this.healthy().filter((s) => !opts.exclude?.has(s.url)).length;
          throw transientError(ErrorCode.BackendUnavailable, healthy === 0
            ? 'no ComfyUI server is reachable right now'
            : `all ${healthy} ComfyUI servers stayed busy`, { context: { healthy } });
        }
        // Waiters are counted (for wait estimates) with an expiry, so a crashed waiter drops out by itself.
        await redis.zadd(this.waitingKey, Date.now() + timing.claimPollMs * 4 + 1000, promptId);
        registered = true;
        const jitter = Math.round(timing.claimPollMs * (0.75 + Math.random() * 0.5));
        await sleep(jitter, undefined, opts.signal ? { signal: opts.signal } : {}).catch(() => undefined);
      }
    } finally {
      if (registered) await redis.zrem(this.waitingKey, promptId).catch(() => undefined);
    }
  }

  async waiting(): Promise<number> {
    await this.options.redis.zremrangebyscore(this.waitingKey, '-inf', Date.now());
    return this.options.redis.zcard(this.waitingKey);
  }

  /** For operators and tests: each server's state. */
  status(): { url: string; healthy: boolean; usable: boolean; failures: number; probes: number; lastError?: string }[] {
    return this.servers.map((s) => ({
      url: s.url, healthy: s.healthy, usable: s.usable, failures: s.failures, probes: s.probes, ...(s.lastError ? { lastError: s.lastError } : {}),
    }));
  }
}
