import { randomUUID } from 'node:crypto';
import { Routes, type REST } from 'discord.js';
import { aheadOf } from '../../src/admission.ts';
import { activeReplies, getGeneration } from '../../src/generations.ts';
import type { Logger } from '../../src/log.ts';
import type { Runtime } from '../../src/runtime.ts';
import { apiCode } from './deliver.ts';
import * as render from './render.ts';

/**
 * Keeps one status message per job up to date while it waits and renders: at most one edit every
 * `everyMs` (≥ 5 s, as community limits suggest and the AI Horde bot does), only when the text changed,
 * read from the generation row. Edits go through the interaction token while it is safely inside its
 * 15 minutes, then through the bot token; a token Discord refuses (50027, 10015) is never tried again.
 * The final "done"/"failed" edit is the deliverer's.
 *
 * One process edits each status line: it holds a Redis lease on the job, renewed on every poll. The
 * process that took the interaction claims it first; every tracker also looks for active Discord jobs
 * nobody holds (a restart, a crash) and adopts them, editing through the bot token from then on.
 */
export const MIN_PROGRESS_EVERY_MS = 5000;
/** How often a tracker looks for status lines that no process is keeping. */
const ADOPT_EVERY_MS = 15_000;

export interface StatusTarget {
  channelId: string;
  messageId: string;
  /** Edits through the interaction's webhook while it lives. */
  token?: { edit: (body: render.MessageBody) => Promise<unknown>; expiresAt: number };
  /** Lines kept under the status (e.g. a prompt tip). */
  extra?: string[];
}

interface Tracked extends StatusTarget {
  generationId: string;
  timer: NodeJS.Timeout | undefined;
  last: string;
  tokenDead: boolean;
  inFlight: Promise<void> | null;
}

/** Discord codes that mean this interaction token will never work again. */
const DEAD_TOKEN_CODES = new Set([50027, 10015, 10062]);

const ACTIVE_STATES = new Set(['queued', 'dispatched', 'running']);

/** A job still waiting or rendering: its status message is still moving. */
export function isActive(state: string): boolean {
  return ACTIVE_STATES.has(state);
}

export class ProgressTracker {
  private readonly jobs = new Map<string, Tracked>();
  private stopped = false;
  private readonly owner = randomUUID();
  private adoptTimer: NodeJS.Timeout | undefined;

  constructor(private readonly deps: {
    runtime: Runtime; rest: REST; log: Logger; everyMs: number; tokenMarginMs: number; now: () => number;
    /** Runs a poll; the adapter passes its post-ack queue, so polls wait out a burst of interactions. */
    run?: (work: () => Promise<void>) => void;
  }) {}

  get size(): number {
    return this.jobs.size;
  }

  /** Starts tracking; `initial` is the text already shown (so an unchanged status is not re-sent). */
  track(generationId: string, target: StatusTarget, initial: string): void {
    if (this.stopped || this.jobs.has(generationId)) return;
    const job: Tracked = { ...target, generationId, timer: undefined, last: initial, tokenDead: false, inFlight: null };
    this.jobs.set(generationId, job);
    // Claim at once, so another process's adoption pass does not take a line this process is about to edit.
    void this.hold(generationId).catch(() => undefined);
    this.schedule(job);
  }

  /** Stops tracking one job and waits for an edit in flight, so a final edit made next is not overwritten. */
  async forget(generationId: string): Promise<void> {
    const job = this.jobs.get(generationId);
    if (!job) return;
    this.jobs.delete(generationId);
    clearTimeout(job.timer);
    await job.inFlight;
    await this.release(generationId);
  }

  /** Adopts status lines no process keeps now and every ADOPT_EVERY_MS from here on. */
  start(everyMs = ADOPT_EVERY_MS): void {
    this.stopped = false;
    const pass = () => void this.adopt().catch((err: unknown) => this.deps.log.warn({ err }, 'discord: adopting status lines failed'));
    pass();
    this.adoptTimer = setInterval(pass, everyMs);
    this.adoptTimer.unref();
  }

