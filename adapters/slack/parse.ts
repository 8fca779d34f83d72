/**
 * Slack payloads → neutral values, with no I/O: `/dream` text with flags, mention text, modal state,
 * `/dream-admin` subcommands, team/member references and idempotency keys. Mistakes come back as user
 * errors that say what to type instead.
 */
import { dreamCommand, toRequest } from '../../commands/dream.ts';
import { ErrorCode, userError } from '../../src/errors.ts';
import type { ImageSource } from '../../src/request.ts';
import type { MemberRef, TeamRef } from '../../src/teams.ts';

type OptionName = (typeof dreamCommand.options)[number]['name'];

/** Flags people type after /dream or an @mention; each option's own name works too (`--end-image`). */
const FLAG_ALIASES: Record<string, OptionName> = {
  ar: 'aspect', aspect: 'aspect', 'aspect-ratio': 'aspect',
  duration: 'duration', dur: 'duration', d: 'duration',
  resolution: 'resolution', res: 'resolution', r: 'resolution',
  camera: 'camera', cam: 'camera',
  loop: 'loop',
  model: 'model', m: 'model',
  backend: 'backend',
  image: 'image', start: 'image', 'start-image': 'image',
  'end-image': 'end_image', end: 'end_image',
};

export const FLAG_HELP = '--ar 16:9|9:16|1:1… --duration 5s|9s --resolution 540p|720p|1080p --camera push_in|orbit_left… --loop --model NAME --image URL --end-image URL';

/** Slack's escaping in message text (`&lt;` `&gt;` `&amp;`) and its `<…>` references, made readable. */
export function decodeSlackText(text: string): string {
  return text
    .replace(/<@([UW][A-Z0-9]+)(?:\|([^>]+))?>/g, (_, id: string, name?: string) => `@${name ?? id}`)
    .replace(/<#(C[A-Z0-9]+)(?:\|([^>]*))?>/g, (_, id: string, name?: string) => `#${name || id}`)
    .replace(/<!(here|channel|everyone)(?:\|[^>]*)?>/g, '@$1')
    .replace(/<!subteam\^[A-Z0-9]+(?:\|([^>]+))?>/g, (_, name?: string) => name ?? '@group')
    .replace(/<((?:https?|mailto):[^|>]+)(?:\|([^>]+))?>/g, (_, url: string, label?: string) => label ?? url)
    .replace(/&lt;/g, '<').replace(/&gt;/g, '>').replace(/&amp;/g, '&');
}

/** A URL as typed in a flag: Slack may wrap it as `<https://…>` or `<https://…|label>`. */
function unwrapUrl(value: string): string {
  const m = /^<([^|>]+)(?:\|[^>]*)?>$/.exec(value);
  return (m ? m[1]! : value).replace(/&amp;/g, '&');
}

function choiceError(flag: string, value: string, choices: readonly string[], what: string) {
  return userError(ErrorCode.InvalidRequest, `\`--${flag} ${value}\`: I don't know that ${what}. Choose one of: ${choices.join(', ')}. Nothing was charged.`, { flag, value });
}

/**
 * `/dream a red fox in snow --ar 9:16 --duration 9s --camera push_in --loop` → option values for
 * `toRequest`. Flags may sit anywhere; what is left is the prompt. An em dash (—ar), as phones and
 * macOS autocorrect type it, counts as `--`.
 */
export function parseDreamText(text: string): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  const words: string[] = [];
  const tokens = text.replace(/[\u2014\u2013]/g, '--').split(/\s+/).filter(Boolean);
  for (let i = 0; i < tokens.length; i++) {
    const token = tokens[i]!;
    const m = /^--([a-z][a-z0-9_-]*)(?:=(.*))?$/i.exec(token);
    if (!m) {
      words.push(token);
      continue;
    }
    const flag = m[1]!.toLowerCase().replace(/_/g, '-');
    const name = FLAG_ALIASES[flag];
    if (!name) throw userError(ErrorCode.InvalidRequest, `I don't know the flag \`--${flag}\`. Flags: ${FLAG_HELP}. Nothing was charged.`, { flag });
    const def = dreamCommand.options.find((o) => o.name === name)!;
    if (def.kind === 'boolean') {
      const v = m[2]?.toLowerCase();
      values[name] = v === undefined || !['false', 'no', '0', 'off'].includes(v);
      continue;
    }
    let value = m[2];
    if (value === undefined) {
      value = tokens[i + 1];
      if (value === undefined || /^--/.test(value)) throw userError(ErrorCode.InvalidRequest, `\`--${flag}\` needs a value, e.g. ${example(name)}. Nothing was charged.`, { flag });
      i += 1;
    }
    if (def.kind === 'image') {
      values[name] = { kind: 'url', url: unwrapUrl(value) } satisfies ImageSource;
      continue;
    }
    if (name === 'duration' && /^\d+$/.test(value)) value = `${value}s`;
    if (name === 'aspect') value = value.replace(/x/i, ':');
    const choices = 'choices' in def ? (def.choices as readonly string[]) : undefined;
    if (choices && name !== 'backend' && !choices.includes(value)) throw choiceError(flag, value, choices, def.description.toLowerCase());
    values[name] = value;
  }
  const prompt = decodeSlackText(words.join(' ')).trim();
  if (prompt) values.prompt = prompt;
  return values;
}

