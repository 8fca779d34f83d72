import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { DiscordAPIError, Routes, type REST } from 'discord.js';
import type { ReplyTarget } from '../../src/admission.ts';
import type { StoredAsset } from '../../src/assets.ts';
import { findDelivery, recordDelivery } from '../../src/deliveries.ts';
import { ErrorCode, permanentError } from '../../src/errors.ts';
import type { Generation } from '../../src/generations.ts';
import { assetUrl } from '../../src/http/signing.ts';
import type { Logger } from '../../src/log.ts';
import { fitUnderLimit } from '../../src/media/fit.ts';
import type { Delivered, Deliverer, DeliveryContext } from '../../src/queue/delivery-worker.ts';
import type { Runtime } from '../../src/runtime.ts';
import type { ProgressTracker } from './progress.ts';
import * as render from './render.ts';
import { REROLL_EMOJI } from './verify.ts';

/**
 * Where a Discord job's result goes, as admission stores it (a reference any bot process can act on).
 * No interaction token is stored: the clip is posted with the bot token, since queue plus render time can
 * outlast the token's 15 minutes.
 */
export interface DiscordReplyTo extends ReplyTarget {
  platform: 'discord';
  channelId: string;
  guildId?: string;
  /** The status message (the deferred reply, or the bot's 🔁 notice): edited as the job moves. */
  messageId?: string;
  /** Who asked: shown on the clip, and the one allowed to delete it besides admins. */
  userId: string;
  /** Start a thread on the status message for the clip; else post in `channelId` (already a thread, or a DM). */
  startThread: boolean;
  /** The interaction's attachment_size_limit, in bytes. */
  attachmentSizeLimit?: number;
  interactionId?: string;
}

/** Every guild gets at least this per file (reference.mdx, "Uploading Files", since 16 Jan 2025). */
export const DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024;
const LINK_TTL_S = 7 * 24 * 3600;
const THREAD_ARCHIVE_MIN = 1440;

export function readReplyTo(generation: Pick<Generation, 'id' | 'replyTo'>): DiscordReplyTo {
  const r = generation.replyTo as Partial<DiscordReplyTo> | null;
  if (!r || r.platform !== 'discord' || typeof r.channelId !== 'string' || typeof r.userId !== 'string') {
    throw permanentError(ErrorCode.Internal, `generation ${generation.id} has no Discord reply target`);
  }
  return { ...r, startThread: r.startThread === true } as DiscordReplyTo;
}

/** The Discord reply target, or null when the generation has none (made on another platform, or malformed). */
export function replyToOf(generation: Pick<Generation, 'id' | 'replyTo'>): DiscordReplyTo | null {
  try {
    return readReplyTo(generation);
  } catch {
    return null;
  }
}

/** `enforce_nonce` makes a retried post return the first message instead of a second one (≤ 25 chars). */
export function nonceFor(kind: 'd' | 'f' | 'r', id: string): string {
  return `${kind}${id.replace(/[^0-9a-zA-Z]/g, '').slice(0, 24)}`;
}

export function apiCode(error: unknown): number | null {
  return error instanceof DiscordAPIError ? Number(error.code) : null;
}

export class DiscordDeliverer implements Deliverer {
  readonly platform = 'discord' as const;

  constructor(private readonly deps: { runtime: Runtime; rest: REST; log: Logger; tracker: ProgressTracker; clipInThread: boolean }) {}

