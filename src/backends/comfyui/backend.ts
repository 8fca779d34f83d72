import path from 'node:path';
import type { Redis } from 'ioredis';
import { ConfigError } from '../../config.ts';
import { AppError, ErrorCode, permanentError, transientError, userError } from '../../errors.ts';
import { priceOf } from '../../ledger/pricing.ts';
import type { Logger } from '../../log.ts';
import type { MediaBinaries } from '../../media/ffmpeg.ts';
import { lastFrame } from '../../media/frames.ts';
import { aspectRatios, cameraMoves } from '../../media/sizes.ts';
import type { StoredRequest } from '../../request.ts';
import type { Backend, BackendCapabilities, BackendJob, BackendOutcome, Progress, RunHooks } from '../types.ts';
import { ServerUnreachable } from './client.ts';
import { clientIdFor, decodeHandle, encodeHandle, promptIdFor, seedFor, type PromptRef } from './ids.ts';
import { ServerPool, type PoolTiming, type ServerState } from './pool.ts';
import { outputFile, type HistoryEntry, type OutputFile } from './schemas.ts';
import { watchPrompt } from './watch.ts';
import { Workflow } from './workflow.ts';

export interface ComfyUITiming extends PoolTiming {
  /** History/queue poll while the socket is down (and ×socketPollFactor while it is up). */
  pollMs: number;
  socketPollFactor: number;
  deadAfterFailures: number;
  /** How long a new job waits for a free server before a transient failure (the worker retries it). */
  claimTimeoutMs: number;
  /** How long a job whose server died waits for another before failing for good. */
  moveWaitMs: number;
  /** Resubmissions (server died or forgot the prompt) before failing for good. */
  maxMoves: number;
  promptTimeoutMs: number;
  requestTimeoutMs: number;
  /** GPU seconds per clip assumed before any has been measured (wait estimates only). */
  typicalSeconds: number;
}

export const defaultTiming = {
  lockTtlMs: 30_000,
  probeEveryMs: 15_000,
  backoffBaseMs: 1000,
  backoffMaxMs: 60_000,
  claimPollMs: 250,
  pollMs: 2000,
  socketPollFactor: 5,
  deadAfterFailures: 3,
  claimTimeoutMs: 15 * 60_000,
  moveWaitMs: 60_000,
  maxMoves: 2,
  promptTimeoutMs: 60 * 60_000,
  requestTimeoutMs: 10_000,
  typicalSeconds: 240,
} as const satisfies ComfyUITiming;

export interface ComfyUIBackendOptions {
  urls: readonly string[];
  /** Name of the template in workflows/ (COMFYUI_WORKFLOW). */
  workflow: string;
  workflowsDir?: string;
  creditsPerGpuSecond: number;
  redis: Redis;
  /** Quit `redis` on close (the registry makes its own connection; tests inject theirs). */
  ownsRedis?: boolean;
  redisPrefix: string;
  bins: MediaBinaries;
  log: Logger;
  timing?: Partial<ComfyUITiming>;
}

const LOCATION_TTL_S = 7 * 24 * 3600;

/**
 * Self-hosted GPUs: a pool of ComfyUI servers (one per GPU), one prompt at a time each, across every
 * worker process. The prompt id is a UUIDv5 of the generation id, so a resubmission after a crash is
 * recognised instead of paid for twice in GPU time. The handle is `<prompt id>@<server>`; when a server
 * dies mid-prompt the job is resubmitted elsewhere with the same prompt id, and the new location is kept
 * in Redis for whichever process resumes or fetches next.
 */
export class ComfyUIBackend implements Backend {
  readonly name = 'comfyui' as const;
  readonly limits;
  readonly pool: ServerPool;
  private readonly timing: ComfyUITiming;
  private readonly progressByPrompt = new Map<string, Progress>();
  private workflow: Workflow | undefined;
  private readonly starting: Promise<void>;
  private startError: AppError | undefined;
  private started = false;
  private readonly closing = new AbortController();

  constructor(private readonly options: ComfyUIBackendOptions) {
    if (options.urls.length === 0) throw new ConfigError('COMFYUI_URLS names no server');
    this.timing = { ...defaultTiming, ...options.timing };
    this.limits = { slots: options.urls.length };
    this.pool = new ServerPool({
      urls: options.urls, redis: options.redis, prefix: options.redisPrefix, timing: this.timing, log: options.log,
      requestTimeoutMs: this.timing.requestTimeoutMs, verify: (server) => this.verify(server),
    });
    this.starting = this.start();
    this.starting.then(() => {
      this.started = true;
    }, (error: unknown) => {
      this.startError = error instanceof AppError ? error : new ConfigError(String(error));
    });
  }

