/**
 * Block Kit for every surface the adapter shows, as pure functions of neutral values: the job message
 * and its progress, the clip card with its buttons, the /dream modal (rendered from commands/dream.ts),
 * the App Home, the admin modals, and error text. Sizes stay far inside platform-slack.md §6.
 */
import { dreamCommand } from '../../commands/dream.ts';
import type { MemberSummary, UsageReport } from '../../src/admin.ts';
import { isAppError, publicMessage, type AppError } from '../../src/errors.ts';
import type { Generation } from '../../src/generations.ts';
import { periods } from '../../src/ledger/periods.ts';
import { encodeMetadata, FLAG_HELP, type ModalMetadata } from './parse.ts';

export type Block = Record<string, unknown>;
export interface MessageContent {
  text: string;
  blocks: Block[];
}

export const ACTIONS = {
  reroll: 'dream_reroll',
  remix: 'dream_remix',
  extend: 'dream_extend',
  upscale: 'dream_upscale',
  delete: 'dream_delete',
} as const;
export const HOME_ACTIONS = { setLimit: 'dream_home_limit', grant: 'dream_home_grant', refresh: 'dream_home_refresh' } as const;
export const VIEWS = { dream: 'dream_modal', remix: 'dream_remix_modal', limit: 'dream_limit_modal', grant: 'dream_grant_modal' } as const;
export const SHORTCUT_ID = 'dream_from_message';

/** Text that goes inside mrkdwn: Slack needs &, < and > escaped, and nothing more. */
export function escape(text: string): string {
  return text.replace(/&/g, '&amp;').replace(/</g, '&lt;').replace(/>/g, '&gt;');
}

function clip(text: string, max: number): string {
  const chars = [...text];
  return chars.length <= max ? text : `${chars.slice(0, max - 1).join('')}…`;
}

const plain = (text: string) => ({ type: 'plain_text', text: clip(text, 2000), emoji: true });
const mrkdwn = (text: string) => ({ type: 'mrkdwn', text: clip(text, 3000) });
const credits = (n: number) => `${n.toLocaleString('en-US')} credit${n === 1 ? '' : 's'}`;

/** One line of what was asked: aspect · length · resolution · camera · loop · model. */
export function details(g: Pick<Generation, 'request' | 'backend' | 'operation'>): string {
  const r = g.request;
  const parts = [r.aspect, r.duration, r.resolution, r.camera && r.camera !== 'static' ? r.camera.replace(/_/g, ' ') : undefined, r.loop ? 'loop' : undefined, r.model];
  if (g.operation !== 'generate') parts.unshift(g.operation.replace('_', ' '));
  const line = parts.filter(Boolean).join(' · ');
  return g.backend === 'preview' ? `${line} · _preview render (offline placeholder, not AI video)_` : line;
}

export type JobStatus =
  | { kind: 'queued'; ahead: number }
  | { kind: 'running'; progress: number; note?: string | null }
  | { kind: 'uploading' }
  | { kind: 'done'; charged: number }
  | { kind: 'failed'; message: string }
  | { kind: 'cancelled' }
  | { kind: 'deleted'; by: string };

export interface JobView {
  generation: Pick<Generation, 'request' | 'backend' | 'operation' | 'estimatedCredits'>;
  requester: string;
  /** "re-rolled", "remixed"…: how this job came about, for follow-ups under a clip. */
  verb?: string;
  creditsLeft?: number;
  status: JobStatus;
}

function bar(fraction: number): string {
  const filled = Math.max(0, Math.min(10, Math.round(fraction * 10)));
  return `${'▓'.repeat(filled)}${'░'.repeat(10 - filled)} ${Math.round(fraction * 100)}%`;
}

