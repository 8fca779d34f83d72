import { createHash } from 'node:crypto';
import {
  MessageFlags, Routes, type AutocompleteInteraction, type ButtonInteraction, type ChatInputCommandInteraction, type Interaction,
  type ModalSubmitInteraction, type REST, type RepliableInteraction,
} from 'discord.js';
import {
  blocklistAdd, blocklistList, blocklistRemove, createLinkCode, grant, memberSummary, redeemLinkCode, setDefaults, setLimit, setMemberCap,
  teamIdFor, teamPreferences, usageReport,
} from '../../src/admin.ts';
import { aheadOf, type Admitted } from '../../src/admission.ts';
import { renderUsageChart } from '../../src/charts/usage-chart.ts';
import { findGenerationByMessage } from '../../src/deliveries.ts';
import { isAppError } from '../../src/errors.ts';
import { getGeneration } from '../../src/generations.ts';
import type { Logger } from '../../src/log.ts';
import { remix, type RemixAction } from '../../src/remix.ts';
import { parseRequest } from '../../src/request.ts';
import type { Runtime } from '../../src/runtime.ts';
import type { TeamRef } from '../../src/teams.ts';
import { generatingBackends, suggest } from './autocomplete.ts';
import { promptTip } from './coach.ts';
import { apiCode, nonceFor, replyToOf, type DiscordReplyTo } from './deliver.ts';
import {
  adminCommand, autocompleteQuery, DREAM, DREAM_ADMIN, DREAM_CREDITS, dreamRequest, parseButtonId, parseReaction, parseRemixModalId,
  REMIX_PROMPT_FIELD, type AdminCommand, type ReactionEvent,
} from './parse.ts';
import { isActive, type ProgressTracker, type StatusTarget } from './progress.ts';
import * as render from './render.ts';
import type { WorkQueue } from '../shared/work-queue.ts';
import { callerOf, canDelete, isServerAdmin, personalTeam, wantsReroll, type Caller } from './verify.ts';

/**
 * The flows: each acknowledges within Discord's 3 seconds before any slow work (the defer goes out
 * before the first database call), hands the request to admission (or remix/admin in core), and then
 * shows the result. Errors a member caused reach only them (ephemeral) and charge nothing.
 */
export interface HandlerDeps {
  runtime: Runtime;
  rest: REST;
  log: Logger;
  tracker: ProgressTracker;
  allowDms: boolean;
  clipInThread: boolean;
  botUserId: () => string | null;
  /** Where work that follows an ack waits its turn, so acks are never queued behind it. */
  later: WorkQueue;
}

/** An interaction token works for 15 minutes after the interaction was created (its snowflake time). */
const TOKEN_LIFETIME_MS = 15 * 60_000;
const IGNORED_ACK_CODES = new Set([40060, 10062]);

export const idempotencyKey = (interactionId: string) => `discord:${interactionId}`;

const actionLabels: Record<RemixAction, string> = {
  reroll: 'Re-roll queued', remix: 'Remix queued', extend: 'Extend queued', upscale: 'Upscale queued', add_audio: 'Audio queued',
};

function editOptions(body: render.MessageBody) {
  return { content: body.content, components: body.components ?? [], allowedMentions: { parse: [] } };
}

export async function onInteraction(deps: HandlerDeps, interaction: Interaction): Promise<void> {
  try {
    if (interaction.isAutocomplete()) return await autocomplete(deps, interaction);
    if (interaction.isChatInputCommand()) {
      if (interaction.commandName === DREAM) return await dream(deps, interaction);
      if (interaction.commandName === DREAM_CREDITS) return await credits(deps, interaction);
      if (interaction.commandName === DREAM_ADMIN) return await admin(deps, interaction);
    } else if (interaction.isButton()) {
      return await button(deps, interaction);
    } else if (interaction.isModalSubmit()) {
      return await modal(deps, interaction);
    }
  } catch (error) {
    if (IGNORED_ACK_CODES.has(apiCode(error) ?? 0)) {
      // 40060: another delivery of this interaction was answered first. 10062: we missed the 3 s.
      deps.log[apiCode(error) === 10062 ? 'warn' : 'debug']({ err: error, interactionId: interaction.id }, 'discord: interaction already answered or expired');
      return;
    }
    deps.log.error({ err: error, interactionId: interaction.id }, 'discord: interaction failed');
    if (interaction.isRepliable()) await privately(interaction, render.errorText(error)).catch(() => undefined);
  }
}

