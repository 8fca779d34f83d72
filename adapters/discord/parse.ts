import type { Attachment, AutocompleteInteraction, ChatInputCommandInteraction } from 'discord.js';
import { dreamCommand, toRequest } from '../../commands/dream.ts';
import { ErrorCode, userError } from '../../src/errors.ts';
import { AUTOCOMPLETE_OPTIONS, type AutocompleteOption } from './autocomplete.ts';

/**
 * Discord payloads → neutral values. Nothing here does I/O: the /dream options become a request for
 * admission, a button's custom_id becomes "clip X, action Y", a raw reaction becomes a few ids.
 */

export const DREAM = 'dream';
export const DREAM_CREDITS = 'dream-credits';
export const DREAM_ADMIN = 'dream-admin';

export const buttonActions = ['reroll', 'remix', 'extend', 'upscale', 'delete'] as const;
export type ButtonAction = (typeof buttonActions)[number];

const UUID = '[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}';
const BUTTON_ID = new RegExp(`^dream:(${buttonActions.join('|')}):(${UUID})$`);
const MODAL_ID = new RegExp(`^dream-remix:(${UUID})$`);
export const REMIX_PROMPT_FIELD = 'prompt';

/** `dream:<action>:<generation id>`: 49 characters at most, well under Discord's 100, and never the prompt. */
export function buttonId(action: ButtonAction, generationId: string): string {
  return `dream:${action}:${generationId}`;
}

export function parseButtonId(customId: string): { action: ButtonAction; generationId: string } | null {
  const match = BUTTON_ID.exec(customId);
  return match ? { action: match[1] as ButtonAction, generationId: match[2]! } : null;
}

export function remixModalId(generationId: string): string {
  return `dream-remix:${generationId}`;
}

export function parseRemixModalId(customId: string): string | null {
  return MODAL_ID.exec(customId)?.[1] ?? null;
}

const PICTURE_TYPES = new Set(['image/png', 'image/jpeg', 'image/webp']);

/**
 * A first look at an attachment, from what Discord says about it (type, size). Admission sniffs the
 * bytes anyway: an ATTACHMENT option's file_types match the extension only, so a renamed PDF gets through
 * here and is refused there.
 */
export function attachmentProblem(attachment: Pick<Attachment, 'name' | 'contentType' | 'size'>, maxBytes: number): string | null {
  const type = attachment.contentType?.split(';')[0]?.trim().toLowerCase();
  if (type && !PICTURE_TYPES.has(type)) {
    const what = type === 'application/pdf' ? 'a PDF' : `a ${type} file`;
    return `"${attachment.name}" is ${what}, not a picture I can animate. Attach a PNG, JPEG or WebP picture; nothing was charged.`;
  }
  if (attachment.size > maxBytes) {
    const mb = (n: number) => (n / (1024 * 1024)).toFixed(1).replace(/\.0$/, '');
    return `"${attachment.name}" is ${mb(attachment.size)} MB; the limit is ${mb(maxBytes)} MB. Attach a smaller picture; nothing was charged.`;
  }
  return null;
}

/** The /dream options as given, in the neutral request's terms; attachments become URL sources. */
export function dreamRequest(interaction: ChatInputCommandInteraction, maxImageBytes: number): Record<string, unknown> {
  const values: Record<string, unknown> = {};
  for (const option of dreamCommand.options) {
    if (option.kind === 'image') {
      const attachment = interaction.options.getAttachment(option.name);
      if (!attachment) continue;
      const problem = attachmentProblem(attachment, maxImageBytes);
      if (problem) throw userError(ErrorCode.UnsupportedImage, problem);
      values[option.name] = { kind: 'url', url: attachment.url };
    } else if (option.kind === 'boolean') {
      const value = interaction.options.getBoolean(option.name);
      if (value !== null) values[option.name] = value;
    } else {
      const value = interaction.options.getString(option.name);
      if (value !== null) values[option.name] = value;
    }
  }
  return toRequest(values);
}

/** An autocomplete interaction for /dream: the option being typed, what is typed so far, and the backend given. */
export interface AutocompleteQuery {
  focused: AutocompleteOption;
  typed: string;
  backend: string | null;
}

