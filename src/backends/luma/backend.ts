import LumaAI from 'lumaai';
import type { Config } from '../../config.ts';
import { ErrorCode, permanentError, transientError, userError } from '../../errors.ts';
import { priceOf } from '../../ledger/pricing.ts';
import type { Logger } from '../../log.ts';
import { aspectRatios, resolutions } from '../../media/sizes.ts';
import { redisConnection } from '../../queue/queues.ts';
import type { StoredRequest } from '../../request.ts';
import type { Backend, BackendCapabilities, BackendJob, BackendLimits, BackendOutcome, Progress, RunHooks } from '../types.ts';
import { isRetryableRead, readFailure, retryAfterMs, statusOf, withSignal } from './api-errors.ts';
import { callbackUrl } from './callbacks.ts';
import { ConceptCatalog } from './concepts.ts';
import { LumaCreator } from './creator.ts';
import { downloadClip, ExpiredAssetError } from './download.ts';
import { failureError, isTransientFailure } from './failures.ts';
import { expectedSeconds, parseGeneration, stateOf, toProgress, type LumaGeneration } from './generation.ts';
import { buildCall, checkRequest, LUMA_VIDEO_MODELS, type LumaCall } from './request-body.ts';
import { LocalWakeups, RedisWakeups, type WakeupBus } from './wakeups.ts';

export interface LumaBackendOptions {
  apiKey: string;
  baseURL: string;
  pollMs: number;
  slots: number;
  createsPerMinute: number;
  /** Where Luma fetches input images and posts callbacks; without it, images are refused and there are no callbacks. */
  publicBaseUrl: string | undefined;
  assetSecret: string;
  log: Logger;
  /** Early wake-ups from callbacks; polling alone when omitted. */
  wakeups?: WakeupBus;
  createTimeoutMs?: number;
  readTimeoutMs?: number;
  /** Give up waiting on one generation after this long (transient: the retry resumes the same one). */
  maxWaitMs?: number;
  /** How long signed input-image URLs stay valid: long enough for a generation to leave the queue. */
  imageUrlTtlS?: number;
  reconcileTries?: number;
  reconcileDelayMs?: number;
  maxReadBackoffMs?: number;
  fetch?: typeof fetch;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const jitter = (ms: number) => Math.round(ms * (0.75 + Math.random() * 0.25));

/**
 * The hosted Luma Dream Machine API (backend-luma.md), through the official `lumaai` SDK. The handle
 * is the Luma generation id, returned by `submit` so the worker records it before anything waits on it;
 * `resume` polls it (woken early by callbacks), following a replacement when a transient failure made
 * one; `fetchResult` downloads the clip. Creates are never retried blindly (see LumaCreator).
 */
export class LumaBackend implements Backend {
  readonly name = 'luma' as const;
  readonly limits: BackendLimits;
  readonly client: LumaAI;
  readonly wakeups: WakeupBus;
  readonly concepts: ConceptCatalog;
  readonly creator: LumaCreator;
  private readonly options: Required<Omit<LumaBackendOptions, 'publicBaseUrl' | 'wakeups'>> & Pick<LumaBackendOptions, 'publicBaseUrl'>;
  /** Luma id that failed transiently → the generation made in its place. */
  private readonly replacements = new Map<string, string>();
  private readonly finished = new Map<string, { id: string; video: string }>();
  private readonly lastProgress = new Map<string, Progress>();

  constructor(options: LumaBackendOptions) {
    this.options = {
      createTimeoutMs: 60_000, readTimeoutMs: 30_000, maxWaitMs: 30 * 60_000, imageUrlTtlS: 6 * 3600,
      reconcileTries: 3, reconcileDelayMs: 1000, maxReadBackoffMs: 30_000, fetch: globalThis.fetch, ...options,
    };
    this.limits = { slots: options.slots, createsPerMinute: options.createsPerMinute };
    this.client = new LumaAI({ authToken: options.apiKey, baseURL: options.baseURL, maxRetries: 2, timeout: this.options.readTimeoutMs });
    this.wakeups = options.wakeups ?? new LocalWakeups();
    this.concepts = new ConceptCatalog(() => this.client.generations.concepts.list({ timeout: this.options.readTimeoutMs }), options.log);
    this.creator = new LumaCreator({
      client: this.client, log: options.log, createsPerMinute: options.createsPerMinute, createTimeoutMs: this.options.createTimeoutMs,
      readTimeoutMs: this.options.readTimeoutMs, reconcileTries: this.options.reconcileTries, reconcileDelayMs: this.options.reconcileDelayMs,
    });
  }

  capabilities(): BackendCapabilities {
    return {
      operations: ['generate', 'extend', 'upscale', 'add_audio'], models: LUMA_VIDEO_MODELS, aspects: aspectRatios, resolutions,
      durations: ['5s', '9s'], cameraMoves: this.concepts.cameraMoves(), startImage: true, endImage: true, loop: true,
    };
  }

  estimate(request: StoredRequest): number | null {
    return priceOf({ backend: 'luma', operation: request.operation, model: request.model, resolution: request.resolution, duration: request.duration });
  }

