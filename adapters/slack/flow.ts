/**
 * What every entry point does after its ack: build the request (images fetched from Slack), hand it to
 * admission with a key from Slack's own id, post the job message where the clip will go, and tell the
 * member, privately, anything that went wrong. Work after the ack runs through a small bounded queue so
 * a burst of commands never delays the acks of the ones behind it.
 */
import type { RespondFn, webApi } from '@slack/bolt';
import { aheadOf, type Admitted, type ReplyTarget } from '../../src/admission.ts';
import { isAppError } from '../../src/errors.ts';
import { getGeneration } from '../../src/generations.ts';
import type { Logger } from '../../src/log.ts';
import { remix, type RemixAction } from '../../src/remix.ts';
import type { Runtime } from '../../src/runtime.ts';
import type { TeamRef } from '../../src/teams.ts';
import { asSlackError, type JobMessages, type SlackReply } from './deliver.ts';
import { fetchSlackImage } from './files.ts';
import type { SlackTokens } from './installations.ts';
import { memberRef, type SlackFileRef } from './parse.ts';
import { errorText } from './render.ts';

type WebClient = webApi.WebClient;

export interface SlackDeps {
  runtime: Runtime;
  /** The bot client and token for the request at hand (see `forRequest`): in OAuth mode, its team's installation. */
  client: WebClient;
  token: string;
  /** Bot clients by team: the one token (single workspace) or each team's installation (OAuth mode). */
  tokens: SlackTokens;
  apiUrl: string;
  log: Logger;
  jobs: JobMessages;
  adminUserIds: ReadonlySet<string>;
  /** Runs post-ack work with bounded concurrency; errors are logged, never thrown at Bolt. */
  later(work: () => Promise<void>): void;
}

/**
 * The deps for one request. In OAuth mode Bolt authorized it through the installation store, and its
 * `client` and `context.botToken` are that team's; in single-workspace mode they are the one token anyway.
 */
export function forRequest(deps: SlackDeps, client: WebClient, context: { botToken?: string }): SlackDeps {
  if (!deps.tokens.multiWorkspace || !context.botToken) return deps;
  return { ...deps, client, token: context.botToken };
}

/** The installation a request was authorized with, for its replyTo (org-wide installs bill and deliver through the org). */
export function installationOf(context: { enterpriseId?: string; isEnterpriseInstall?: boolean }): { enterpriseId?: string; enterpriseInstall?: true } {
  return { ...(context.enterpriseId ? { enterpriseId: context.enterpriseId } : {}), ...(context.isEnterpriseInstall ? { enterpriseInstall: true as const } : {}) };
}

/** The workspace of an interaction (its `team`; null in org-level payloads, then Bolt's context) and its installation. */
export function interactionWorkspace(teamId: string | undefined, context: { teamId?: string; enterpriseId?: string; isEnterpriseInstall?: boolean }): { workspaceId?: string; enterpriseId?: string; enterpriseInstall?: true } {
  const workspaceId = teamId ?? context.teamId;
  return { ...(workspaceId ? { workspaceId } : {}), ...installationOf(context) };
}

/** Where a request came from, and where its messages go. */
export interface Origin {
  team: TeamRef;
  userId: string;
  userName?: string;
  channelId: string;
  /** Thread for the job message and the clip; none for a top-level /dream. */
  threadTs?: string;
  idempotencyKey: string;
  workspaceId?: string;
  /** The org of the workspace, and whether the app is installed org-wide (then the org's installation serves it). */
  enterpriseId?: string;
  enterpriseInstall?: boolean;
  /** The command's or shortcut's response_url: only a fallback for private notes, never for clips. */
  respond?: RespondFn;
  verb?: string;
  /** The member's own message (an @mention): it gets a :clapper: once the request is admitted. */
  reactTo?: { channel: string; ts: string };
}

/** A private note to one member: chat.postEphemeral, or the response_url when the bot can't post there. */
export async function tell(deps: SlackDeps, to: { channelId: string; userId: string; threadTs?: string; respond?: RespondFn }, text: string): Promise<void> {
  try {
    await deps.client.chat.postEphemeral({ channel: to.channelId, user: to.userId, text, ...(to.threadTs ? { thread_ts: to.threadTs } : {}) });
  } catch (error) {
    if (to.respond) {
      await to.respond({ response_type: 'ephemeral', replace_original: false, text }).catch((err: unknown) => deps.log.warn({ err }, 'slack: respond failed'));
      return;
    }
    deps.log.warn({ err: asSlackError(error), channel: to.channelId }, 'slack: could not tell the member');
  }
}

