import {
  ButtonStyle, ComponentType, LabelBuilder, ModalBuilder, TextInputBuilder, TextInputStyle,
  type APIActionRowComponent, type APIButtonComponentWithCustomId,
} from 'discord.js';
import type { MemberSummary, UsageReport } from '../../src/admin.ts';
import { isAppError, publicMessage } from '../../src/errors.ts';
import type { Generation } from '../../src/generations.ts';
import { buttonId, REMIX_PROMPT_FIELD, remixModalId, type ButtonAction } from './parse.ts';

/**
 * Everything people read, as Discord message bodies (API JSON, so the same object goes to discord.js
 * interaction methods and to raw bot-token REST calls). Pure functions of neutral values.
 */
export interface MessageBody {
  content: string;
  components?: APIActionRowComponent<APIButtonComponentWithCustomId>[];
}

const plural = (n: number, one: string, many = `${one}s`) => `${n.toLocaleString('en-US')} ${n === 1 ? one : many}`;
const periodWord: Record<string, string> = { monthly: 'this month', weekly: 'this week', daily: 'today', none: 'in total' };

function clip(text: string, max: number): string {
  const flat = text.replace(/\s+/g, ' ').trim();
  return flat.length <= max ? flat : `${flat.slice(0, max - 1)}…`;
}