  check(request: StoredRequest, inputs: { startImage: boolean; endImage: boolean; parent: boolean }): void {
    this.concepts.warm();
    checkRequest(request, inputs, this.options.publicBaseUrl);
  }

  /** Fetches the concepts list now (capabilities() then reflects it). */
  warm = async (): Promise<void> => void (await this.concepts.get());

  async submit(job: BackendJob, signal: AbortSignal): Promise<string> {
    return this.creator.create(job.generationId, await this.prepare(job, signal), signal, job.submitAttempt ?? 1);
  }

  async resume(handle: string, job: BackendJob, hooks: RunHooks): Promise<BackendOutcome> {
    const { signal } = hooks;
    const { pollMs, maxWaitMs, log } = this.options;
    const watch = this.wakeups.watch(job.generationId);
    const deadline = Date.now() + maxWaitMs;
    const expected = expectedSeconds(job.request.model, job.request.duration, job.request.resolution);
    let current = handle;
    let dreamingSince: number | undefined;
    let readFailures = 0;
    let replaced = false;
    let done = false;
    this.creator.markClaimed(handle);
    try {
      for (;;) {
        current = this.latest(current);
        this.creator.markClaimed(current);
        let generation: LumaGeneration;
        try {
          generation = await this.getOnce(current, signal);
          readFailures = 0;
        } catch (error) {
          if (signal.aborted || !isRetryableRead(error)) throw signal.aborted ? permanentError(ErrorCode.Cancelled, 'cancelled') : readFailure(error, log, 'get');
          readFailures += 1;
          const wait = this.readBackoff(error, readFailures);
          log.debug({ generationId: job.generationId, status: statusOf(error), wait }, 'Luma read failed; backing off');
          if (Date.now() + wait > deadline) throw transientError(ErrorCode.BackendTimeout, 'The video service is not answering; try again in a while. Nothing was charged.');
          await watch.sleep(wait, signal);
          continue;
        }
        const state = stateOf(generation);
        if (state === 'dreaming') dreamingSince ??= Date.now();
        const progress = toProgress(state, dreamingSince, expected);
        this.lastProgress.set(handle, progress);
        hooks.onProgress(progress);
        if (state === 'completed' && generation.assets?.video) {
          this.finished.set(handle, { id: current, video: generation.assets.video });
          done = true;
          return {
            actualCredits: this.estimate(job.request) ?? undefined,
            meta: { model: job.request.model, lumaId: current, ...(generation.model ? { lumaModel: generation.model } : {}), ...(current !== handle ? { replaces: handle } : {}) },
          };
        }
        if (state === 'failed') {
          const reason = generation.failure_reason;
          if (!isTransientFailure(reason)) throw failureError(reason, { lumaId: current });
          // Luma refunds failures, so a fresh generation costs nothing extra: one per attempt, and
          // never a second one for the same failure (another process may have made it already).
          const existing = await this.creator.replacementOf(current, generation, signal);
          if (existing && existing !== current) {
            this.replacements.set(current, existing);
            continue;
          }
          if (replaced) throw failureError(reason, { lumaId: current });
          log.info({ generationId: job.generationId, lumaId: current, reason }, 'Luma generation failed transiently; making a replacement');
          const next = await this.creator.create(job.generationId, await this.prepare(job, signal), signal);
          if (next === current) throw failureError(reason, { lumaId: current });
          this.replacements.set(current, next);
          replaced = true;
          dreamingSince = undefined;
          continue;
        }
        if (Date.now() > deadline) throw transientError(ErrorCode.BackendTimeout, 'The video service is taking unusually long; try again later. Nothing was charged.');
        await watch.sleep(pollMs, signal);
      }
    } finally {
      watch.close();
      if (!done) this.lastProgress.delete(handle);
    }
  }

  async progress(handle: string): Promise<Progress> {
    const known = this.lastProgress.get(handle);
    if (known) return known;
    const { generation } = await this.follow(handle);
    return toProgress(stateOf(generation), undefined, 40);
  }

  async cancel(handle: string): Promise<void> {
    for (let id: string | undefined = handle; id; id = this.replacements.get(id)) {
      try {
        await this.client.generations.delete(id, { timeout: this.options.readTimeoutMs });
      } catch (error) {
        if (statusOf(error) !== 404) throw error;
      }
    }
    this.forget(handle);
  }

  async fetchResult(handle: string, _job: BackendJob, destination: string, signal: AbortSignal): Promise<void> {
    let target = this.finished.get(handle);
    if (!target) {
      const { id, generation } = await this.follow(handle, signal);
      if (stateOf(generation) !== 'completed' || !generation.assets?.video) {
        throw transientError(ErrorCode.BackendFailed, `Luma generation ${id} has no finished clip (state ${generation.state ?? 'unknown'})`);
      }
      target = { id, video: generation.assets.video };
    }
    try {
      await downloadClip(target.video, destination, signal, this.options.fetch);
    } catch (error) {
      if (!(error instanceof ExpiredAssetError)) throw error;
      // The asset URL may have expired: ask for the generation again, which comes with a fresh one.
      const fresh = await this.getWithRetries(target.id, signal);
      if (!fresh.assets?.video) throw permanentError(ErrorCode.BackendFailed, 'the Luma clip is no longer available');
      await downloadClip(fresh.assets.video, destination, signal, this.options.fetch);
    }
    this.forget(handle);
  }