  /** Resolves once the workflow is loaded and every reachable server has been checked against it. */
  ready(): Promise<void> {
    return this.starting;
  }

  private async start(): Promise<void> {
    this.workflow = await Workflow.load(this.options.workflow, this.options.workflowsDir);
    await this.pool.start();
    const down = this.pool.servers.filter((s) => !s.healthy);
    if (down.length > 0) this.options.log.warn({ servers: down.map((s) => ({ url: s.url, error: s.lastError })) }, 'comfyui servers unreachable at startup; probing them with backoff');
  }

  /** A server enters rotation only if it has every node type (and model file) the templates use. */
  private async verify(server: ServerState): Promise<void> {
    const info = await server.client.objectInfo();
    const problems = this.workflow!.problems(info);
    if (problems.length > 0) {
      throw new ConfigError(`COMFYUI_WORKFLOW=${this.options.workflow} cannot run on ${server.url}: ${problems.join('; ')}. ` +
        'Update ComfyUI there, install the custom nodes and models the template needs, or choose another COMFYUI_WORKFLOW.');
    }
  }

  capabilities(): BackendCapabilities {
    return {
      operations: ['generate', 'extend'],
      models: [this.options.workflow],
      aspects: aspectRatios,
      resolutions: ['540p', '720p'],
      durations: ['5s', '9s'],
      // These models take no camera input: the move is added to the prompt as words.
      cameraMoves,
      startImage: true,
      // No end keyframe and no loop in these templates: admission refuses both with a clear message.
      endImage: false,
      loop: false,
    };
  }

  estimate(request: StoredRequest): number | null {
    if (request.operation !== 'generate' && request.operation !== 'extend') return null;
    return priceOf({ backend: 'comfyui', operation: request.operation, resolution: request.resolution, duration: request.duration });
  }

  check(request?: StoredRequest): void {
    if (request?.reverse) {
      throw userError(ErrorCode.UnsupportedOperation, "The GPU servers can only extend a clip forwards (from its last frame). Use --backend luma or preview for a clip that leads into this one.");
    }
    if (this.startError) {
      throw userError(ErrorCode.BackendUnavailable, 'The GPU servers are not set up correctly right now. Try --backend preview, or ask the operator (the worker log says why).');
    }
  }

  async estimatedWaitSeconds(): Promise<number | undefined> {
    if (!this.started) return undefined;
    const healthy = this.pool.healthy();
    if (healthy.length === 0) return Number.POSITIVE_INFINITY;
    const holders = await this.pool.holders();
    const free = this.pool.servers.filter((s, i) => s.healthy && s.usable && holders[i] === null).length;
    if (free > 0) return 0;
    const typical = Number(await this.options.redis.get(this.key('typical'))) || this.timing.typicalSeconds;
    const waiting = await this.pool.waiting();
    // Each busy server is half-way through on average; every `healthy` waiters ahead add one clip.
    return Math.round(typical / 2 + typical * Math.floor(waiting / healthy.length));
  }

  async submit(job: BackendJob, signal: AbortSignal): Promise<string> {
    await this.starting;
    const promptId = promptIdFor(job.generationId);
    // A crash between POST /prompt and recording the handle: the prompt is already somewhere.
    const known = await this.locate(promptId);
    if (known && (await this.present(known))) return encodeHandle(known);
    for (let attempt = 0; ; attempt++) {
      const server = await this.pool.claim(promptId, { signal, timeoutMs: this.timing.claimTimeoutMs });
      // We may already hold this server from before a crash that came between POST /prompt and recording it.
      const there = { promptId, server: server.url };
      if (await this.present(there)) {
        return encodeHandle(await this.remember(there));
      }
      try {
        return encodeHandle(await this.submitTo(server, promptId, job, signal));
      } catch (error) {
        if (!(error instanceof ServerUnreachable) || attempt >= this.pool.servers.length) throw error;
        this.options.log.warn({ server: server.url, generationId: job.generationId }, 'comfyui server unreachable at submit; trying another');
      }
    }
  }