/** A line of the prompt that cannot ping anyone or break out of its bold. */
function quote(text: string, max = 300): string {
  return clip(text, max).replace(/[*_`~|>]/g, (c) => `\\${c}`).replace(/@/g, '@\u200b');
}

export function duration(ms: number): string {
  const s = Math.max(1, Math.round(ms / 1000));
  if (s < 90) return `${s} s`;
  const m = Math.round(s / 60);
  return m < 90 ? `${m} min` : `${Math.round(m / 60)} h`;
}

export interface QueuedView {
  ahead: number;
  credits: number;
  creditsRemaining: number;
  notice?: string;
  tip?: string | null;
  action?: string;
}

export function queued(view: QueuedView): MessageBody {
  const position = view.ahead === 0 ? 'next up' : `${plural(view.ahead, 'clip')} ahead of yours`;
  const lines = [
    `🎬 **${view.action ?? 'Queued'}** · ${position}`,
    `Costs ${plural(view.credits, 'credit')} · ${plural(view.creditsRemaining, 'credit')} left for the team`,
  ];
  if (view.notice) lines.push(`⏸️ ${view.notice}`);
  if (view.tip) lines.push(`💡 ${view.tip}`);
  return { content: lines.join('\n'), components: [] };
}

/** The status line while a job waits or renders: state, percent and an ETA from the generation row. */
export function progress(g: Pick<Generation, 'state' | 'progress' | 'startedAt' | 'estimatedCredits'>, ahead: number, now: number, extra: string[] = []): MessageBody {
  let head: string;
  if (g.state === 'queued') head = `🎬 **Queued** · ${ahead === 0 ? 'next up' : `${plural(ahead, 'clip')} ahead of yours`}`;
  else if (g.state === 'dispatched') head = '🎬 **Starting**…';
  else {
    const fraction = Math.min(Math.max(g.progress, 0), 0.99);
    const pct = Math.floor(fraction * 100);
    const elapsed = g.startedAt ? now - g.startedAt.getTime() : 0;
    const eta = fraction >= 0.05 && elapsed > 0 ? ` · about ${duration((elapsed * (1 - fraction)) / fraction)} left` : '';
    head = `⏳ **Rendering** · ${pct}%${eta}`;
  }
  return { content: [head, `Costs ${plural(g.estimatedCredits, 'credit')}`, ...extra].join('\n'), components: [] };
}

export function done(where: 'thread' | 'below'): MessageBody {
  return { content: where === 'thread' ? '✅ **Done** · your clip is in the thread.' : '✅ **Done** · your clip is below.', components: [] };
}

export function failed(message: string | null): MessageBody {
  const why = message ?? 'The video service failed on this one.';
  const charged = /nothing was charged/i.test(why) ? '' : ' Nothing was charged.';
  return { content: `❌ **That clip didn't work.** ${why}${charged}`, components: [] };
}

/**
 * What a member sees for any error: theirs as written, ours as a promise that nothing was charged.
 * `charging: false` for commands that never charge (credits, admin, delete): no credits are mentioned.
 */
export function errorText(error: unknown, opts: { charging?: boolean } = {}): string {
  const text = isAppError(error) ? publicMessage(error) : 'Something went wrong on my side. Nothing was charged; try again in a minute.';
  if (opts.charging === false) return text.replace(' Nothing was charged; t', ' T').replace(/ Nothing was charged\.?/, '');
  return /nothing was charged/i.test(text) ? text : `${text} Nothing was charged.`;
}

const buttons: { action: ButtonAction; label: string; emoji: string; style: ButtonStyle }[] = [
  { action: 'reroll', label: 'Re-roll', emoji: '🔁', style: ButtonStyle.Secondary },
  { action: 'remix', label: 'Remix', emoji: '✏️', style: ButtonStyle.Primary },
  { action: 'extend', label: 'Extend', emoji: '⏩', style: ButtonStyle.Secondary },
  { action: 'upscale', label: 'Upscale', emoji: '⬆️', style: ButtonStyle.Secondary },
  { action: 'delete', label: 'Delete', emoji: '🗑️', style: ButtonStyle.Danger },
];

function clipButtons(generationId: string): APIActionRowComponent<APIButtonComponentWithCustomId>[] {
  return [{
    type: ComponentType.ActionRow,
    components: buttons.map((b) => ({
      type: ComponentType.Button, style: b.style as APIButtonComponentWithCustomId['style'], label: b.label, emoji: { name: b.emoji },
      custom_id: buttonId(b.action, generationId),
    })),
  }];
}

export interface ClipView {
  generation: Pick<Generation, 'id' | 'request' | 'backend' | 'chargedCredits' | 'estimatedCredits' | 'operation'>;
  requesterId: string | undefined;
  /** Set when the file did not fit even re-encoded: a signed link instead. */
  link?: string;
  reencoded?: { limitBytes: number };
}

export function clipMessage(view: ClipView): MessageBody {
  const g = view.generation;
  const r = g.request;
  const cost = g.chargedCredits ?? g.estimatedCredits;
  const what = g.operation === 'generate' ? '' : ` (${g.operation.replace('_', ' ')})`;
  const lines = [
    `🎬 **${quote(r.prompt || 'Untitled clip')}**${what}`,
    [`\`${r.model}\``, r.duration, r.resolution, r.aspect, r.camera ? r.camera.replace(/_/g, ' ') : null, plural(cost, 'credit'),
      view.requesterId ? `for <@${view.requesterId}>` : null].filter(Boolean).join(' · '),
  ];
  if (g.backend === 'preview') lines.push('🧪 Preview render: an offline placeholder made on this server, not AI video.');
  if (view.reencoded) lines.push(`Re-encoded to fit this server's ${(view.reencoded.limitBytes / (1024 * 1024)).toFixed(0)} MB upload limit.`);
  if (view.link) lines.push(`📎 Too large to upload here, even re-encoded: ${view.link}`);
  lines.push('React with 🔁 to re-roll it on your own credits.');
  return { content: lines.join('\n'), components: clipButtons(g.id) };
}

export const REMIX_PROMPT_MAX = 4000;

export function remixModal(generationId: string, prompt: string): ModalBuilder {
  const input = new TextInputBuilder()
    .setCustomId(REMIX_PROMPT_FIELD).setStyle(TextInputStyle.Paragraph).setRequired(true).setMinLength(3).setMaxLength(REMIX_PROMPT_MAX)
    .setValue(prompt.slice(0, REMIX_PROMPT_MAX));
  return new ModalBuilder().setCustomId(remixModalId(generationId)).setTitle('Remix this clip')
    .addLabelComponents(new LabelBuilder().setLabel('Prompt').setDescription('Edit it; the new clip is charged to you.').setTextInputComponent(input));
}

export function rerollNotice(userId: string): MessageBody {
  return { content: `🔁 Re-roll for <@${userId}> · queued…`, components: [] };
}

export function credits(summary: MemberSummary): string {
  const when = periodWord[summary.period] ?? 'this period';
  const reset = summary.nextReset ? ` (resets <t:${Math.floor(summary.nextReset.getTime() / 1000)}:R>)` : '';
  const lines = [
    `**Team:** ${plural(summary.teamAvailable, 'credit')} left of ${summary.teamLimit.toLocaleString('en-US')} ${when}${reset}.`,
    `**You:** ${plural(summary.memberUsed, 'credit')} used ${when}${summary.memberCap === null ? ', no personal cap.' : ` of your ${summary.memberCap.toLocaleString('en-US')}-credit cap.`}`,
  ];
  if (summary.active.length) {
    lines.push('**In progress:**');
    for (const job of summary.active.slice(0, 10)) {
      const pct = job.state === 'running' ? ` ${Math.floor(job.progress * 100)}%` : '';
      lines.push(`• ${job.state}${pct}: ${quote(job.prompt, 80)}`);
    }
  } else {
    lines.push('Nothing in progress. Make one with /dream.');
  }
  return lines.join('\n');
}

export function usageSummary(report: UsageReport): string {
  const top = report.byMember.slice(0, 5).map((m) => `${quote(m.name, 40)} ${m.credits}`).join(', ');
  return `**Usage ${report.periodKey}:** ${plural(report.total, 'credit')} used of ${report.limit.toLocaleString('en-US')}, ${report.available.toLocaleString('en-US')} left.${top ? ` Top: ${top}.` : ''}`;
}

export const notAdmin = 'Only members with the **Manage Server** permission can change dreambot settings. Ask a server admin.';