function example(name: OptionName): string {
  return ({ aspect: '`--ar 9:16`', duration: '`--duration 9s`', resolution: '`--resolution 720p`', camera: '`--camera push_in`', model: '`--model ray-2`', backend: '`--backend preview`', image: '`--image https://…/cat.png`', end_image: '`--end-image https://…/dog.png`' } as Record<string, string>)[name] ?? `\`--${name} …\``;
}

/** The text of an @mention without the bot's own mention(s). */
export function mentionText(text: string, botUserId: string | undefined): string {
  const own = botUserId ? new RegExp(`<@${botUserId}(?:\\|[^>]*)?>`, 'g') : /^\s*<@[UW][A-Z0-9]+(?:\|[^>]*)?>/;
  return text.replace(own, ' ').trim();
}

// ---------------------------------------------------------------------------------------------------
// Modal state

export interface SlackFileRef {
  id: string;
  name?: string;
  mimetype?: string;
  size?: number;
  url_private?: string;
  url_private_download?: string;
}

export interface ModalValues {
  values: Record<string, unknown>;
  startFile?: SlackFileRef;
  endFile?: SlackFileRef;
}

type StateValue = {
  type?: string;
  value?: string | null;
  selected_option?: { value: string } | null;
  selected_options?: { value: string }[];
  files?: SlackFileRef[];
};

/** view.state.values (block id = option name) → option values; file inputs come back as file refs. */
export function parseModalState(state: Record<string, Record<string, StateValue>> | undefined): ModalValues {
  const out: ModalValues = { values: {} };
  for (const def of dreamCommand.options) {
    const entry = state?.[def.name]?.[def.name];
    if (!entry) continue;
    if (def.kind === 'image') {
      const file = entry.files?.[0];
      if (file) out[def.name === 'image' ? 'startFile' : 'endFile'] = file;
    } else if (def.kind === 'boolean') {
      if (entry.selected_options?.length) out.values[def.name] = true;
    } else if (entry.selected_option) {
      out.values[def.name] = entry.selected_option.value;
    } else if (typeof entry.value === 'string' && entry.value.trim()) {
      out.values[def.name] = entry.value.trim();
    }
  }
  return out;
}

/** What a modal remembers between opening and submitting (private_metadata, ≤ 3000 characters). */
export interface ModalMetadata {
  /** Channel to post the job message in. */
  c: string;
  /** Thread to post it in, if any. */
  t?: string;
  /** Start and end images taken from a message ("Dream this"): Slack file ids. */
  s?: string;
  e?: string;
  /** Remix: the parent generation. */
  p?: string;
}

export function encodeMetadata(meta: ModalMetadata): string {
  return JSON.stringify(meta);
}

export function decodeMetadata(text: string | undefined): ModalMetadata | null {
  if (!text) return null;
  try {
    const meta = JSON.parse(text) as ModalMetadata;
    return typeof meta.c === 'string' ? meta : null;
  } catch {
    return null;
  }
}

/** The request a modal describes, images as placeholders, so pure validation can run before ack. */
export function modalRequest(values: ModalValues, images: { start?: ImageSource; end?: ImageSource }): Record<string, unknown> {
  return toRequest({ ...values.values, ...(images.start ? { image: images.start } : {}), ...(images.end ? { end_image: images.end } : {}) });
}

// ---------------------------------------------------------------------------------------------------
// Who and which request

export interface SlackContextLike {
  teamId?: string;
  enterpriseId?: string;
  isEnterpriseInstall?: boolean;
}

/** The billed team: the org for org-wide installs, else the workspace (platform-slack.md §7). */
export function teamRef(context: SlackContextLike, fallbackTeamId?: string): TeamRef {
  const id = context.isEnterpriseInstall && context.enterpriseId ? context.enterpriseId : (context.teamId ?? fallbackTeamId);
  if (!id) throw new Error('Slack payload carries no team id');
  return { platform: 'slack', externalId: id };
}

export function memberRef(userId: string, name?: string): MemberRef {
  return { externalId: userId, ...(name ? { displayName: name } : {}) };
}