  async resume(handle: string, job: BackendJob, hooks: RunHooks): Promise<BackendOutcome> {
    await this.starting;
    const promptId = promptIdFor(job.generationId);
    let ref = (await this.locate(promptId)) ?? decodeHandle(handle);
    const signal = AbortSignal.any([hooks.signal, this.closing.signal]);
    const onProgress = (p: Progress) => {
      this.progressByPrompt.set(promptId, p);
      hooks.onProgress(p);
    };
    let moves = 0;
    try {
      for (;;) {
        const server = this.pool.get(ref.server);
        const result = server
          ? await this.watchOn(server, ref, promptId, signal, onProgress)
          : { kind: 'unreachable' as const, error: new ServerUnreachable(ref.server, 'no longer in COMFYUI_URLS') };
        if (result.kind === 'finished') {
          if (server) await this.pool.release(server, promptId).catch(() => undefined);
          return await this.outcome(result.entry, ref, job, moves);
        }
        moves += 1;
        if (moves > this.timing.maxMoves) {
          throw permanentError(ErrorCode.BackendUnavailable, `the GPU servers lost this clip ${moves} times`, { context: { promptId } });
        }
        if (result.kind === 'missing' && server) {
          // The server restarted (its queue and history are in memory only): run it there again.
          this.options.log.warn({ server: server.url, promptId }, 'comfyui server no longer knows the prompt; resubmitting');
          const target = (await this.pool.hold(server, promptId)) ? server : await this.claimElsewhere(promptId, undefined, signal);
          ref = await this.resubmit(target, promptId, job, signal);
          continue;
        }
        if (server) {
          this.pool.markDown(server, result.kind === 'unreachable' ? result.error.message : 'unreachable');
          await this.pool.release(server, promptId).catch(() => undefined);
        }
        this.options.log.warn({ server: ref.server, promptId, moves }, 'comfyui server died mid-prompt; moving the job');
        const target = await this.claimElsewhere(promptId, ref.server, signal);
        ref = await this.resubmit(target, promptId, job, signal);
      }
    } catch (error) {
      if (!hooks.signal.aborted) this.progressByPrompt.delete(promptId);
      if (error instanceof ServerUnreachable) {
        throw permanentError(ErrorCode.BackendUnavailable, error.message, { cause: error, context: { promptId } });
      }
      throw error;
    }
  }

  private async watchOn(server: ServerState, ref: PromptRef, promptId: string, signal: AbortSignal, onProgress: (p: Progress) => void) {
    // Renewed while the prompt runs; if another prompt holds the server now (our lock lapsed while no
    // one watched), ours still finishes in the server's own queue, so we wait without the lock.
    await this.pool.hold(server, promptId).catch(() => false);
    const renew = setInterval(() => void this.pool.hold(server, promptId).catch(() => undefined), Math.max(100, this.timing.lockTtlMs / 3));
    renew.unref();
    try {
      return await watchPrompt({
        client: server.client, promptId: ref.promptId, clientId: clientIdFor(promptId), signal, onProgress,
        pollMs: this.timing.pollMs, socketPollFactor: this.timing.socketPollFactor,
        deadAfterFailures: this.timing.deadAfterFailures, timeoutMs: this.timing.promptTimeoutMs,
      });
    } finally {
      clearInterval(renew);
    }
  }

  /** submitTo, except that a server found dead on the way is left for the next watch to notice (and move on from). */
  private async resubmit(target: ServerState, promptId: string, job: BackendJob, signal: AbortSignal): Promise<PromptRef> {
    try {
      return await this.submitTo(target, promptId, job, signal);
    } catch (error) {
      if (error instanceof ServerUnreachable) return { promptId, server: target.url };
      throw error;
    }
  }

  private async claimElsewhere(promptId: string, exclude: string | undefined, signal: AbortSignal): Promise<ServerState> {
    try {
      return await this.pool.claim(promptId, { signal, timeoutMs: this.timing.moveWaitMs, ...(exclude ? { exclude: new Set([exclude]) } : {}) });
    } catch (error) {
      if (error instanceof AppError && error.code === ErrorCode.Cancelled) throw error;
      throw permanentError(ErrorCode.BackendUnavailable, `its GPU server failed and no other was free: ${(error as Error).message}`, { cause: error });
    }
  }