  async deliverClip({ generation, clip }: DeliveryContext): Promise<Delivered> {
    const { runtime, rest } = this.deps;
    const reply = readReplyTo(generation);
    const already = await findDelivery(runtime.db, generation.id, 'discord', 'clip');
    if (already?.messageId) return { ...(already.channelId ? { channelId: already.channelId } : {}), messageId: already.messageId };
    if (!clip) throw permanentError(ErrorCode.Internal, `generation ${generation.id} succeeded without a stored clip`);
    await this.deps.tracker.forget(generation.id);

    const channelId = await this.destination(reply, generation);
    const limit = reply.attachmentSizeLimit && reply.attachmentSizeLimit > 0 ? reply.attachmentSizeLimit : DEFAULT_ATTACHMENT_LIMIT;
    const fitted = await this.fit(clip, limit);
    const inThread = channelId !== reply.channelId;
    const base = {
      nonce: nonceFor('d', generation.id), enforce_nonce: true, allowed_mentions: { parse: [] as string[] },
      ...(!inThread && reply.messageId ? { message_reference: { message_id: reply.messageId, fail_if_not_exists: false } } : {}),
    };
    let posted: { id: string } | null = null;
    if (fitted) {
      const body = render.clipMessage({ generation, requesterId: reply.userId, ...(fitted.reencoded ? { reencoded: { limitBytes: limit } } : {}) });
      const name = `dream-${generation.id.slice(0, 8)}.mp4`;
      try {
        posted = (await rest.post(Routes.channelMessages(channelId), {
          body: { ...body, ...base, attachments: [{ id: 0, filename: name }] },
          files: [{ name, data: fitted.data, contentType: 'video/mp4' }],
        })) as { id: string };
      } catch (error) {
        // 40005: the server's limit is lower than the interaction said (boost lost meanwhile): link instead.
        if (apiCode(error) !== 40005) throw error;
      }
    }
    if (!posted) {
      const link = this.link(clip);
      if (!link) {
        await this.status(reply, render.failed('The clip is too large to upload to this server, and no PUBLIC_BASE_URL is set to link it.'));
        throw permanentError(ErrorCode.BackendFailed, `clip of ${clip.size} bytes does not fit under ${limit} and PUBLIC_BASE_URL is unset`);
      }
      const body = render.clipMessage({ generation, requesterId: reply.userId, link });
      posted = (await rest.post(Routes.channelMessages(channelId), { body: { ...body, ...base } })) as { id: string };
    }
    await recordDelivery(runtime.db, { generationId: generation.id, platform: 'discord', kind: 'clip', channelId, messageId: posted.id });

    // Seeding 🔁 shows people the reaction works; losing it (no Add Reactions) costs nothing.
    await rest.put(Routes.channelMessageOwnReaction(channelId, posted.id, encodeURIComponent(REROLL_EMOJI))).catch((err: unknown) =>
      this.deps.log.debug({ err }, 'discord: could not seed the re-roll reaction'));
    await this.status(reply, render.done(inThread ? 'thread' : 'below')).catch((err: unknown) =>
      this.deps.log.debug({ err }, 'discord: could not mark the status message done'));
    return { channelId, messageId: posted.id };
  }

  async deliverFailure({ generation }: DeliveryContext): Promise<void> {
    const reply = readReplyTo(generation);
    await this.deps.tracker.forget(generation.id);
    const body = render.failed(generation.state === 'cancelled' ? 'It was cancelled.' : generation.errorMessage);
    if (await this.status(reply, body)) return;
    await this.deps.rest.post(Routes.channelMessages(reply.channelId), {
      body: { ...body, content: `<@${reply.userId}> ${body.content}`, nonce: nonceFor('f', generation.id), enforce_nonce: true, allowed_mentions: { users: [reply.userId] } },
    });
  }

  /** Edits the job's status message with the bot token; false when there is none (or it was deleted). */
  private async status(reply: DiscordReplyTo, body: render.MessageBody): Promise<boolean> {
    if (!reply.messageId) return false;
    try {
      await this.deps.rest.patch(Routes.channelMessage(reply.channelId, reply.messageId), { body: { ...body, allowed_mentions: { parse: [] } } });
      return true;
    } catch (error) {
      if (apiCode(error) === 10008 || apiCode(error) === 10003) return false;
      throw error;
    }
  }

  /** A thread on the status message (its id is the message's, so a retry finds the same one), or the channel. */
  private async destination(reply: DiscordReplyTo, generation: Generation): Promise<string> {
    if (!this.deps.clipInThread || !reply.startThread || !reply.messageId) return reply.channelId;
    const name = `🎬 ${generation.request.prompt.replace(/\s+/g, ' ').trim() || 'dream'}`.slice(0, 100);
    try {
      const thread = (await this.deps.rest.post(Routes.threads(reply.channelId, reply.messageId), {
        body: { name, auto_archive_duration: THREAD_ARCHIVE_MIN },
      })) as { id: string };
      return thread.id;
    } catch (error) {
      const code = apiCode(error);
      if (code === 160004) return reply.messageId;
      // The status message is gone, or we may not start threads here: post in the channel instead.
      if (code === 10008 || code === 50013 || code === 50001 || code === 50024) return reply.channelId;
      throw error;
    }
  }

  /** The clip as an MP4 under the limit (re-encoded only when needed), or null when even that fails. */
  private async fit(clip: StoredAsset, limit: number): Promise<{ data: Buffer; reencoded: boolean } | null> {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dreambot-discord-'));
    try {
      const input = path.join(dir, 'in.mp4');
      const output = path.join(dir, 'out.mp4');
      await writeFile(input, clip.data);
      try {
        const result = await fitUnderLimit(this.deps.runtime.bins, input, output, limit);
        return { data: await readFile(output), reencoded: result.reencoded };
      } catch (error) {
        this.deps.log.info({ err: error, limit }, 'discord: clip does not fit the upload limit; linking it instead');
        return null;
      }
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  }

  private link(clip: StoredAsset): string | null {
    const { config } = this.deps.runtime;
    return config.PUBLIC_BASE_URL ? assetUrl(config.PUBLIC_BASE_URL, config.assetSecret, clip.id, LINK_TTL_S) : null;
  }
}