/** Idempotency keys from Slack's own ids, so a redelivery finds the first admission. */
export const keys = {
  command: (triggerId: string) => `slack:cmd:${triggerId}`,
  view: (viewId: string) => `slack:view:${viewId}`,
  event: (eventId: string) => `slack:evt:${eventId}`,
  /** Interactive payloads may arrive twice; a double click is the same request (platform-slack.md §4). */
  action: (channel: string, messageTs: string, actionId: string, user: string) => `slack:act:${channel}:${messageTs}:${actionId}:${user}`,
};

/** A message as the deliveries table names it: ts is unique only within its channel. */
export const messageKey = (channel: string, ts: string) => `${channel}:${ts}`;

export function splitMessageKey(key: string | null | undefined): { channel: string; ts: string } | null {
  const m = key ? /^([A-Z0-9]+):(\d+\.\d+)$/.exec(key) : null;
  return m ? { channel: m[1]!, ts: m[2]! } : null;
}

// ---------------------------------------------------------------------------------------------------
// /dream-admin

export type AdminCommand =
  | { kind: 'help' }
  | { kind: 'limit'; limit: number; period: string }
  | { kind: 'grant'; amount: number }
  | { kind: 'user-cap'; userId: string; name?: string; cap: number | null }
  | { kind: 'usage' }
  | { kind: 'defaults'; prefs: Record<string, string> }
  | { kind: 'blocklist'; op: 'add' | 'remove' | 'list'; word?: string }
  | { kind: 'link'; code?: string };

export const ADMIN_HELP = [
  '`/dream-admin limit 500 monthly` — credits per period (monthly, weekly, daily, none)',
  '`/dream-admin grant 100` — add credits now',
  '`/dream-admin user-cap @someone 50` — a member\'s own cap per period (`none` removes it)',
  '`/dream-admin usage` — where the credits went this period',
  '`/dream-admin defaults aspect=9:16 duration=9s` — team defaults (`aspect=` clears one)',
  '`/dream-admin blocklist add|remove|list WORD` — words refused in prompts',
  '`/dream-admin link` — a code to share one budget with a Discord server; `link CODE` to redeem one',
].join('\n');

function usage(message: string) {
  return userError(ErrorCode.InvalidRequest, `${message}\n${ADMIN_HELP}`);
}

function credits(value: string | undefined, what: string): number {
  if (value === undefined || !/^\d+$/.test(value)) throw usage(`${what} must be a whole number of credits, e.g. \`500\`.`);
  return Number(value);
}

const DEFAULT_KEYS: Record<string, string> = { aspect: 'aspect', ar: 'aspect', duration: 'duration', resolution: 'resolution', res: 'resolution', model: 'model', backend: 'backend' };

export function parseAdminText(text: string): AdminCommand {
  const words = text.trim().split(/\s+/).filter(Boolean);
  const [sub, ...rest] = words;
  switch (sub?.toLowerCase()) {
    case undefined:
    case 'help':
      return { kind: 'help' };
    case 'limit':
      return { kind: 'limit', limit: credits(rest[0], 'The limit'), period: (rest[1] ?? 'monthly').toLowerCase() };
    case 'grant':
      return { kind: 'grant', amount: credits(rest[0], 'The amount') };
    case 'user-cap':
    case 'usercap':
    case 'cap': {
      const m = /^<@([UW][A-Z0-9]+)(?:\|([^>]+))?>$/.exec(rest[0] ?? '');
      if (!m) throw usage('Name the member with an @mention, e.g. `/dream-admin user-cap @someone 50`.');
      const cap = rest[1]?.toLowerCase() === 'none' ? null : credits(rest[1], 'The cap');
      return { kind: 'user-cap', userId: m[1]!, ...(m[2] ? { name: m[2] } : {}), cap };
    }
    case 'usage':
      return { kind: 'usage' };
    case 'defaults': {
      const prefs: Record<string, string> = {};
      for (const pair of rest) {
        const m = /^-*([a-z]+)=(.*)$/i.exec(pair);
        const key = m ? DEFAULT_KEYS[m[1]!.toLowerCase()] : undefined;
        if (!m || !key) throw usage(`I can't read \`${pair}\`; write key=value with a key among aspect, duration, resolution, model, backend.`);
        prefs[key] = m[2]!;
      }
      return { kind: 'defaults', prefs };
    }
    case 'blocklist': {
      const op = (rest[0] ?? 'list').toLowerCase();
      if (op === 'list') return { kind: 'blocklist', op };
      if (op !== 'add' && op !== 'remove') throw usage(`\`blocklist ${op}\`: use add, remove or list.`);
      const word = decodeSlackText(rest.slice(1).join(' ')).trim();
      if (!word) throw usage(`Say which word to ${op}, e.g. \`/dream-admin blocklist ${op} zombie\`.`);
      return { kind: 'blocklist', op, word };
    }
    case 'link':
      return rest[0] ? { kind: 'link', code: rest[0] } : { kind: 'link' };
    default:
      throw usage(`I don't know \`${sub}\`.`);
  }
}
