import { Queue, type ConnectionOptions, type JobsOptions } from 'bullmq';
import { Redis } from 'ioredis';
import type { BackendName, Config } from '../config.ts';

export const generationQueueName = (backend: BackendName) => `gen-${backend}`;
export const DELIVERY_QUEUE = 'delivery';
export const generationJobId = (generationId: string) => `g-${generationId}`;
export const deliveryJobId = (generationId: string) => `d-${generationId}`;

export interface JobData {
  generationId: string;
}

/** Worker connections must retry forever (bullmq #1744); producers should fail fast instead. */
export function redisConnection(config: Pick<Config, 'REDIS_URL'>, role: 'worker' | 'producer'): Redis {
  return new Redis(config.REDIS_URL, {
    maxRetriesPerRequest: role === 'worker' ? null : 3,
    enableOfflineQueue: role === 'worker',
    lazyConnect: false,
  });
}

export function jobOptions(config: Pick<Config, 'JOB_ATTEMPTS' | 'JOB_BACKOFF_MS'>): JobsOptions {
  return {
    attempts: config.JOB_ATTEMPTS,
    backoff: { type: 'exponential', delay: config.JOB_BACKOFF_MS, jitter: 0.3 },
    removeOnComplete: { age: 24 * 3600, count: 5000 },
    removeOnFail: { age: 7 * 24 * 3600 },
  };
}

export class QueueSet {
  readonly generation = new Map<BackendName, Queue<JobData>>();
  readonly delivery: Queue<JobData>;

  constructor(readonly connection: ConnectionOptions, readonly prefix: string, backends: Iterable<BackendName>) {
    for (const backend of backends) {
      this.generation.set(backend, new Queue<JobData>(generationQueueName(backend), { connection, prefix }));
    }
    this.delivery = new Queue<JobData>(DELIVERY_QUEUE, { connection, prefix });
  }

  forBackend(backend: BackendName): Queue<JobData> {
    const queue = this.generation.get(backend);
    if (!queue) throw new Error(`no queue for backend ${backend}`);
    return queue;
  }

  all(): Queue<JobData>[] {
    return [...this.generation.values(), this.delivery];
  }

  async close(): Promise<void> {
    await Promise.all(this.all().map((q) => q.close()));
  }
}
