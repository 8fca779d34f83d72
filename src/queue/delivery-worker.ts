import { sql } from 'drizzle-orm';
import { UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { Db } from '../db/client.ts';
import { ErrorCode, asAppError, permanentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { readAsset, type StoredAsset } from '../assets.ts';
import { endUnsuccessful, getGeneration, markDelivered, type Generation } from '../generations.ts';
import type { Platform } from '../teams.ts';
import { DELIVERY_QUEUE, type JobData } from './queues.ts';

export interface DeliveryContext {
  generation: Generation;
  /** The finished clip; null for a failure notice. */
  clip: StoredAsset | null;
}

export interface Delivered {
  channelId?: string;
  /** The platform message that shows the clip; buttons and reactions on it find the generation. */
  messageId?: string;
}

/**
 * What a chat adapter gives the core to get results back to people. Both methods may be called more
 * than once for the same generation (delivery is at least once), so they must not post twice: an
 * adapter checks its own record (or the `deliveries` table) before posting.
 */
export interface Deliverer {
  readonly platform: Platform;
  deliverClip(context: DeliveryContext): Promise<Delivered>;
  deliverFailure(context: DeliveryContext): Promise<void>;
}

/**
 * Runs in bot processes, which hold the platform clients. A result is captured only once it is
 * posted; a result that cannot be posted after every attempt is released, not charged.
 */
export class DeliveryWorker {
  private worker: Worker<JobData> | undefined;
  private readonly deliverers = new Map<Platform, Deliverer>();

  constructor(private readonly deps: { db: Db; log: Logger; connection: ConnectionOptions; prefix: string }) {}

  register(deliverer: Deliverer): void {
    this.deliverers.set(deliverer.platform, deliverer);
  }

  start(concurrency = 8): void {
    this.worker = new Worker<JobData>(DELIVERY_QUEUE, (job) => this.process(job), {
      connection: this.deps.connection, prefix: this.deps.prefix, concurrency,
    });
    this.worker.on('error', (err) => this.deps.log.error({ err }, 'delivery worker error'));
  }

  async waitUntilReady(): Promise<void> {
    await this.worker?.waitUntilReady();
  }

  private async process(job: Job<JobData>): Promise<string> {
    const { db, log } = this.deps;
    const generation = await getGeneration(db, job.data.generationId);
    if (!generation || generation.state === 'delivered') return generation?.state ?? 'missing';
    const platform = generation.replyTo?.platform as Platform | undefined;
    const deliverer = platform ? this.deliverers.get(platform) : undefined;
    if (!deliverer) throw new Error(`no deliverer for platform ${platform} in this process`);
    try {
      if (generation.state === 'succeeded') {
        const clip = generation.resultAssetId ? await readAsset(db, generation.resultAssetId) : null;
        const posted = await deliverer.deliverClip({ generation, clip });
        await db.execute(sql`
          insert into deliveries (generation_id, platform, kind, channel_id, message_id)
          values (${generation.id}, ${deliverer.platform}, 'clip', ${posted.channelId ?? null}, ${posted.messageId ?? null})
          on conflict do nothing`);
        await markDelivered(db, generation.id);
        return 'delivered';
      }
      if (generation.state === 'failed' || generation.state === 'cancelled') {
        await deliverer.deliverFailure({ generation, clip: null });
        return 'notified';
      }
      return generation.state;
    } catch (error) {
      const appError = asAppError(error);
      const last = job.attemptsMade + 1 >= (job.opts.attempts ?? 1);
      if (generation.state === 'succeeded' && (last || appError.kind !== 'transient')) {
        log.warn({ generationId: generation.id, err: appError }, 'clip could not be delivered; releasing its credits');
        await endUnsuccessful(db, generation.id, 'failed', permanentError(ErrorCode.BackendFailed, `delivery failed: ${appError.message}`));
        throw new UnrecoverableError(appError.message);
      }
      throw appError;
    }
  }

  async close(): Promise<void> {
    await this.worker?.close();
  }
}