/** Null for anything but /dream's `model` and `backend` (those are all we declare autocompleted). */
export function autocompleteQuery(interaction: Pick<AutocompleteInteraction, 'commandName' | 'options'>): AutocompleteQuery | null {
  if (interaction.commandName !== DREAM) return null;
  const focused = interaction.options.getFocused(true);
  const name = AUTOCOMPLETE_OPTIONS.find((o) => o === focused.name);
  if (!name) return null;
  const backend = name === 'backend' ? null : interaction.options.get('backend')?.value;
  return { focused: name, typed: String(focused.value ?? ''), backend: typeof backend === 'string' && backend.trim() ? backend.trim() : null };
}

export type AdminCommand =
  | { kind: 'limit'; credits: number; period: string }
  | { kind: 'grant'; credits: number }
  | { kind: 'user-cap'; user: { id: string; name: string }; credits: number | null }
  | { kind: 'usage' }
  | { kind: 'defaults'; prefs: Record<string, string> }
  | { kind: 'blocklist-add'; word: string }
  | { kind: 'blocklist-remove'; word: string }
  | { kind: 'blocklist-list' }
  | { kind: 'link'; code: string | null };

/** "clear" in a defaults option removes that default (setDefaults takes "" for that). */
export const CLEAR = 'clear';

export function adminCommand(interaction: ChatInputCommandInteraction): AdminCommand {
  const o = interaction.options;
  const group = o.getSubcommandGroup(false);
  const sub = o.getSubcommand(true);
  if (group === 'blocklist') {
    if (sub === 'list') return { kind: 'blocklist-list' };
    const word = o.getString('word', true);
    return sub === 'add' ? { kind: 'blocklist-add', word } : { kind: 'blocklist-remove', word };
  }
  switch (sub) {
    case 'limit':
      return { kind: 'limit', credits: o.getInteger('credits', true), period: o.getString('period', true) };
    case 'grant':
      return { kind: 'grant', credits: o.getInteger('credits', true) };
    case 'user-cap': {
      const user = o.getUser('user', true);
      return { kind: 'user-cap', user: { id: user.id, name: user.globalName ?? user.username }, credits: o.getInteger('credits', false) };
    }
    case 'usage':
      return { kind: 'usage' };
    case 'defaults': {
      const prefs: Record<string, string> = {};
      for (const key of ['model', 'resolution', 'aspect', 'duration', 'backend']) {
        const value = o.getString(key, false);
        if (value !== null) prefs[key] = value === CLEAR ? '' : value;
      }
      return { kind: 'defaults', prefs };
    }
    case 'link':
      return { kind: 'link', code: o.getString('code', false) };
    default:
      throw userError(ErrorCode.InvalidRequest, `Unknown /dream-admin subcommand "${sub}".`);
  }
}

/** The fields of MESSAGE_REACTION_ADD that matter here (events/gateway-events.mdx). */
export interface ReactionEvent {
  userId: string;
  channelId: string;
  messageId: string;
  guildId: string | null;
  emoji: string | null;
  /** Absent on old payloads; when present it lets us drop reactions on other authors' messages unread. */
  messageAuthorId: string | null;
  userIsBot: boolean;
  displayName: string | null;
}

export function parseReaction(d: Record<string, unknown>): ReactionEvent | null {
  const str = (v: unknown) => (typeof v === 'string' && v ? v : null);
  const userId = str(d.user_id);
  const channelId = str(d.channel_id);
  const messageId = str(d.message_id);
  if (!userId || !channelId || !messageId) return null;
  const member = d.member as { user?: { bot?: boolean; username?: string; global_name?: string | null }; nick?: string | null } | undefined;
  const emoji = d.emoji as { name?: string | null } | undefined;
  return {
    userId, channelId, messageId, guildId: str(d.guild_id), emoji: emoji?.name ?? null, messageAuthorId: str(d.message_author_id),
    userIsBot: member?.user?.bot === true,
    displayName: member?.nick ?? member?.user?.global_name ?? member?.user?.username ?? null,
  };
}
