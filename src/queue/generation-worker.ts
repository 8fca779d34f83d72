import { mkdtemp, readFile, rm, stat, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DelayedError, RateLimitError, UnrecoverableError, Worker, type ConnectionOptions, type Job } from 'bullmq';
import type { BackendName, Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { asAppError, ErrorCode, permanentError } from '../errors.ts';
import type { Logger } from '../log.ts';
import { readAsset, storeAsset } from '../assets.ts';
import type { BackendHealth } from '../backends/health.ts';
import type { Backend, BackendInputs, BackendJob, Progress } from '../backends/types.ts';
import {
  countSubmission, endUnsuccessful, getGeneration, markDelivered, markRunning, markSucceeded, recordHandle, recordProgress,
  type Generation,
} from '../generations.ts';
import { mp4Info } from '../media/mp4-info.ts';
import { probe } from '../media/probe.ts';
import { observeJobDuration } from '../metrics.ts';
import { deliveryJobId, generationJobId, generationQueueName, jobOptions, type JobData, type QueueSet } from './queues.ts';

export interface GenerationWorkerDeps {
  db: Db;
  config: Config;
  log: Logger;
  backends: ReadonlyMap<BackendName, Backend>;
  queues: QueueSet;
  connection: ConnectionOptions;
  ffprobe: string;
  /** Called whenever a job leaves a slot, so the dispatcher can fill it. */
  onSlotFreed: () => void;
  /** Where operator-facing backend problems are reported for /readyz. */
  health?: BackendHealth;
}

const PROGRESS_EVERY_MS = 1000;
const mimeExt: Record<string, string> = { 'image/png': 'png', 'image/jpeg': 'jpg', 'image/webp': 'webp' };

/**
 * One BullMQ worker per backend. The processor is a resumable state machine over the generation row:
 * record the backend's handle before waiting, so a job that comes back after a crash or a stall resumes
 * the same backend work instead of paying for it twice.
 */
export class GenerationWorkers {
  private readonly workers = new Map<BackendName, Worker<JobData>>();
  private shuttingDown = false;

  constructor(private readonly deps: GenerationWorkerDeps) {}

  start(): void {
    const { config, connection, queues } = this.deps;
    for (const [name, backend] of this.deps.backends) {
      const worker = new Worker<JobData>(generationQueueName(name), (job, token, signal) => this.process(backend, job, token, signal), {
        connection,
        prefix: queues.prefix,
        concurrency: backend.limits.slots,
        lockDuration: config.WORKER_LOCK_MS,
        stalledInterval: config.WORKER_LOCK_MS,
        maxStalledCount: 3,
        ...(backend.limits.createsPerMinute ? { limiter: { max: backend.limits.createsPerMinute, duration: 60_000 } } : {}),
      });
      worker.on('error', (err) => this.deps.log.error({ err, backend: name }, 'worker error'));
      this.workers.set(name, worker);
    }
  }

  async waitUntilReady(): Promise<void> {
    await Promise.all([...this.workers.values()].map((w) => w.waitUntilReady()));
  }

  /** Aborts the job if this process runs it; the generation row was already marked cancelled. */
  cancelLocal(generationId: string): boolean {
    let found = false;
    for (const worker of this.workers.values()) found = worker.cancelJob(generationJobId(generationId), 'cancelled') || found;
    return found;
  }

  /**
   * Stops taking jobs and lets running ones finish for up to `graceMs`. Jobs still running then are handed
   * back: delayed to run at once elsewhere, without counting an attempt, and resumed there by handle.
   */
  async close(graceMs: number): Promise<void> {
    const closing = [...this.workers.values()].map((w) => w.close());
    const timedOut = await Promise.race([
      Promise.all(closing).then(() => false),
      new Promise<boolean>((resolve) => setTimeout(() => resolve(true), graceMs).unref()),
    ]);
    if (timedOut) {
      this.shuttingDown = true;
      for (const worker of this.workers.values()) worker.cancelAllJobs('shutdown');
      await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 5000).unref())]);
      await Promise.all([...this.workers.values()].map((w) => w.close(true)));
    }
  }

  private async process(backend: Backend, job: Job<JobData>, token: string | undefined, signal: AbortSignal | undefined): Promise<string> {
    const { db, log } = this.deps;
    const id = job.data.generationId;
    const abort = signal ?? new AbortController().signal;
    const generation = await markRunning(db, id);
    if (!generation) {
      const current = await getGeneration(db, id);
      if (current?.state === 'succeeded') await this.deliver(current);
      return current?.state ?? 'missing';
    }
    const workDir = await mkdtemp(path.join(os.tmpdir(), 'dreambot-job-'));
    try {
      const backendJob: BackendJob = { generationId: id, request: generation.request, inputs: await this.materialize(generation, workDir), workDir };
      let handle = generation.backendHandle;
      if (!handle) {
        await countSubmission(db, id);
        backendJob.submitAttempt = generation.submitCount + 1;
        handle = await backend.submit(backendJob, abort);
        await recordHandle(db, id, handle);
      }
      let lastWrite = 0;
      const onProgress = (p: Progress) => {
        const now = Date.now();
        if (now - lastWrite < PROGRESS_EVERY_MS && p.fraction < 1) return;
        lastWrite = now;
        void job.updateProgress({ fraction: p.fraction, eta: p.etaSeconds ?? null }).catch(() => undefined);
        void recordProgress(db, id, p.fraction, p.note ?? p.state).catch(() => undefined);
      };
      const outcome = await backend.resume(handle, backendJob, { signal: abort, onProgress });
      const out = path.join(workDir, 'result.mp4');
      await backend.fetchResult(handle, backendJob, out, abort);
      const size = (await stat(out)).size;
      if (size > this.deps.config.MAX_CLIP_BYTES) throw permanentError(ErrorCode.BackendFailed, `clip of ${size} bytes exceeds MAX_CLIP_BYTES`);
      const data = await readFile(out);
      const info = mp4Info(data) ?? (await probe(this.deps.ffprobe, out));
      const assetId = await storeAsset(db, { teamId: generation.teamId, kind: 'clip', mime: 'video/mp4', data });
      const meta = { ...(outcome.meta ?? {}), durationS: info.durationS, width: info.width, height: info.height, sizeBytes: size, handle };
      const succeeded = await markSucceeded(db, id, assetId, meta, outcome.actualCredits ?? generation.estimatedCredits);
      if (succeeded) await this.deliver(succeeded);
      observeJobDuration(backend.name, 'succeeded', secondsSince(generation.startedAt));
      void this.deps.health?.clear(backend.name).catch(() => undefined);
      log.info({ generationId: id, backend: backend.name, attempt: job.attemptsMade + 1 }, 'generation finished');
      return 'succeeded';
    } catch (error) {
      return await this.handleFailure(backend, job, token, generation, error, abort);
    } finally {
      await rm(workDir, { recursive: true, force: true });
      this.deps.onSlotFreed();
    }
  }

  private async handleFailure(backend: Backend, job: Job<JobData>, token: string | undefined, generation: Generation, error: unknown, signal: AbortSignal): Promise<string> {
    const { db, log } = this.deps;
    const id = generation.id;
    if (signal.aborted) {
      if (this.shuttingDown) {
        await job.moveToDelayed(Date.now(), token);
        throw new DelayedError();
      }
      const current = await getGeneration(db, id);
      if (current?.state === 'cancelled') {
        if (current.backendHandle) await backend.cancel(current.backendHandle).catch((err: unknown) => log.warn({ err, generationId: id }, 'backend cancel failed'));
        return 'cancelled';
      }
    }
    const appError = asAppError(error);
    const worker = this.workers.get(backend.name);
    if (appError.code === ErrorCode.RateLimited && worker && backend.limits.createsPerMinute) {
      // The provider said "slow down": wait through BullMQ's limiter; this does not count as an attempt.
      await worker.rateLimit(appError.retryAfterMs ?? 5000);
      throw new RateLimitError();
    }
    const attempt = job.attemptsMade + 1;
    const lastAttempt = attempt >= (job.opts.attempts ?? 1);
    if (appError.kind === 'permanent' && appError.code === ErrorCode.BackendUnavailable) {
      // Not the member's doing and not going away by itself (a rejected key): the operator must see it.
      await this.deps.health?.report(backend.name, appError.message).catch(() => undefined);
    }
    if (appError.kind !== 'transient' || lastAttempt) {
      log.warn({ generationId: id, code: appError.code, kind: appError.kind, attempt, err: appError }, 'generation failed');
      const ended = await endUnsuccessful(db, id, 'failed', appError);
      if (ended) await this.notifyFailure(generation);
      observeJobDuration(backend.name, 'failed', secondsSince(generation.startedAt));
      throw new UnrecoverableError(`${appError.code}: ${appError.message}`);
    }
    log.info({ generationId: id, code: appError.code, attempt }, 'transient failure, will retry');
    throw appError;
  }

  /** Writes the inputs a backend may need from Postgres to this attempt's scratch folder. */
  private async materialize(generation: Generation, workDir: string): Promise<BackendInputs> {
    const { db } = this.deps;
    const inputs: BackendInputs = {};
    const write = async (assetId: string, name: string) => {
      const asset = await readAsset(db, assetId);
      const file = path.join(workDir, `${name}.${mimeExt[asset.mime] ?? 'bin'}`);
      await writeFile(file, asset.data);
      return file;
    };
    if (generation.request.startImageId) inputs.startImage = await write(generation.request.startImageId, 'start');
    if (generation.request.endImageId) inputs.endImage = await write(generation.request.endImageId, 'end');
    if (generation.parentId) {
      const parent = await getGeneration(db, generation.parentId);
      if (parent?.resultAssetId) {
        const asset = await readAsset(db, parent.resultAssetId);
        inputs.parentClip = path.join(workDir, 'parent.mp4');
        await writeFile(inputs.parentClip, asset.data);
      }
      if (parent?.backendHandle && parent.backend === generation.backend) inputs.parentHandle = parent.backendHandle;
    }
    return inputs;
  }

  /** Chat requesters hear about failures through the same delivery queue as results. */
  private async notifyFailure(generation: Generation): Promise<void> {
    const platform = generation.replyTo?.platform;
    if (platform === undefined || platform === 'cli') return;
    await this.deps.queues.delivery.add('notify', { generationId: generation.id }, { ...jobOptions(this.deps.config), attempts: 5, jobId: deliveryJobId(generation.id) });
  }

  /**
   * CLI results are delivered by being stored: the CLI reads the clip from Postgres. Chat results go to
   * the delivery queue, which the bot processes (they hold the platform clients) consume.
   */
  private async deliver(generation: Generation): Promise<void> {
    const platform = generation.replyTo?.platform;
    if (platform === undefined || platform === 'cli') {
      await markDelivered(this.deps.db, generation.id);
      return;
    }
    await this.deps.queues.delivery.add('deliver', { generationId: generation.id }, { ...jobOptions(this.deps.config), attempts: 5, jobId: deliveryJobId(generation.id) });
  }
}

function secondsSince(start: Date | null): number {
  return start ? Math.max(0, (Date.now() - new Date(start).getTime()) / 1000) : 0;
}