export function statusLine(view: JobView): string {
  const s = view.status;
  const cost = credits(view.generation.estimatedCredits);
  const left = view.creditsLeft === undefined ? '' : ` · ${credits(view.creditsLeft)} left`;
  switch (s.kind) {
    case 'queued':
      return `⏳ Queued${s.ahead > 0 ? ` — ${s.ahead} ahead` : ' — next up'} · costs ${cost}${left}`;
    case 'running':
      return `🎞️ Rendering ${bar(s.progress)}${s.note && s.note !== 'running' ? ` · ${escape(s.note)}` : ''} · costs ${cost}`;
    case 'uploading':
      return '📤 Uploading the clip…';
    case 'done':
      return `✅ Done — the clip is in the thread · ${credits(s.charged)} charged${left}`;
    case 'failed':
      return `❌ ${escape(s.message)} Nothing was charged.`;
    case 'cancelled':
      return '🚫 Cancelled — nothing was charged.';
    case 'deleted':
      return `🗑️ Deleted by <@${s.by}>.`;
  }
}

export function jobMessage(view: JobView): MessageContent {
  const prompt = view.generation.request.prompt;
  const head = `🎬 <@${view.requester}> ${view.verb ?? 'asked for a clip'}`;
  const blocks: Block[] = [
    { type: 'section', text: mrkdwn(prompt ? `${head}\n>${escape(clip(prompt, 600)).replace(/\n/g, '\n>')}` : head) },
    { type: 'context', elements: [mrkdwn(details(view.generation as Generation))] },
    { type: 'context', elements: [mrkdwn(statusLine(view))] },
  ];
  return { text: `${head}: ${statusLine(view)}`.slice(0, 3000), blocks };
}

/** The message under a clip: who asked, what, and the buttons (value = generation id, ≤ 2000 chars). */
export function clipCard(g: Pick<Generation, 'id' | 'request' | 'backend' | 'operation'>, requester: string): MessageContent {
  const button = (action: string, text: string, extra: Block = {}) => ({ type: 'button', action_id: action, text: plain(text), value: g.id, ...extra });
  return {
    text: `Clip for <@${requester}>: ${clip(g.request.prompt, 200)}`,
    blocks: [
      { type: 'section', text: mrkdwn(`🎬 <@${requester}>'s clip${g.request.prompt ? `: _${escape(clip(g.request.prompt, 300))}_` : ''}`) },
      { type: 'context', elements: [mrkdwn(`${details(g)} · react with :repeat: to re-roll`)] },
      {
        type: 'actions', block_id: `clip:${g.id}`,
        elements: [
          button(ACTIONS.reroll, '🔁 Re-roll'),
          button(ACTIONS.remix, '✏️ Remix'),
          button(ACTIONS.extend, '⏩ Extend'),
          button(ACTIONS.upscale, '🔍 Upscale'),
          button(ACTIONS.delete, '🗑️ Delete', {
            style: 'danger',
            confirm: { title: plain('Delete this clip?'), text: mrkdwn('The clip and its buttons are removed from the channel.'), confirm: plain('Delete'), deny: plain('Keep it') },
          }),
        ],
      },
    ],
  };
}

/** What a member reads when something they asked for can't happen: what, and what to do. */
export function errorText(error: unknown): string {
  if (isAppError(error)) {
    const message = publicMessage(error as AppError);
    return /charged/i.test(message) ? message : `${message} Nothing was charged.`;
  }
  return 'Something went wrong on our side. Nothing was charged; try again in a moment.';
}

// ---------------------------------------------------------------------------------------------------
// The /dream modal

export interface ModalInitial {
  prompt?: string;
  aspect?: string;
  duration?: string;
  resolution?: string;
  camera?: string;
  loop?: boolean;
  model?: string;
}

const option = (value: string) => ({ text: plain(value.replace(/_/g, ' ')), value });