export function fetchImage(deps: SlackDeps, file: SlackFileRef) {
  return fetchSlackImage({ client: deps.client, token: deps.token, apiUrl: deps.apiUrl, maxBytes: deps.runtime.config.MAX_IMAGE_BYTES, log: deps.log }, file);
}

function replyTarget(origin: Origin): ReplyTarget & SlackReply {
  return {
    platform: 'slack', channelId: origin.channelId, userId: origin.userId,
    ...(origin.threadTs ? { threadId: origin.threadTs } : {}),
    ...(origin.verb ? { verb: origin.verb } : {}),
    ...(origin.workspaceId ? { workspaceId: origin.workspaceId } : {}),
    ...(origin.enterpriseId ? { enterpriseId: origin.enterpriseId } : {}),
    ...(origin.enterpriseInstall ? { enterpriseInstall: true } : {}),
  };
}

/** A new dream: build, admit, post the job message. Every failure is a private note; nothing is charged. */
export async function dream(deps: SlackDeps, origin: Origin, build: () => Promise<Record<string, unknown>>): Promise<void> {
  await admitted(deps, origin, async () => deps.runtime.admit({
    idempotencyKey: origin.idempotencyKey, team: origin.team, member: memberRef(origin.userId, origin.userName),
    request: await build(), replyTo: replyTarget(origin),
  }));
}

/** A button or a reaction under a clip: re-roll, remix, extend, upscale, charged to whoever asked. */
export async function follow(deps: SlackDeps, origin: Origin, input: { action: RemixAction; parentId: string; prompt?: string; options?: Record<string, unknown> }): Promise<void> {
  await admitted(deps, origin, () => remix(deps.runtime, {
    idempotencyKey: origin.idempotencyKey, action: input.action, parentId: input.parentId, team: origin.team,
    member: memberRef(origin.userId, origin.userName), replyTo: replyTarget(origin),
    ...(input.prompt !== undefined ? { prompt: input.prompt } : {}), ...(input.options ? { options: input.options } : {}),
  }));
}

async function admitted(deps: SlackDeps, origin: Origin, admit: () => Promise<Admitted>): Promise<void> {
  let result: Admitted;
  try {
    result = await admit();
  } catch (error) {
    if (!isAppError(error) || error.kind !== 'user') deps.log.error({ err: error }, 'slack: admission failed');
    return tell(deps, origin, errorText(error));
  }
  // A redelivered event or a double click: the first delivery posted (or is posting) the job message.
  if (result.duplicate) return;
  const g = await getGeneration(deps.runtime.db, result.generationId);
  if (!g) return;
  try {
    await deps.jobs.post(g, {
      client: deps.client, channel: origin.channelId, ...(origin.threadTs ? { threadTs: origin.threadTs } : {}), requester: origin.userId,
      ...(origin.verb ? { verb: origin.verb } : {}), creditsLeft: result.creditsRemaining,
      status: { kind: 'queued', ahead: await aheadOf(deps.runtime.db, g.id) },
    });
  } catch (error) {
    const slack = asSlackError(error);
    if (slack.kind === 'permanent') {
      // The clip could never be posted here: give the credits back now rather than after the render.
      await deps.runtime.cancel(g.id).catch(() => undefined);
      const code = String(slack.context.slack ?? '');
      const why = code === 'not_in_channel' || code === 'channel_not_found'
        ? "I can't post in this channel. Invite me first (`/invite @dreambot`), or use /dream in a channel I'm in."
        : `Slack wouldn't let me post here (${code || 'refused'}).`;
      return tell(deps, origin, `${why} Nothing was charged.`);
    }
    // Transient: the job runs anyway; the deliverer gives the clip a parent message of its own.
    deps.log.warn({ err: slack, generationId: g.id }, 'slack: job message not posted');
  }
  if (origin.reactTo) {
    await deps.client.reactions.add({ channel: origin.reactTo.channel, timestamp: origin.reactTo.ts, name: 'clapper' })
      .catch((err: unknown) => deps.log.debug({ err: asSlackError(err) }, 'slack: reaction not added'));
  }
  if (result.notice) await tell(deps, origin, result.notice);
}

/** Workspace admins and owners, or anyone in SLACK_ADMIN_USER_IDS; asked of Slack on every call. */
export async function isAdmin(deps: SlackDeps, userId: string): Promise<boolean> {
  if (deps.adminUserIds.has(userId)) return true;
  try {
    const info = await deps.client.users.info({ user: userId });
    return !!(info.user?.is_admin || info.user?.is_owner || info.user?.is_primary_owner);
  } catch (error) {
    deps.log.warn({ err: asSlackError(error), userId }, 'slack: users.info failed; treating as not an admin');
    return false;
  }
}
