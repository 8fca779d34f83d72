/**
 * Results back to Slack. The job message is posted when a request is admitted and updated with its
 * progress (chat.update at most every 5 s per message, enforced through Redis so every bot process
 * shares the budget); the finished clip is uploaded with files.uploadV2 into the job's thread, then a
 * card with the buttons is posted beside it. Never through response_url (5 uses in 30 minutes).
 *
 * Delivery is at least once, so each step is recorded in `deliveries` before the next: a retry skips
 * what is already there and never posts twice.
 */
import type { types, webApi } from '@slack/bolt';
import { aheadOf } from '../../src/admission.ts';
import { findDelivery, recordDelivery } from '../../src/deliveries.ts';
import { ErrorCode, isAppError, permanentError, transientError, type AppError } from '../../src/errors.ts';
import { getGeneration, type Generation } from '../../src/generations.ts';
import type { Logger } from '../../src/log.ts';
import type { Delivered, Deliverer, DeliveryContext } from '../../src/queue/delivery-worker.ts';
import type { Runtime } from '../../src/runtime.ts';
import { NOT_INSTALLED, type SlackTokens, type WorkspaceRef } from './installations.ts';
import { messageKey, splitMessageKey } from './parse.ts';
import { clipCard, jobMessage, type JobStatus, type MessageContent } from './render.ts';

type WebClient = webApi.WebClient;

/** What admission stores as `replyTo` for Slack: ids only, so any bot process can act on it. */
export interface SlackReply {
  platform: 'slack';
  channelId: string;
  /** The thread the job message and the clip go in; absent for a top-level /dream (the job message starts one). */
  threadId?: string;
  /** The member who asked: mentioned in the messages and allowed to delete the clip. */
  userId: string;
  /** "re-rolled", "remixed"…; absent for a new dream. */
  verb?: string;
  /** The workspace the request came from (Slack Connect, org installs). */
  workspaceId?: string;
  /** The org, when the workspace belongs to one (Enterprise Grid). */
  enterpriseId?: string;
  /** The app is installed org-wide: the org's installation (and token) serves this workspace. */
  enterpriseInstall?: boolean;
}

export function replyOf(g: Pick<Generation, 'replyTo' | 'id'>): SlackReply {
  const r = g.replyTo as Partial<SlackReply> | null;
  if (!r || r.platform !== 'slack' || !r.channelId || !r.userId) throw permanentError(ErrorCode.Internal, `generation ${g.id} has no Slack reply target`);
  return r as SlackReply;
}

/** The installation whose bot token answers this reply: the org's for an org-wide install, else the workspace's. */
export function workspaceOf(reply: SlackReply): WorkspaceRef {
  return { teamId: reply.workspaceId, enterpriseId: reply.enterpriseId, isEnterpriseInstall: !!reply.enterpriseInstall };
}

/** Slack's answers, in the service's one error family: what to retry, what to give up on. */
export function asSlackError(error: unknown): AppError {
  // Already sorted (the app is no longer installed there, a step of ours that found nothing to post).
  if (isAppError(error)) return error;
  const e = error as { code?: string; data?: { error?: string }; retryAfter?: number; message?: string };
  if (e?.code === 'slack_webapi_rate_limited_error') return transientError(ErrorCode.RateLimited, 'Slack asked us to slow down', { retryAfterMs: (e.retryAfter ?? 1) * 1000, cause: error });
  const code = e?.data?.error;
  if (code === 'ratelimited') return transientError(ErrorCode.RateLimited, 'Slack asked us to slow down', { retryAfterMs: 1000, cause: error });
  const hopeless = ['not_in_channel', 'channel_not_found', 'is_archived', 'invalid_auth', 'account_inactive', 'token_revoked', 'missing_scope',
    'file_uploads_disabled', 'file_upload_size_restricted', 'file_uploads_except_images_disabled', 'file_type_not_allowed', 'invalid_blocks', 'msg_too_long', 'no_permission'];
  if (code && hopeless.includes(code)) return permanentError(ErrorCode.BackendFailed, `Slack refused: ${code}`, { cause: error, context: { slack: code } });
  return transientError(ErrorCode.Internal, `Slack call failed: ${code ?? e?.message ?? String(error)}`, { cause: error });
}

const blocks = (content: MessageContent) => content.blocks as unknown as types.KnownBlock[];