export function dreamModal(input: { callbackId: string; title: string; submit: string; metadata: ModalMetadata; initial?: ModalInitial; note?: string; withBackend?: boolean }): Block {
  const initial = (input.initial ?? {}) as Record<string, unknown>;
  const blocks: Block[] = [];
  if (input.note) blocks.push({ type: 'context', elements: [mrkdwn(input.note)] });
  for (const def of dreamCommand.options) {
    if (def.name === 'backend' && !input.withBackend) continue;
    // Every field is optional: a start image alone is a valid request; the submit handler checks the rest.
    const base = { type: 'input', block_id: def.name, optional: true, label: plain(labelFor(def.name, def.description)) };
    const value = initial[def.name];
    if (def.kind === 'image') {
      blocks.push({ ...base, element: { type: 'file_input', action_id: def.name, filetypes: ['png', 'jpg', 'jpeg', 'webp'], max_files: 1 } });
    } else if (def.kind === 'boolean') {
      const choice = { text: plain(def.description), value: 'yes' };
      blocks.push({ ...base, element: { type: 'checkboxes', action_id: def.name, options: [choice], ...(value ? { initial_options: [choice] } : {}) } });
    } else if ('choices' in def) {
      blocks.push({ ...base, element: { type: 'static_select', action_id: def.name, placeholder: plain('Default'), options: def.choices.map(option), ...(typeof value === 'string' && def.choices.includes(value as never) ? { initial_option: option(value) } : {}) } });
    } else {
      const multiline = def.name === 'prompt';
      blocks.push({
        ...base,
        element: {
          type: 'plain_text_input', action_id: def.name, multiline, max_length: multiline ? 3000 : 64,
          ...(multiline ? { placeholder: plain('A red fox trots through fresh snow at dawn, slow push in') } : {}),
          ...(typeof value === 'string' && value ? { initial_value: clip(value, multiline ? 3000 : 64) } : {}),
        },
      });
    }
  }
  return {
    type: 'modal', callback_id: input.callbackId, title: plain(input.title), submit: plain(input.submit), close: plain('Cancel'),
    private_metadata: encodeMetadata(input.metadata), blocks,
  };
}

function labelFor(name: string, description: string): string {
  return ({ prompt: 'Prompt', image: 'Start image', end_image: 'End image', loop: 'Loop', model: 'Model' } as Record<string, string>)[name] ?? description;
}

// ---------------------------------------------------------------------------------------------------
// App Home and the admin modals

export interface HomeInput {
  user: string;
  summary: MemberSummary;
  recent: Pick<Generation, 'id' | 'state' | 'request' | 'createdAt'>[];
  admin?: { report: UsageReport; chartFileId?: string };
}

const stateIcon: Record<string, string> = { queued: '⏳', dispatched: '⏳', running: '🎞️', succeeded: '📤', delivered: '✅', failed: '❌', cancelled: '🚫' };

function periodWord(period: string): string {
  return ({ monthly: 'this month', weekly: 'this week', daily: 'today', none: 'in total' } as Record<string, string>)[period] ?? period;
}