  /** Uploads the start image (if any), fills the template and POSTs it with our prompt id; records where it went. */
  private async submitTo(server: ServerState, promptId: string, job: BackendJob, signal: AbortSignal): Promise<PromptRef> {
    const workflow = this.workflow!;
    try {
      const image = await this.startImage(job, signal);
      const uploaded = image ? await server.client.uploadImage(image, `dreambot-${promptId}${path.extname(image) || '.png'}`) : undefined;
      const plan = workflow.plan(job.request);
      const prompt = workflow.build({ prompt: workflow.promptText(job.request), seed: seedFor(job.generationId), plan, ...(uploaded ? { image: uploaded } : {}) });
      const runId = await server.client.submit({ prompt, client_id: clientIdFor(promptId), prompt_id: promptId });
      if (runId !== promptId) this.options.log.warn({ server: server.url }, 'this ComfyUI ignores client-chosen prompt ids (update it): resubmission after a crash is not idempotent');
      const ref = await this.remember({ promptId: runId, server: server.url }, promptId);
      this.options.log.info({ server: server.url, promptId, generationId: job.generationId }, 'comfyui prompt submitted');
      return ref;
    } catch (error) {
      await this.pool.release(server, promptId).catch(() => undefined);
      if (error instanceof ServerUnreachable) this.pool.markDown(server, error.message);
      throw error;
    }
  }

  private async startImage(job: BackendJob, signal: AbortSignal): Promise<string | undefined> {
    if (job.request.operation === 'extend') {
      if (!job.inputs.parentClip) throw permanentError(ErrorCode.BackendFailed, 'the clip to extend is no longer stored');
      const file = path.join(job.workDir, 'parent-last.png');
      await lastFrame(this.options.bins, job.inputs.parentClip, file, { signal });
      return file;
    }
    return job.inputs.startImage;
  }

  private async outcome(entry: HistoryEntry, ref: PromptRef, job: BackendJob, moves: number): Promise<BackendOutcome> {
    const status = entry.status;
    const messages = status?.messages ?? [];
    const find = (type: string) => messages.find(([t]) => t === type)?.[1];
    if (status && status.status_str !== 'success') {
      const failed = find('execution_error');
      const interrupted = find('execution_interrupted');
      const where = String(failed?.node_type ?? interrupted?.node_type ?? 'unknown node');
      const why = interrupted ? 'interrupted' : String(failed?.exception_message ?? 'failed').trim();
      throw permanentError(ErrorCode.BackendFailed, `ComfyUI ${ref.server} failed the prompt at ${where}: ${why}`, {
        context: { promptId: ref.promptId, nodeType: where, exceptionType: failed?.exception_type },
      });
    }
    const started = Number(find('execution_start')?.timestamp);
    const ended = Number(find('execution_success')?.timestamp);
    const gpuSeconds = Number.isFinite(started) && Number.isFinite(ended) && ended >= started ? (ended - started) / 1000 : undefined;
    const estimate = this.estimate(job.request) ?? undefined;
    const measured = gpuSeconds === undefined ? undefined : Math.max(1, Math.ceil(gpuSeconds * this.options.creditsPerGpuSecond));
    const actualCredits = measured === undefined ? estimate : estimate === undefined ? measured : Math.min(estimate, measured);
    if (gpuSeconds !== undefined) await this.learn(gpuSeconds).catch(() => undefined);
    this.progressByPrompt.set(promptIdFor(job.generationId), { fraction: 1, state: 'completed' });
    const plan = this.workflow!.plan(job.request);
    return {
      ...(actualCredits === undefined ? {} : { actualCredits }),
      meta: { model: this.options.workflow, server: ref.server, promptId: ref.promptId, gpuSeconds, rendered: plan, moves },
    };
  }

  /** A running average of GPU seconds per clip, shared by every process (for wait estimates). */
  private async learn(seconds: number): Promise<void> {
    const key = this.key('typical');
    const previous = Number(await this.options.redis.get(key)) || seconds;
    await this.options.redis.set(key, String(Math.round((previous * 0.8 + seconds * 0.2) * 10) / 10));
  }