interface Tracked {
  /** The bot client of the job's workspace. */
  client: WebClient;
  channel: string;
  ts: string;
  requester: string;
  verb?: string;
  creditsLeft?: number;
  last: string;
  /** Not looked at again before this (ms epoch): an update can't go out sooner anyway. */
  due: number;
}

export interface JobMessagesDeps {
  runtime: Runtime;
  log: Logger;
  /** Minimum time between two chat.update calls on one message. */
  updateEveryMs: number;
  /** How often tracked jobs are looked at. */
  pollMs?: number;
  /** At most this many jobs are looked at per poll, oldest check first, so a deep queue costs a bounded load. */
  perPoll?: number;
  /** True while requests arrive back to back: progress polls wait, acks come first. */
  busy?: () => boolean;
}

/** Job messages: post, track progress, update within the rate the channel should see. */
export class JobMessages {
  private readonly tracked = new Map<string, Tracked>();
  private readonly timers = new Set<NodeJS.Timeout>();
  private ticker: NodeJS.Timeout | undefined;
  private ticking = false;

  constructor(private readonly deps: JobMessagesDeps) {}

  start(): void {
    this.ticker = setInterval(() => void this.tick(), this.deps.pollMs ?? 1000);
    this.ticker.unref();
  }

  stop(): void {
    if (this.ticker) clearInterval(this.ticker);
    for (const t of this.timers) clearTimeout(t);
    this.timers.clear();
    this.tracked.clear();
  }

  private throttleKey(channel: string, ts: string): string {
    return `${this.deps.runtime.config.REDIS_PREFIX}:slack:update:${channel}:${ts}`;
  }

  /** Takes this message's update slot; false when the last update was less than updateEveryMs ago. */
  private async slot(channel: string, ts: string): Promise<boolean> {
    const ok = await this.deps.runtime.redis.set(this.throttleKey(channel, ts), '1', 'PX', this.deps.updateEveryMs, 'NX');
    return ok === 'OK';
  }

  /** Posts the job message and records it, so the deliverer (in any process) finds its thread. */
  async post(g: Generation, input: { client: WebClient; channel: string; threadTs?: string; requester: string; verb?: string; creditsLeft?: number; status: JobStatus }): Promise<{ channel: string; ts: string }> {
    const content = jobMessage({ generation: g, requester: input.requester, ...(input.verb ? { verb: input.verb } : {}), ...(input.creditsLeft !== undefined ? { creditsLeft: input.creditsLeft } : {}), status: input.status });
    const posted = await input.client.chat.postMessage({ channel: input.channel, text: content.text, blocks: blocks(content), ...(input.threadTs ? { thread_ts: input.threadTs } : {}), unfurl_links: false });
    const channel = posted.channel ?? input.channel;
    const ts = posted.ts!;
    await recordDelivery(this.deps.runtime.db, { generationId: g.id, platform: 'slack', kind: 'job', channelId: channel, messageId: messageKey(channel, ts) });
    await this.slot(channel, ts);
    this.tracked.set(g.id, {
      client: input.client, channel, ts, requester: input.requester, ...(input.verb ? { verb: input.verb } : {}), ...(input.creditsLeft !== undefined ? { creditsLeft: input.creditsLeft } : {}),
      last: JSON.stringify(content), due: Date.now() + this.deps.updateEveryMs,
    });
    return { channel, ts };
  }

  untrack(generationId: string): void {
    this.tracked.delete(generationId);
  }

  /**
   * A last word on a job message (done, failed, deleted): sent as soon as the update slot frees up.
   * `wait` keeps the caller until it is sent; otherwise it goes out in the background.
   */
  async finish(client: WebClient, channel: string, ts: string, content: MessageContent, wait: boolean): Promise<void> {
    const send = async (): Promise<void> => {
      if (!(await this.slot(channel, ts))) {
        const ttl = await this.deps.runtime.redis.pttl(this.throttleKey(channel, ts));
        await new Promise<void>((resolve) => {
          const t = setTimeout(() => { this.timers.delete(t); resolve(); }, Math.max(50, ttl + 10));
          this.timers.add(t);
        });
        return send();
      }
      await client.chat.update({ channel, ts, text: content.text, blocks: blocks(content) });
    };
    if (wait) return send();
    send().catch((err: unknown) => this.deps.log.warn({ err: asSlackError(err), channel, ts }, 'slack: final job message update failed'));
  }

