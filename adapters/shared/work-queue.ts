import type { Logger } from '../../src/log.ts';

/**
 * Ack first. Discord's and Slack's 3 s deadlines are hard; the "queued" reply a second later is not.
 * Work that follows an ack (admission, the first reply) waits while requests arrive back to back
 * (`quietMs`), or, in a long burst, until it has waited `maxDelayMs`, and then runs a few at a time, so a
 * burst of /dream is acknowledged about as fast as a bot that only acknowledges. Hand-written because no
 * queue library schedules on "quiet since the last arrival"; p-queue and friends only bound concurrency.
 */
export interface WorkQueue {
  run(work: () => Promise<void>): void;
  /** Requests are arriving back to back: background chores (progress polls) should wait too. */
  busy(): boolean;
  /** Resolves once nothing is queued or running (shutdown, benchmarks). */
  idle(): Promise<void>;
  readonly pending: number;
}

export interface WorkQueueOptions {
  concurrency: number;
  /** While requests arrive closer together than this, the queue counts as busy. */
  quietMs?: number;
  /** Busy: at most this many run, and only work that has waited maxDelayMs. */
  busyConcurrency?: number;
  maxDelayMs?: number;
  /** Names the platform in the log line when a piece of work fails. */
  label: string;
}

export function workQueue(log: Logger, options: WorkQueueOptions): WorkQueue {
  const { concurrency, quietMs = 20, busyConcurrency = 2, maxDelayMs = 1500, label } = options;
  const waiting: { work: () => Promise<void>; at: number }[] = [];
  let running = 0;
  let lastArrival = 0;
  let timer: NodeJS.Timeout | undefined;
  let idlers: (() => void)[] = [];
  const pump = (): void => {
    timer = undefined;
    const now = performance.now();
    const busy = now - lastArrival < quietMs;
    while (waiting.length > 0 && running < (busy ? busyConcurrency : concurrency)) {
      if (busy && now - waiting[0]!.at < maxDelayMs) break;
      const { work } = waiting.shift()!;
      running += 1;
      work().catch((err: unknown) => log.error({ err }, `${label}: work after an ack failed`)).finally(() => {
        running -= 1;
        pump();
      });
    }
    if (waiting.length > 0 && !timer) {
      const wait = busy ? Math.min(quietMs, Math.max(1, maxDelayMs - (now - waiting[0]!.at))) : quietMs;
      timer = setTimeout(pump, wait);
    }
    if (running === 0 && waiting.length === 0) {
      const done = idlers;
      idlers = [];
      for (const resolve of done) resolve();
    }
  };
  return {
    run(work) {
      lastArrival = performance.now();
      waiting.push({ work, at: lastArrival });
      // Never inside the ack's own turn of the event loop: let the ack reach the socket first.
      if (!timer) timer = setTimeout(pump, quietMs);
    },
    busy: () => performance.now() - lastArrival < quietMs,
    idle: () => (running === 0 && waiting.length === 0 ? Promise.resolve() : new Promise<void>((resolve) => idlers.push(resolve))),
    get pending() {
      return waiting.length + running;
    },
  };
}