  async close(): Promise<void> {
    await this.wakeups.close();
  }

  /** The request as a Luma call: the parent's real id, the camera move as a concept, the callback URL. */
  private async prepare(job: BackendJob, signal: AbortSignal): Promise<LumaCall> {
    const { request } = job;
    const { publicBaseUrl, assetSecret, imageUrlTtlS } = this.options;
    checkRequest(request, { startImage: !!request.startImageId, endImage: !!request.endImageId, parent: !!request.parentId }, publicBaseUrl);
    let parentId: string | undefined;
    if (request.operation !== 'generate') {
      if (!job.inputs.parentHandle) throw userError(ErrorCode.UnsupportedOperation, 'Only clips made on the luma backend can be extended, upscaled or given audio there. Nothing was charged.');
      const parent = await this.follow(job.inputs.parentHandle, signal);
      if (stateOf(parent.generation) !== 'completed') throw userError(ErrorCode.NotFound, 'That clip is no longer available on the video service. Nothing was charged.');
      parentId = parent.id;
    }
    const concept = request.operation === 'generate' || request.operation === 'extend' ? await this.concepts.conceptFor(request.camera) : undefined;
    return buildCall(request, {
      publicBaseUrl, assetSecret, imageUrlTtlS, parentId, concept,
      callbackUrl: publicBaseUrl ? callbackUrl(publicBaseUrl, assetSecret, job.generationId) : undefined,
    });
  }

  /** The generation a handle stands for now, following replacements of transient failures. */
  private async follow(handle: string, signal?: AbortSignal): Promise<{ id: string; generation: LumaGeneration }> {
    let id = handle;
    for (let hop = 0; ; hop++) {
      id = this.latest(id);
      const generation = await this.getWithRetries(id, signal);
      if (hop < 5 && stateOf(generation) === 'failed' && isTransientFailure(generation.failure_reason)) {
        const next = await this.creator.replacementOf(id, generation, signal ?? new AbortController().signal);
        if (next && next !== id) {
          this.replacements.set(id, next);
          continue;
        }
      }
      return { id, generation };
    }
  }

  private latest(id: string): string {
    let current = id;
    for (let hops = 0; hops < 20; hops++) {
      const next = this.replacements.get(current);
      if (!next) break;
      current = next;
    }
    return current;
  }

  private async getWithRetries(id: string, signal?: AbortSignal): Promise<LumaGeneration> {
    for (let failures = 1; ; failures++) {
      try {
        return await this.getOnce(id, signal);
      } catch (error) {
        if (signal?.aborted) throw permanentError(ErrorCode.Cancelled, 'cancelled');
        if (!isRetryableRead(error)) throw readFailure(error, this.options.log, 'get');
        if (failures >= 5) throw transientError(ErrorCode.BackendUnavailable, 'Luma is not answering reads', { cause: error });
        await sleep(this.readBackoff(error, failures));
      }
    }
  }

  /** One GET of the generation, validated; the caller decides about retries. */
  private async getOnce(id: string, signal: AbortSignal | undefined): Promise<LumaGeneration> {
    return parseGeneration(await withSignal(signal, (s) => this.client.generations.get(id, { maxRetries: 0, timeout: this.options.readTimeoutMs, signal: s })), 'generation');
  }

  /** Retry-After when Luma sends one, else the poll interval doubling up to the cap. */
  private readBackoff(error: unknown, failures: number): number {
    const asked = retryAfterMs(error);
    if (asked !== undefined) return Math.min(asked, 5 * 60_000);
    return jitter(Math.min(this.options.maxReadBackoffMs, this.options.pollMs * 2 ** failures));
  }

  private forget(handle: string): void {
    this.finished.delete(handle);
    this.lastProgress.delete(handle);
  }
}

/** The luma backend as configured by the environment, with callbacks reaching workers through Redis. */
export function createLumaBackend(config: Config, log: Logger, overrides: Partial<LumaBackendOptions> = {}): LumaBackend {
  if (!config.LUMA_API_KEY) throw permanentError(ErrorCode.Config, 'LUMA_API_KEY is required for the luma backend; see .env.example');
  const wakeups = overrides.wakeups ?? new RedisWakeups({ connect: () => redisConnection(config, 'worker'), channel: `${config.REDIS_PREFIX}:luma-wakeups`, log });
  return new LumaBackend({
    apiKey: config.LUMA_API_KEY, baseURL: config.LUMA_BASE_URL, pollMs: config.LUMA_POLL_MS, slots: config.LUMA_CONCURRENCY,
    createsPerMinute: config.LUMA_CREATES_PER_MINUTE, publicBaseUrl: config.PUBLIC_BASE_URL, assetSecret: config.assetSecret, log, wakeups,
    ...overrides,
  });
}