  private async tick(): Promise<void> {
    if (this.ticking || this.tracked.size === 0 || this.deps.busy?.()) return;
    this.ticking = true;
    try {
      const now = Date.now();
      const due = [...this.tracked].filter(([, t]) => t.due <= now).sort((a, b) => a[1].due - b[1].due).slice(0, this.deps.perPoll ?? 25);
      for (const [id, t] of due) {
        t.due = now + this.deps.updateEveryMs;
        const g = await getGeneration(this.deps.runtime.db, id);
        if (!g || !['queued', 'dispatched', 'running'].includes(g.state)) {
          this.tracked.delete(id);
          continue;
        }
        const status: JobStatus = g.state === 'running'
          ? { kind: 'running', progress: g.progress, note: g.progressNote }
          : { kind: 'queued', ahead: g.state === 'queued' ? await aheadOf(this.deps.runtime.db, id) : 0 };
        const content = jobMessage({ generation: g, requester: t.requester, ...(t.verb ? { verb: t.verb } : {}), ...(t.creditsLeft !== undefined ? { creditsLeft: t.creditsLeft } : {}), status });
        const text = JSON.stringify(content);
        if (text === t.last || !(await this.slot(t.channel, t.ts))) continue;
        t.last = text;
        await t.client.chat.update({ channel: t.channel, ts: t.ts, text: content.text, blocks: blocks(content) })
          .catch((err: unknown) => this.deps.log.warn({ err: asSlackError(err), generationId: id }, 'slack: progress update failed'));
      }
    } catch (err) {
      this.deps.log.warn({ err }, 'slack: progress tick failed');
    } finally {
      this.ticking = false;
    }
  }
}

export interface SlackDelivererDeps {
  runtime: Runtime;
  /** The bot client of the generation's workspace (one token, or its installation's). */
  tokens: SlackTokens;
  log: Logger;
  jobs: JobMessages;
  /** How long to wait for the job message record of a job that finished within moments of admission. */
  jobRecordWaitMs?: number;
}

export class SlackDeliverer implements Deliverer {
  readonly platform = 'slack' as const;
  private readonly pending = new Set<Promise<unknown>>();

  constructor(private readonly deps: SlackDelivererDeps) {}

  /** Background steps (the file message's ts) still running; tests and shutdown wait on them. */
  async settle(): Promise<void> {
    await Promise.allSettled([...this.pending]);
  }

  private async jobRecord(generationId: string): Promise<{ channel: string; ts: string } | null> {
    const deadline = Date.now() + (this.deps.jobRecordWaitMs ?? 3000);
    for (;;) {
      const found = await findDelivery(this.deps.runtime.db, generationId, 'slack', 'job');
      const parsed = splitMessageKey(found?.messageId);
      if (parsed || Date.now() > deadline) return parsed;
      await new Promise((r) => setTimeout(r, 200));
    }
  }