/** An ephemeral message to the one who asked: a direct reply, or (after a public defer) delete + follow-up. */
async function privately(interaction: RepliableInteraction, content: string): Promise<void> {
  // Never through a token past its 15 minutes (a refused token only adds to the 401 count).
  if ((interaction.deferred || interaction.replied) && Date.now() > interaction.createdTimestamp + TOKEN_LIFETIME_MS - 5000) return;
  if (interaction.deferred && !interaction.ephemeral) {
    await interaction.deleteReply().catch(() => undefined);
    await interaction.followUp({ content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
  } else if (interaction.deferred || interaction.replied) {
    await interaction.editReply({ content, allowedMentions: { parse: [] } });
  } else {
    await interaction.reply({ content, flags: MessageFlags.Ephemeral, allowedMentions: { parse: [] } });
  }
}

function refuseOrCaller(deps: HandlerDeps, interaction: RepliableInteraction): Caller | Promise<null> {
  const caller = callerOf(interaction, deps.allowDms);
  if ('refusal' in caller) return privately(interaction, caller.refusal).then(() => null);
  return caller;
}

// ---------------------------------------------------------------------------------------------------
// Autocomplete: /dream model and backend

/** How long suggestions wait for the team's defaults before going without them (Discord allows 3 s in all). */
const PREFERENCES_WAIT_MS = 1000;

/**
 * Suggestions while a member types /dream's `model` or `backend`: answered directly with callback type 8,
 * never through `later` (there is nothing to defer, and the 3 s cannot wait behind a burst of admissions).
 */
async function autocomplete(deps: HandlerDeps, interaction: AutocompleteInteraction): Promise<void> {
  const query = autocompleteQuery(interaction);
  const caller = callerOf(interaction, deps.allowDms);
  // A DM where DMs are not served has no team to suggest for; the command itself says why.
  if (!query || 'refusal' in caller) return interaction.respond([]);
  const preferences = await teamDefaults(deps, caller.team);
  await interaction.respond(suggest({ ...query, backends: generatingBackends(deps.runtime), preferences }));
}

async function teamDefaults(deps: HandlerDeps, team: TeamRef): Promise<Record<string, string>> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<null>((resolve) => {
    timer = setTimeout(() => resolve(null), PREFERENCES_WAIT_MS);
  });
  try {
    const preferences = await Promise.race([teamPreferences(deps.runtime, team), late]);
    if (!preferences) deps.log.warn({ team: team.externalId }, 'discord: team defaults were slow; suggesting without them');
    return preferences ?? {};
  } catch (error) {
    deps.log.warn({ err: error, team: team.externalId }, 'discord: could not read team defaults; suggesting without them');
    return {};
  } finally {
    clearTimeout(timer);
  }
}

// ---------------------------------------------------------------------------------------------------
// Jobs: /dream, the buttons that make a new clip, the remix modal

interface JobOptions {
  caller: Caller;
  startThread: boolean;
  tip?: string | null;
  action?: string;
  admit: (replyTo: DiscordReplyTo) => Promise<Admitted>;
}

/**
 * Defer (public, so the clip's thread can hang on the reply), admit, show the queue position, cost and
 * credits left, then keep the status moving. A duplicate INTERACTION_CREATE fails the defer with 40060
 * and stops there; admission's idempotency key covers any other way a request arrives twice.
 */
async function startJob(deps: HandlerDeps, interaction: RepliableInteraction, job: JobOptions): Promise<void> {
  let messageId: string;
  try {
    const response = await interaction.deferReply({ withResponse: true });
    messageId = response.interaction.responseMessageId ?? (await interaction.fetchReply()).id;
  } catch (error) {
    if (apiCode(error) === 10062) deps.log.warn({ interactionId: interaction.id }, 'discord: the 3 s to answer had passed');
    if (IGNORED_ACK_CODES.has(apiCode(error) ?? 0)) return;
    throw error;
  }
  deps.later.run(() => admitAndShow(deps, interaction, job, messageId).catch(async (error: unknown) => {
    deps.log.error({ err: error, interactionId: interaction.id }, 'discord: job start failed');
    await privately(interaction, render.errorText(error)).catch(() => undefined);
  }));
}

async function admitAndShow(deps: HandlerDeps, interaction: RepliableInteraction, job: JobOptions, messageId: string): Promise<void> {
  const channelId = interaction.channelId!;
  const replyTo: DiscordReplyTo = {
    platform: 'discord', channelId, messageId, userId: job.caller.userId, startThread: job.startThread, interactionId: interaction.id,
    ...(interaction.guildId ? { guildId: interaction.guildId } : {}),
    ...(interaction.channel?.isThread() ? { threadId: channelId } : {}),
    ...(interaction.attachmentSizeLimit ? { attachmentSizeLimit: interaction.attachmentSizeLimit } : {}),
  };
  let admitted: Admitted;
  try {
    admitted = await job.admit(replyTo);
  } catch (error) {
    if (!isAppError(error) || error.kind !== 'user') deps.log.error({ err: error, interactionId: interaction.id }, 'discord: admission failed');
    await privately(interaction, render.errorText(error));
    return;
  }
  if (!isActive(admitted.state)) {
    await interaction.editReply({ content: 'This request was already handled; its clip is above.', allowedMentions: { parse: [] } });
    return;
  }
  const target: StatusTarget = {
    channelId, messageId,
    token: { edit: (b) => interaction.editReply(editOptions(b)), expiresAt: interaction.createdTimestamp + TOKEN_LIFETIME_MS },
    extra: job.tip ? [`💡 ${job.tip}`] : [],
  };
  await showQueued(deps, admitted, target, { tip: job.tip ?? null, ...(job.action ? { action: job.action } : {}) });
}

/**
 * Admitted: shows the queue position, cost and credits left on the status message, then keeps it moving.
 * From here on nothing may tell the member "nothing was charged". A position we cannot read is shown as next up.
 */
async function showQueued(deps: HandlerDeps, admitted: Admitted, target: StatusTarget, view: { tip?: string | null; action?: string }): Promise<void> {
  const ahead = admitted.state === 'queued' ? await aheadOf(deps.runtime.db, admitted.generationId).catch(() => 0) : 0;
  const body = render.queued({
    ahead, credits: admitted.credits, creditsRemaining: admitted.creditsRemaining, ...view, ...(admitted.notice ? { notice: admitted.notice } : {}),
  });
  try {
    await deps.tracker.edit(target, body);
  } catch (error) {
    // Admitted all the same: the clip comes, and the next progress edit tries again.
    deps.log.warn({ err: error, generationId: admitted.generationId }, 'discord: could not show the queued reply');
  }
  deps.tracker.track(admitted.generationId, target, body.content);
}

async function dream(deps: HandlerDeps, interaction: ChatInputCommandInteraction): Promise<void> {
  const caller = await refuseOrCaller(deps, interaction);
  if (!caller) return;
  let request: Record<string, unknown>;
  try {
    request = dreamRequest(interaction, deps.runtime.config.MAX_IMAGE_BYTES);
    // The same pure check admission makes first: a bad option is answered at once, privately.
    parseRequest(request);
  } catch (error) {
    if (!isAppError(error) || error.kind !== 'user') throw error;
    await privately(interaction, render.errorText(error));
    return;
  }
  const inThread = interaction.channel?.isThread() ?? false;
  await startJob(deps, interaction, {
    caller, tip: promptTip(String(request.prompt ?? '')), startThread: deps.clipInThread && caller.inGuild && !inThread,
    admit: (replyTo) => deps.runtime.admit({ idempotencyKey: idempotencyKey(interaction.id), team: caller.team, member: caller.member, request, replyTo }),
  });
}

async function button(deps: HandlerDeps, interaction: ButtonInteraction): Promise<void> {
  const parsed = parseButtonId(interaction.customId);
  if (!parsed) return;
  const caller = await refuseOrCaller(deps, interaction);
  if (!caller) return;
  const { action, generationId } = parsed;
  if (action === 'remix') {
    // A modal must be the first and only response: no defer before it. One indexed read fits in 3 s.
    const parent = await getGeneration(deps.runtime.db, generationId);
    if (!parent) return privately(interaction, "I can't find that clip any more.");
    return interaction.showModal(render.remixModal(generationId, parent.request.prompt));
  }
  if (action === 'delete') return deleteClip(deps, interaction, generationId);
  await startJob(deps, interaction, {
    caller, startThread: false, action: actionLabels[action],
    admit: (replyTo) => remix(deps.runtime, { idempotencyKey: idempotencyKey(interaction.id), action, parentId: generationId, team: caller.team, member: caller.member, replyTo }),
  });
}

async function modal(deps: HandlerDeps, interaction: ModalSubmitInteraction): Promise<void> {
  const parentId = parseRemixModalId(interaction.customId);
  if (!parentId) return;
  const caller = await refuseOrCaller(deps, interaction);
  if (!caller) return;
  const prompt = interaction.fields.getTextInputValue(REMIX_PROMPT_FIELD);
  await startJob(deps, interaction, {
    caller, startThread: false, tip: promptTip(prompt), action: actionLabels.remix,
    admit: (replyTo) => remix(deps.runtime, { idempotencyKey: idempotencyKey(interaction.id), action: 'remix', parentId, team: caller.team, member: caller.member, replyTo, prompt }),
  });
}

async function deleteClip(deps: HandlerDeps, interaction: ButtonInteraction, generationId: string): Promise<void> {
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  deps.later.run(() => deleteAfterAck(deps, interaction, generationId).catch((error: unknown) => privately(interaction, render.errorText(error, { charging: false }))));
}

async function deleteAfterAck(deps: HandlerDeps, interaction: ButtonInteraction, generationId: string): Promise<void> {
  const generation = await getGeneration(deps.runtime.db, generationId);
  const requester = generation ? replyToOf(generation)?.userId : undefined;
  if (!canDelete(interaction, requester)) {
    return privately(interaction, `Only ${requester ? `<@${requester}>, who asked for this clip,` : 'the member who asked for this clip'} or a server admin (Manage Server) can delete it.`);
  }
  try {
    await deps.rest.delete(Routes.channelMessage(interaction.channelId, interaction.message.id));
  } catch (error) {
    if (apiCode(error) !== 10008) throw error;
  }
  await privately(interaction, 'Deleted the clip.');
}

// ---------------------------------------------------------------------------------------------------
// /dream-credits and /dream-admin

async function credits(deps: HandlerDeps, interaction: ChatInputCommandInteraction): Promise<void> {
  const caller = await refuseOrCaller(deps, interaction);
  if (!caller) return;
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  deps.later.run(async () => {
    try {
      const summary = await memberSummary(deps.runtime, caller.team, caller.member);
      await interaction.editReply({ content: render.credits(summary), allowedMentions: { parse: [] } });
    } catch (error) {
      deps.log.error({ err: error }, 'discord: credits failed');
      await privately(interaction, render.errorText(error, { charging: false })).catch(() => undefined);
    }
  });
}

async function admin(deps: HandlerDeps, interaction: ChatInputCommandInteraction): Promise<void> {
  if (!interaction.inGuild()) return privately(interaction, 'Admin commands work in servers only.');
  // Re-checked on every call: server admins can override the command's default permissions.
  if (!isServerAdmin(interaction)) return privately(interaction, render.notAdmin);
  const caller = await refuseOrCaller(deps, interaction);
  if (!caller) return;
  let command: AdminCommand;
  try {
    command = adminCommand(interaction);
  } catch (error) {
    return privately(interaction, render.errorText(error));
  }
  await interaction.deferReply({ flags: MessageFlags.Ephemeral });
  deps.later.run(async () => {
    try {
      const result = await runAdmin(deps, caller, command, `discord:${interaction.user.id}`);
      await interaction.editReply({ content: result.content, files: result.files ?? [], allowedMentions: { parse: [] } });
    } catch (error) {
      if (!isAppError(error) || error.kind !== 'user') deps.log.error({ err: error }, 'discord: admin command failed');
      await interaction.editReply({ content: render.errorText(error, { charging: false }), allowedMentions: { parse: [] } }).catch(() => undefined);
    }
  });
}

async function runAdmin(deps: HandlerDeps, caller: Caller, command: AdminCommand, actor: string): Promise<{ content: string; files?: { attachment: Buffer; name: string }[] }> {
  const { runtime } = deps;
  const teamId = await teamIdFor(runtime, caller.team);
  const n = (x: number) => x.toLocaleString('en-US');
  switch (command.kind) {
    case 'limit': {
      const c = await setLimit(runtime, teamId, { limit: command.credits, period: command.period }, actor);
      return { content: `Limit set to ${n(c.limit)} credits, ${c.period}. ${n(c.available)} available now.` };
    }
    case 'grant': {
      const c = await grant(runtime, teamId, command.credits, actor);
      return { content: `Granted ${n(command.credits)} credits. ${n(c.available)} available now.` };
    }
    case 'user-cap':
      await setMemberCap(runtime, teamId, { platform: 'discord', externalId: command.user.id, displayName: command.user.name }, command.credits, actor);
      return { content: command.credits === null ? `<@${command.user.id}> has no personal cap now.` : `<@${command.user.id}> may spend ${n(command.credits)} credits per period.` };
    case 'usage': {
      const report = await usageReport(runtime, teamId);
      const png = await renderUsageChart(report);
      return { content: render.usageSummary(report), files: [{ attachment: png, name: `usage-${report.periodKey}.png` }] };
    }
    case 'defaults': {
      if (Object.keys(command.prefs).length === 0) return { content: 'Give at least one option: model, resolution, aspect, duration or backend.' };
      const prefs = await setDefaults(runtime, teamId, command.prefs, actor);
      const shown = Object.entries(prefs).map(([k, v]) => `${k} ${v}`).join(', ');
      return { content: shown ? `Team defaults: ${shown}.` : 'No team defaults; each backend uses its own.' };
    }
    case 'blocklist-add':
    case 'blocklist-remove':
    case 'blocklist-list': {
      const words = command.kind === 'blocklist-add' ? await blocklistAdd(runtime, teamId, command.word, actor)
        : command.kind === 'blocklist-remove' ? await blocklistRemove(runtime, teamId, command.word, actor)
          : await blocklistList(runtime, teamId);
      return { content: words.length ? `Blocked in prompts: ${words.map((w) => `\`${w.replace(/`/g, "'")}\``).join(', ')}.` : 'The blocklist is empty.' };
    }
    case 'link': {
      if (command.code) {
        await redeemLinkCode(runtime, command.code, caller.team, actor);
        return { content: 'Linked: this server now shares that team\'s credits and settings.' };
      }
      const code = await createLinkCode(runtime, teamId, actor);
      return { content: `Link code: \`${code}\` (valid 30 minutes, once). In the Slack workspace, an admin runs \`/dream-admin link ${code}\`.` };
    }
  }
}

