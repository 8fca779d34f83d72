import { EventEmitter } from 'node:events';
import type { Redis } from 'ioredis';
import type { Logger } from '../../log.ts';

/**
 * Early wake-ups for pollers. A Luma callback lands on whichever process serves HTTP (often a bot
 * process), while the job waits in a worker process: the callback route publishes the dreambot
 * generation id, and every process's bus hands it to a local waiter if it has one. It is only a hint;
 * the poller re-fetches by id, and without Redis (or when a message is lost) polling alone still
 * finishes every job, just later.
 */
export interface Watch {
  /** Waits `ms`, or less if a wake-up for this id arrived since the last call; rejects when aborted. */
  sleep(ms: number, signal: AbortSignal): Promise<'woken' | 'timeout'>;
  close(): void;
}

export interface WakeupBus {
  publish(generationId: string): void;
  watch(generationId: string): Watch;
  close(): Promise<void>;
}

/** One process: an EventEmitter. */
export class LocalWakeups implements WakeupBus {
  protected readonly events = new EventEmitter();

  constructor() {
    this.events.setMaxListeners(0);
  }

  publish(generationId: string): void {
    this.events.emit(generationId);
  }

  watch(generationId: string): Watch {
    let pending = false;
    let wake: (() => void) | undefined;
    const listener = () => {
      pending = true;
      wake?.();
    };
    this.events.on(generationId, listener);
    return {
      sleep: (ms, signal) => new Promise((resolve, reject) => {
        if (signal.aborted) return reject(signal.reason ?? new Error('aborted'));
        if (pending) {
          pending = false;
          return resolve('woken');
        }
        const done = (result: 'woken' | 'timeout') => {
          clearTimeout(timer);
          signal.removeEventListener('abort', onAbort);
          wake = undefined;
          pending = false;
          resolve(result);
        };
        const onAbort = () => {
          clearTimeout(timer);
          wake = undefined;
          reject(signal.reason ?? new Error('aborted'));
        };
        const timer = setTimeout(() => done('timeout'), ms);
        wake = () => done('woken');
        signal.addEventListener('abort', onAbort, { once: true });
      }),
      close: () => {
        this.events.off(generationId, listener);
      },
    };
  }

  async close(): Promise<void> {
    this.events.removeAllListeners();
  }
}

export interface RedisWakeupsOptions {
  /** Makes a connection; called at most twice (publisher, subscriber), and only when first needed. */
  connect: () => Redis;
  channel: string;
  log: Logger;
}

/**
 * Across processes: Redis pub/sub on one channel. The subscriber connects on the first `watch` (so
 * bot-only processes never subscribe), the publisher on the first `publish`.
 */
export class RedisWakeups extends LocalWakeups {
  private publisher: Redis | undefined;
  private subscriber: Redis | undefined;
  private subscribing: Promise<unknown> | undefined;

  constructor(private readonly options: RedisWakeupsOptions) {
    super();
  }

  override publish(generationId: string): void {
    super.publish(generationId);
    if (!this.publisher) this.publisher = this.quiet(this.options.connect());
    this.publisher.publish(this.options.channel, generationId).catch((err: unknown) => this.options.log.warn({ err }, 'luma wake-up not published; the poller will notice by itself'));
  }

  override watch(generationId: string): Watch {
    this.ensureSubscribed();
    return super.watch(generationId);
  }

  /** Resolves once the subscription is live (tests use it; workers need not wait). */
  ready(): Promise<unknown> {
    this.ensureSubscribed();
    return this.subscribing ?? Promise.resolve();
  }

  override async close(): Promise<void> {
    await super.close();
    for (const connection of [this.publisher, this.subscriber]) await connection?.quit().catch(() => undefined);
    this.publisher = undefined;
    this.subscriber = undefined;
  }

  private ensureSubscribed(): void {
    if (this.subscriber) return;
    const subscriber = this.quiet(this.options.connect());
    this.subscriber = subscriber;
    subscriber.on('message', (channel: string, message: string) => {
      if (channel === this.options.channel) this.events.emit(message);
    });
    this.subscribing = subscriber.subscribe(this.options.channel).catch((err: unknown) => {
      this.options.log.warn({ err }, 'luma wake-ups unavailable; polling only');
    });
  }

  private quiet(connection: Redis): Redis {
    connection.on('error', (err: unknown) => this.options.log.debug({ err }, 'luma wake-up connection error'));
    return connection;
  }
}