  /** Stops editing and gives the leases back, so the next process adopts these lines at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    clearInterval(this.adoptTimer);
    const held = [...this.jobs.values()];
    this.jobs.clear();
    for (const job of held) clearTimeout(job.timer);
    await Promise.all(held.map(async (job) => {
      await job.inFlight;
      await this.release(job.generationId);
    }));
  }

  /** Active Discord jobs that nobody edits: this process takes them on, through the bot token. */
  async adopt(): Promise<number> {
    let adopted = 0;
    for (const { id, replyTo } of await activeReplies(this.deps.runtime.db, 'discord')) {
      const channelId = typeof replyTo.channelId === 'string' ? replyTo.channelId : undefined;
      const messageId = typeof replyTo.messageId === 'string' ? replyTo.messageId : undefined;
      if (this.stopped || !channelId || !messageId || this.jobs.has(id) || !(await this.hold(id))) continue;
      const job: Tracked = { channelId, messageId, generationId: id, timer: undefined, last: '', tokenDead: true, inFlight: null };
      this.jobs.set(id, job);
      this.schedule(job);
      adopted += 1;
    }
    return adopted;
  }

  private hold(generationId: string): Promise<boolean> {
    return this.deps.runtime.holdLease(`discord-status:${generationId}`, this.owner, 3 * Math.max(this.deps.everyMs, MIN_PROGRESS_EVERY_MS));
  }

  private release(generationId: string): Promise<void> {
    return this.deps.runtime.releaseLease(`discord-status:${generationId}`, this.owner).catch(() => undefined);
  }

  /**
   * Edits a status message: through the token while it is alive, else the bot's own message route.
   * Shared with the handlers so every edit follows the same rule.
   */
  async edit(target: StatusTarget & { tokenDead?: boolean }, body: render.MessageBody): Promise<'token' | 'bot'> {
    const { rest, now, tokenMarginMs } = this.deps;
    if (target.token && !target.tokenDead && now() < target.token.expiresAt - tokenMarginMs) {
      try {
        await target.token.edit(body);
        return 'token';
      } catch (error) {
        if (!DEAD_TOKEN_CODES.has(apiCode(error) ?? 0)) throw error;
        target.tokenDead = true;
      }
    }
    await rest.patch(Routes.channelMessage(target.channelId, target.messageId), { body: { ...body, allowed_mentions: { parse: [] } } });
    return 'bot';
  }

  private schedule(job: Tracked): void {
    const poll = () => {
      job.inFlight = this.tick(job).finally(() => {
        job.inFlight = null;
      });
      return job.inFlight;
    };
    job.timer = setTimeout(() => (this.deps.run ? this.deps.run(poll) : void poll()), Math.max(this.deps.everyMs, MIN_PROGRESS_EVERY_MS));
    job.timer.unref();
  }

  private async tick(job: Tracked): Promise<void> {
    if (this.stopped || !this.jobs.has(job.generationId)) return;
    const { runtime, log, now } = this.deps;
    try {
      const g = await getGeneration(runtime.db, job.generationId);
      if (!g || !isActive(g.state) || !(await this.hold(job.generationId))) {
        // Finished, or another process keeps this line now.
        this.jobs.delete(job.generationId);
        if (g && !isActive(g.state)) await this.release(job.generationId);
        return;
      }
      const ahead = g.state === 'queued' ? await aheadOf(runtime.db, g.id) : 0;
      const body = render.progress(g, ahead, now(), job.extra);
      if (body.content !== job.last && this.jobs.has(job.generationId)) {
        await this.edit(job, body);
        job.last = body.content;
      }
    } catch (error) {
      log.warn({ err: error, generationId: job.generationId }, 'discord: progress edit failed');
    }
    if (this.jobs.has(job.generationId)) this.schedule(job);
  }
}