// ---------------------------------------------------------------------------------------------------
// 🔁 reactions

/**
 * A 🔁 on one of our clips re-rolls it, charged to the reactor. It arrives as a raw MESSAGE_REACTION_ADD
 * (partials on: after a restart nothing is cached), and the clip is found through the deliveries record,
 * never by fetching the message. The status message is posted with a nonce and admission is keyed by
 * message and user, so a replayed event (gateway resume) changes nothing.
 */
export function onReaction(deps: HandlerDeps, raw: Record<string, unknown>): void {
  const event = parseReaction(raw);
  const botId = deps.botUserId();
  if (!event || !botId || !wantsReroll(event, botId, deps.allowDms)) return;
  deps.later.run(() => rerollByReaction(deps, event));
}

async function rerollByReaction(deps: HandlerDeps, event: ReactionEvent): Promise<void> {
  try {
    const parent = await findGenerationByMessage(deps.runtime.db, 'discord', event.messageId);
    if (!parent || parent.state !== 'delivered') return;
    const parentReply = replyToOf(parent);
    const key = `discord:reaction:${event.messageId}:${event.userId}`;
    const notice = render.rerollNotice(event.userId);
    const status = (await deps.rest.post(Routes.channelMessages(event.channelId), {
      body: {
        ...notice, allowed_mentions: { parse: [] }, nonce: nonceFor('r', createHash('sha256').update(key).digest('hex')), enforce_nonce: true,
        message_reference: { message_id: event.messageId, fail_if_not_exists: false },
      },
    })) as { id: string };
    const replyTo: DiscordReplyTo = {
      platform: 'discord', channelId: event.channelId, messageId: status.id, userId: event.userId, startThread: false,
      ...(event.guildId ? { guildId: event.guildId } : {}),
      ...(parentReply?.attachmentSizeLimit ? { attachmentSizeLimit: parentReply.attachmentSizeLimit } : {}),
    };
    const team = event.guildId ? { platform: 'discord' as const, externalId: event.guildId } : personalTeam(event.userId);
    const member = { externalId: event.userId, ...(event.displayName ? { displayName: event.displayName } : {}) };
    const target: StatusTarget = { channelId: event.channelId, messageId: status.id };
    let admitted: Admitted;
    try {
      admitted = await remix(deps.runtime, { idempotencyKey: key, action: 'reroll', parentId: parent.id, team, member, replyTo });
    } catch (error) {
      if (!isAppError(error) || error.kind !== 'user') deps.log.error({ err: error }, 'discord: re-roll by reaction failed');
      await deps.tracker.edit(target, { content: `🔁 <@${event.userId}>: ${render.errorText(error)}`, components: [] });
      return;
    }
    if (!isActive(admitted.state)) {
      // The same member's 🔁 on the same clip again: that re-roll exists already (each member gets one per clip).
      // Within Discord's nonce window the notice posted above is that re-roll's own status message: leave it be.
      const first = admitted.duplicate ? await getGeneration(deps.runtime.db, admitted.generationId) : null;
      if (first && (first.replyTo as { messageId?: string } | null)?.messageId !== status.id) {
        await deps.tracker.edit(target, { content: `🔁 <@${event.userId}>: your re-roll of this clip is already above.`, components: [] });
      }
      return;
    }
    await showQueued(deps, admitted, target, { action: actionLabels.reroll });
  } catch (error) {
    deps.log.error({ err: error, messageId: event.messageId }, 'discord: reaction handling failed');
  }
}