export function homeView(input: HomeInput): Block {
  const s = input.summary;
  const reset = s.nextReset ? ` · resets ${s.nextReset.toISOString().slice(0, 10)}` : '';
  const cap = s.memberCap === null ? 'no personal cap' : `your cap is ${credits(s.memberCap)}`;
  const blocks: Block[] = [
    { type: 'header', text: plain('🎬 Dreambot') },
    { type: 'section', text: mrkdwn(`*Your team* has *${credits(s.teamAvailable)}* left of ${credits(s.teamLimit)} ${periodWord(s.period)}${reset}.\n*You* used ${credits(s.memberUsed)} ${periodWord(s.period)}; ${cap}.`) },
  ];
  if (s.active.length) {
    blocks.push({ type: 'section', text: mrkdwn(`*In progress*\n${s.active.slice(0, 5).map((a) => `${stateIcon[a.state] ?? '•'} ${escape(clip(a.prompt || '(image only)', 80))} — ${a.state}${a.state === 'running' ? ` ${Math.round(a.progress * 100)}%` : ''}`).join('\n')}`) });
  }
  const recent = input.recent.slice(0, 8);
  blocks.push({ type: 'section', text: mrkdwn(recent.length ? `*Your recent clips*\n${recent.map((g) => `${stateIcon[g.state] ?? '•'} ${escape(clip(g.request.prompt || '(image only)', 80))} · ${new Date(g.createdAt).toISOString().slice(0, 10)}`).join('\n')}` : '*Your recent clips*\nNone yet. Type `/dream a paper boat on a stream` in any channel.') });
  blocks.push({ type: 'context', elements: [mrkdwn(`\`/dream PROMPT ${FLAG_HELP}\` · \`/dream\` alone opens a form · react :repeat: on a clip to re-roll · \`/dream-credits\``)] });
  if (input.admin) {
    const r = input.admin.report;
    blocks.push({ type: 'divider' }, { type: 'header', text: plain('Admin') });
    blocks.push({
      type: 'section',
      fields: [
        mrkdwn(`*Limit*\n${credits(r.limit)} ${r.period}`), mrkdwn(`*Period*\n${r.periodKey}`),
        mrkdwn(`*Used this period*\n${credits(r.total)}`), mrkdwn(`*Left*\n${credits(r.available)}`),
      ],
    });
    if (input.admin.chartFileId) {
      blocks.push({ type: 'image', slack_file: { id: input.admin.chartFileId }, alt_text: `Credits used ${r.periodKey}: ${r.total} of ${r.limit}`, title: plain('Where the credits went') });
    } else if (r.byMember.length) {
      blocks.push({ type: 'section', text: mrkdwn(r.byMember.slice(0, 10).map((m) => `• ${escape(m.name)}: ${credits(m.credits)} (${m.clips} clip${m.clips === 1 ? '' : 's'})`).join('\n')) });
    }
    blocks.push({
      type: 'actions', block_id: 'admin',
      elements: [
        { type: 'button', action_id: HOME_ACTIONS.setLimit, text: plain('Set limit…'), style: 'primary' },
        { type: 'button', action_id: HOME_ACTIONS.grant, text: plain('Grant credits…') },
        { type: 'button', action_id: HOME_ACTIONS.refresh, text: plain('Refresh') },
      ],
    });
    blocks.push({ type: 'context', elements: [mrkdwn('More in `/dream-admin help`: per-member caps, defaults, blocklist, linking a Discord server.')] });
  }
  return { type: 'home', blocks };
}

export function limitModal(current: { limit: number; period: string }): Block {
  return {
    type: 'modal', callback_id: VIEWS.limit, title: plain('Credit limit'), submit: plain('Save'), close: plain('Cancel'),
    blocks: [
      { type: 'input', block_id: 'limit', label: plain('Credits per period'), element: { type: 'number_input', action_id: 'limit', is_decimal_allowed: false, min_value: '0', initial_value: String(current.limit) } },
      { type: 'input', block_id: 'period', label: plain('Period'), element: { type: 'static_select', action_id: 'period', options: periods.map(option), initial_option: option(current.period) } },
    ],
  };
}

export function grantModal(): Block {
  return {
    type: 'modal', callback_id: VIEWS.grant, title: plain('Grant credits'), submit: plain('Grant'), close: plain('Cancel'),
    blocks: [{ type: 'input', block_id: 'amount', label: plain('Credits to add now'), element: { type: 'number_input', action_id: 'amount', is_decimal_allowed: false, min_value: '1' } }],
  };
}

export function usageText(r: UsageReport): string {
  const lines = [`*Usage ${r.periodKey}*: ${credits(r.total)} of ${credits(r.limit)} used, ${credits(r.available)} left.`];
  for (const m of r.byMember.slice(0, 15)) lines.push(`• ${escape(m.name)}: ${credits(m.credits)} (${m.clips} clip${m.clips === 1 ? '' : 's'})`);
  if (r.byMember.length === 0) lines.push('Nobody has spent anything yet this period.');
  lines.push('The chart is on the bot\'s Home tab.');
  return lines.join('\n');
}

export function creditsText(s: MemberSummary): string {
  const reset = s.nextReset ? `; it resets ${s.nextReset.toISOString().slice(0, 10)}` : '';
  const cap = s.memberCap === null ? '' : ` of your ${credits(s.memberCap)} cap`;
  const active = s.active.length ? `\nIn progress: ${s.active.map((a) => `${escape(clip(a.prompt || '(image only)', 40))} (${a.state})`).join(', ')}.` : '';
  return `Your team has *${credits(s.teamAvailable)}* left of ${credits(s.teamLimit)} ${periodWord(s.period)}${reset}. You used ${credits(s.memberUsed)}${cap}.${active}`;
}