  async deliverClip({ generation: g, clip }: DeliveryContext): Promise<Delivered> {
    const { runtime, tokens, jobs } = this.deps;
    const db = runtime.db;
    const reply = replyOf(g);
    const done = await findDelivery(db, g.id, 'slack', 'clip');
    if (done?.messageId) return { channelId: done.channelId ?? reply.channelId, messageId: done.messageId };
    if (!clip) throw permanentError(ErrorCode.BackendFailed, 'the finished clip is no longer stored');
    jobs.untrack(g.id);
    try {
      // Uninstalled since admission: a permanent error, so the worker releases the credits at once.
      const { client } = await tokens.forWorkspace(workspaceOf(reply));
      const job = await this.jobRecord(g.id);
      const channel = job?.channel ?? reply.channelId;
      let thread = reply.threadId ?? job?.ts;
      if (!thread) {
        // The job message never made it (a crash right after admission): the clip gets a parent of its own.
        const parent = await jobs.post(g, { client, channel, requester: reply.userId, ...(reply.verb ? { verb: reply.verb } : {}), status: { kind: 'uploading' } });
        jobs.untrack(g.id);
        thread = parent.ts;
      }
      if (!(await findDelivery(db, g.id, 'slack', 'file'))) {
        const uploaded = await client.filesUploadV2({
          channel_id: channel, thread_ts: thread, file: clip.data, filename: `dream-${g.id.slice(0, 8)}.mp4`,
          title: (g.request.prompt || 'Dream clip').slice(0, 120), alt_text: g.request.prompt.slice(0, 1000) || 'A generated video clip',
        });
        const fileId = (uploaded.files as { files?: { id?: string }[] }[] | undefined)?.[0]?.files?.[0]?.id;
        if (!fileId) throw transientError(ErrorCode.Internal, 'files.uploadV2 returned no file id');
        await recordDelivery(db, { generationId: g.id, platform: 'slack', kind: 'file', channelId: channel, messageId: `file:${fileId}` });
        this.background(this.recordFileMessage(client, g.id, fileId, channel));
      }
      const card = clipCard(g, reply.userId);
      const posted = await client.chat.postMessage({ channel, thread_ts: thread, text: card.text, blocks: blocks(card), unfurl_links: false });
      const messageId = messageKey(posted.channel ?? channel, posted.ts!);
      await recordDelivery(db, { generationId: g.id, platform: 'slack', kind: 'clip', channelId: channel, messageId });
      if (job) {
        const charged = g.chargedCredits ?? g.estimatedCredits;
        const final = jobMessage({ generation: g, requester: reply.userId, ...(reply.verb ? { verb: reply.verb } : {}), status: { kind: 'done', charged } });
        void jobs.finish(client, job.channel, job.ts, final, false);
      }
      return { channelId: channel, messageId };
    } catch (error) {
      throw asSlackError(error);
    }
  }

  async deliverFailure({ generation: g }: DeliveryContext): Promise<void> {
    const { runtime, tokens, jobs } = this.deps;
    const reply = replyOf(g);
    jobs.untrack(g.id);
    const status: JobStatus = g.state === 'cancelled' ? { kind: 'cancelled' } : { kind: 'failed', message: g.errorMessage ?? 'The video service failed on this one.' };
    const content = jobMessage({ generation: g, requester: reply.userId, ...(reply.verb ? { verb: reply.verb } : {}), status });
    try {
      const { client } = await tokens.forWorkspace(workspaceOf(reply));
      const job = await this.jobRecord(g.id);
      if (job) return await jobs.finish(client, job.channel, job.ts, content, true);
      if (await findDelivery(runtime.db, g.id, 'slack', 'failure')) return;
      const posted = await client.chat.postMessage({ channel: reply.channelId, text: content.text, blocks: blocks(content), ...(reply.threadId ? { thread_ts: reply.threadId } : {}) });
      await recordDelivery(runtime.db, { generationId: g.id, platform: 'slack', kind: 'failure', channelId: reply.channelId, messageId: messageKey(posted.channel ?? reply.channelId, posted.ts!) });
    } catch (error) {
      const e = asSlackError(error);
      // Nobody is left there to tell, and the credits are released already: nothing to retry.
      if (e.context.slack === NOT_INSTALLED) return void this.deps.log.info({ generationId: g.id, installation: e.context.installation }, 'slack: failure not posted; the app is no longer installed there');
      throw e;
    }
  }

  private background(work: Promise<unknown>): void {
    const p = work.catch((err: unknown) => this.deps.log.debug({ err }, 'slack: background delivery step failed')).finally(() => this.pending.delete(p));
    this.pending.add(p);
  }

  /**
   * files.uploadV2 doesn't return the message ts; shares fill in asynchronously (node-slack-sdk #1865),
   * so files.info is polled briefly. Recorded, a 🔁 on the video itself finds its clip.
   */
  private async recordFileMessage(client: WebClient, generationId: string, fileId: string, channel: string): Promise<void> {
    for (let attempt = 0; attempt < 8; attempt++) {
      await new Promise((r) => setTimeout(r, 250 * (attempt + 1)));
      const info = await client.files.info({ file: fileId });
      const shares = (info.file?.shares ?? {}) as Record<string, Record<string, { ts?: string }[]>>;
      const ts = shares.public?.[channel]?.[0]?.ts ?? shares.private?.[channel]?.[0]?.ts;
      if (ts) {
        await recordDelivery(this.deps.runtime.db, { generationId, platform: 'slack', kind: 'file_message', channelId: channel, messageId: messageKey(channel, ts) });
        return;
      }
    }
  }
}