  async progress(handle: string): Promise<Progress> {
    const { promptId } = decodeHandle(handle);
    const known = this.progressByPrompt.get(promptId);
    if (known) return known;
    const ref = (await this.locate(promptId)) ?? decodeHandle(handle);
    const server = this.pool.get(ref.server);
    if (!server) return { fraction: 0, state: 'queued' };
    try {
      const entry = await server.client.history(ref.promptId);
      if (entry) return entry.status?.status_str === 'success' ? { fraction: 1, state: 'completed' } : { fraction: 0, state: 'failed' };
      const queue = await server.client.queue();
      return { fraction: 0, state: queue.running.includes(ref.promptId) ? 'running' : 'queued' };
    } catch {
      return { fraction: 0, state: 'queued', note: 'GPU server unreachable' };
    }
  }

  /** Interrupts the prompt only where it is the one running (or drops it from that server's queue). */
  async cancel(handle: string): Promise<void> {
    const original = decodeHandle(handle);
    const ref = (await this.locate(original.promptId)) ?? original;
    const server = this.pool.get(ref.server);
    this.progressByPrompt.delete(original.promptId);
    if (!server) return;
    try {
      const queue = await server.client.queue();
      if (queue.running.includes(ref.promptId)) await server.client.interrupt(ref.promptId);
      else if (queue.pending.includes(ref.promptId)) await server.client.deleteQueued(ref.promptId);
    } catch (error) {
      if (!(error instanceof ServerUnreachable)) throw error;
    } finally {
      await this.pool.release(server, original.promptId).catch(() => undefined);
    }
  }

  async fetchResult(handle: string, job: BackendJob, destination: string, signal: AbortSignal): Promise<void> {
    await this.starting;
    const ref = (await this.locate(promptIdFor(job.generationId))) ?? decodeHandle(handle);
    const server = this.pool.get(ref.server);
    if (!server) throw transientError(ErrorCode.BackendFailed, `server ${ref.server} is no longer configured`);
    const entry = await server.client.history(ref.promptId);
    // Gone (the server restarted): a transient error makes the worker resume, which resubmits.
    if (!entry) throw transientError(ErrorCode.BackendFailed, `ComfyUI ${ref.server} no longer has the output of ${ref.promptId}`);
    const file = this.videoIn(entry);
    if (!file) throw permanentError(ErrorCode.BackendFailed, `ComfyUI ${ref.server} produced no video for ${ref.promptId}`);
    await server.client.download(file, destination, signal);
    this.progressByPrompt.delete(promptIdFor(job.generationId));
  }

  /** The saver's file under its pinned key (core SaveVideo: `images` with `animated: [true]`), else any video file. */
  private videoIn(entry: HistoryEntry): OutputFile | undefined {
    const { node, key } = this.workflow!.mapping.output;
    const pinned = entry.outputs[node]?.[key];
    const candidates: unknown[] = Array.isArray(pinned) ? pinned : [];
    for (const out of Object.values(entry.outputs)) for (const k of ['videos', 'gifs', 'images']) if (Array.isArray(out[k])) candidates.push(...(out[k] as unknown[]));
    for (const candidate of candidates) {
      const parsed = outputFile.safeParse(candidate);
      if (parsed.success && /\.(mp4|webm|mov|mkv)$/i.test(parsed.data.filename)) return parsed.data;
    }
    return undefined;
  }

  /** Where the prompt runs now (it may have moved since the handle was recorded). */
  private async locate(promptId: string): Promise<PromptRef | undefined> {
    const at = await this.options.redis.get(this.key(`at:${promptId}`));
    return at ? decodeHandle(at) : undefined;
  }

  /** Records where the prompt for `promptId` runs now, for whichever process resumes or fetches next. */
  private async remember(ref: PromptRef, promptId = ref.promptId): Promise<PromptRef> {
    await this.options.redis.set(this.key(`at:${promptId}`), encodeHandle(ref), 'EX', LOCATION_TTL_S);
    return ref;
  }

  /** Is the prompt queued, running or finished on its server? */
  private async present(ref: PromptRef): Promise<boolean> {
    const server = this.pool.get(ref.server);
    if (!server) return false;
    try {
      if (await server.client.history(ref.promptId)) return true;
      const queue = await server.client.queue();
      return queue.running.includes(ref.promptId) || queue.pending.includes(ref.promptId);
    } catch {
      return false;
    }
  }

  private key(suffix: string): string {
    return `${this.options.redisPrefix}:comfyui:${suffix}`;
  }

  async close(): Promise<void> {
    this.closing.abort();
    this.pool.stop();
    await this.starting.catch(() => undefined);
    if (this.options.ownsRedis) await this.options.redis.quit().catch(() => undefined);
  }
}
