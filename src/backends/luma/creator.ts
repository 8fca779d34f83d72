import type LumaAI from 'lumaai';
import { ErrorCode, permanentError, transientError } from '../../errors.ts';
import type { Logger } from '../../log.ts';
import { createFailure, isAbort, isAmbiguous, withSignal } from './api-errors.ts';
import { CreateWindow } from './create-window.ts';
import { createdAtMs, generationSchema, idOf, parseGeneration, type LumaGeneration } from './generation.ts';
import { findByRequest, type ListPage } from './reconcile.ts';
import type { LumaCall } from './request-body.ts';

export interface CreatorOptions {
  client: LumaAI;
  log: Logger;
  createsPerMinute: number;
  createTimeoutMs: number;
  readTimeoutMs: number;
  /** Looks after an ambiguous create: this many list passes, this far apart. */
  reconcileTries: number;
  reconcileDelayMs: number;
}

const MAX_CLAIMED = 10_000;
/** How far back to look for a create sent by a process that died before recording it. */
const AFTER_CRASH_LOOKBACK_MS = 15 * 60 * 1000;

/**
 * Every billable call goes through here. Creates are sent once (`maxRetries: 0`: the API has no
 * idempotency key, so the SDK's own retry could start a second, billed generation). When the answer
 * is lost, the generation list is searched for it instead of sending it again; only when a later
 * attempt still finds nothing is it sent anew.
 */
export class LumaCreator {
  readonly window: CreateWindow;
  /** Luma ids handed to a job by this process, so a search never hands one to a second job. */
  private readonly claimed = new Set<string>();
  /** dreambot generation id → when its first unanswered create was sent. */
  private readonly unanswered = new Map<string, number>();
  private rateLimitedInARow = 0;

  constructor(private readonly options: CreatorOptions) {
    this.window = new CreateWindow(options.createsPerMinute);
  }

  /** Creates (or finds, after a lost answer) the Luma generation for `generationId`; returns its id. */
  async create(generationId: string, call: LumaCall, signal: AbortSignal, submitAttempt = 1): Promise<string> {
    const { log } = this.options;
    // A later submit of the same generation after a crash elsewhere: the earlier create may have landed.
    const earlier = this.unanswered.get(generationId) ?? (submitAttempt > 1 ? Date.now() - AFTER_CRASH_LOOKBACK_MS : undefined);
    if (earlier !== undefined) {
      const found = await this.search(call, earlier, signal, 1);
      if (found) return this.claim(generationId, found);
    }
    const slot = this.window.reserve();
    if (!slot.ok) {
      throw transientError(ErrorCode.RateLimited, `${this.options.createsPerMinute} Luma creates in the last minute already`, { retryAfterMs: slot.waitMs });
    }
    const sentAt = Date.now();
    try {
      const created = parseGeneration(await this.send(call, signal), 'create answer');
      const id = idOf(created);
      if (!id) throw transientError(ErrorCode.BackendFailed, 'Luma answered a create without a generation id');
      this.rateLimitedInARow = 0;
      return this.claim(generationId, id);
    } catch (error) {
      if (isAbort(error) || signal.aborted || isAmbiguous(error)) {
        // It may have been accepted: remember, and look for it before anything is sent again.
        this.unanswered.set(generationId, earlier ?? sentAt);
        if (isAbort(error) || signal.aborted) throw permanentError(ErrorCode.Cancelled, 'create cancelled');
        log.warn({ generationId, err: error }, 'Luma create got no clear answer; looking for it in the generation list');
        const found = await this.search(call, earlier ?? sentAt, signal, this.options.reconcileTries);
        if (found) {
          log.info({ generationId, lumaId: found }, 'found the unanswered create in the generation list');
          return this.claim(generationId, found);
        }
        throw transientError(ErrorCode.BackendUnavailable, 'Luma did not confirm the create and the generation list does not show it yet', { cause: error });
      }
      this.window.release(slot.token);
      const failure = createFailure(error, log, 'create');
      if (failure.code === ErrorCode.RateLimited && failure.retryAfterMs === undefined) {
        // v1 documents no rate-limit headers: back off 2 s, 4 s, 8 s … up to a minute.
        this.rateLimitedInARow += 1;
        throw transientError(failure.code, failure.message, { cause: error, retryAfterMs: Math.min(60_000, 1000 * 2 ** this.rateLimitedInARow) });
      }
      throw failure;
    }
  }

  /** Marks a Luma id as belonging to a job here, so no search hands it to another request. */
  markClaimed(lumaId: string): void {
    this.claimed.add(lumaId);
  }

  /**
   * The generation that replaced a transiently failed one (made by this process or, before a crash,
   * another): the earliest later generation with the same request.
   */
  async replacementOf(failedId: string, failed: LumaGeneration, signal: AbortSignal): Promise<string | undefined> {
    if (!failed.request) return undefined;
    const found = await findByRequest(this.list, failed.request, {
      since: (createdAtMs(failed) ?? Date.now()) + 1, skewMs: 0, exclude: new Set([failedId, ...this.claimed]), signal,
    }).catch((err: unknown) => {
      this.options.log.warn({ err, failedId }, 'could not look for a replacement generation');
      return undefined;
    });
    return found ? idOf(found) : undefined;
  }

  private send(call: LumaCall, signal: AbortSignal) {
    const { client, createTimeoutMs } = this.options;
    return withSignal(signal, (s) => {
      const options = { maxRetries: 0, timeout: createTimeoutMs, signal: s };
      switch (call.kind) {
        case 'video': return client.generations.create(call.body, options);
        case 'upscale': return client.generations.upscale(call.parentId, call.body, options);
        case 'audio': return client.generations.audio(call.parentId, call.body, options);
      }
    });
  }

  private async search(call: LumaCall, since: number, signal: AbortSignal, tries: number): Promise<string | undefined> {
    const request = call.body as Record<string, unknown>;
    for (let i = 0; i < tries; i++) {
      if (i > 0) await new Promise((r) => setTimeout(r, this.options.reconcileDelayMs));
      try {
        const found = await findByRequest(this.list, request, { since, exclude: this.claimed, signal });
        const id = found ? idOf(found) : undefined;
        if (id) return id;
      } catch (err) {
        this.options.log.warn({ err }, 'could not search the Luma generation list');
      }
    }
    return undefined;
  }

  private readonly list: ListPage = async (query, signal) => {
    const page = await withSignal(signal, (s) => this.options.client.generations.list(query, { maxRetries: 2, timeout: this.options.readTimeoutMs, signal: s }));
    return (page.generations ?? []).flatMap((g) => {
      const parsed = generationSchema.safeParse(g);
      return parsed.success ? [parsed.data] : [];
    });
  };

  private claim(generationId: string, lumaId: string): string {
    this.unanswered.delete(generationId);
    this.claimed.add(lumaId);
    if (this.claimed.size > MAX_CLAIMED) this.claimed.delete(this.claimed.values().next().value!);
    return lumaId;
  }
}
