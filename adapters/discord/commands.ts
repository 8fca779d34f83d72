import {
  ApplicationCommandOptionType, ApplicationCommandType, ApplicationIntegrationType, InteractionContextType, PermissionFlagsBits, Routes,
  type REST, type RESTPostAPIChatInputApplicationCommandsJSONBody, type APIApplicationCommandOption,
} from 'discord.js';
import { dreamCommand } from '../../commands/dream.ts';
import { periods } from '../../src/ledger/periods.ts';
import { aspects, backendChoices, durations, resolutions } from '../../src/request.ts';
import { CLEAR, DREAM, DREAM_ADMIN, DREAM_CREDITS } from './parse.ts';

/**
 * The slash commands as Discord stores them, rendered from the declarative definitions in commands/,
 * and a register step that diffs against what Discord already has and only sends what differs
 * (Sapphire's computeDifferences idea): re-running it costs no creates of the 200 a day per guild.
 */
export type CommandBody = RESTPostAPIChatInputApplicationCommandsJSONBody;

const choices = (values: readonly string[]) => values.map((v) => ({ name: v, value: v }));

export function dreamCommandBody(opts: { allowDms: boolean }): CommandBody {
  const options: APIApplicationCommandOption[] = dreamCommand.options.map((o) => {
    const base = { name: o.name, description: o.description, required: 'required' in o && o.required === true };
    if (o.kind === 'image') return { ...base, type: ApplicationCommandOptionType.Attachment };
    if (o.kind === 'boolean') return { ...base, type: ApplicationCommandOptionType.Boolean };
    // Discord refuses choices together with autocomplete: an autocompleted option's values come from handlers.ts.
    if ('autocomplete' in o && o.autocomplete) return { ...base, type: ApplicationCommandOptionType.String, autocomplete: true };
    return { ...base, type: ApplicationCommandOptionType.String, ...('choices' in o && o.choices ? { choices: choices(o.choices) } : {}) };
  });
  return {
    name: DREAM, type: ApplicationCommandType.ChatInput, description: dreamCommand.description.slice(0, 100), options,
    contexts: opts.allowDms ? [InteractionContextType.Guild, InteractionContextType.BotDM] : [InteractionContextType.Guild],
    integration_types: [ApplicationIntegrationType.GuildInstall],
  };
}

export function creditsCommandBody(opts: { allowDms: boolean }): CommandBody {
  return {
    name: DREAM_CREDITS, type: ApplicationCommandType.ChatInput, description: "Your team's credits, your own use, and your clips in progress",
    contexts: opts.allowDms ? [InteractionContextType.Guild, InteractionContextType.BotDM] : [InteractionContextType.Guild],
    integration_types: [ApplicationIntegrationType.GuildInstall],
  };
}

export function adminCommandBody(): CommandBody {
  const Sub = ApplicationCommandOptionType.Subcommand;
  const int = (name: string, description: string, required: boolean, min: number) =>
    ({ type: ApplicationCommandOptionType.Integer, name, description, required, min_value: min }) as const;
  const str = (name: string, description: string, values?: readonly string[]) =>
    ({ type: ApplicationCommandOptionType.String, name, description, required: false, ...(values ? { choices: choices([...values, CLEAR]) } : {}) }) as const;
  return {
    name: DREAM_ADMIN, type: ApplicationCommandType.ChatInput, description: 'Credits, caps, defaults and blocklist for this server (Manage Server)',
    default_member_permissions: String(PermissionFlagsBits.ManageGuild), contexts: [InteractionContextType.Guild],
    integration_types: [ApplicationIntegrationType.GuildInstall],
    options: [
      { type: Sub, name: 'limit', description: "Set the team's credit limit and how often it resets", options: [
        int('credits', 'Credits per period', true, 0),
        { type: ApplicationCommandOptionType.String, name: 'period', description: 'How often the limit resets', required: true, choices: choices(periods) },
      ] },
      { type: Sub, name: 'grant', description: 'Add credits to this period', options: [int('credits', 'Credits to add', true, 1)] },
      { type: Sub, name: 'user-cap', description: "Cap one member's credits per period (leave credits empty to remove)", options: [
        { type: ApplicationCommandOptionType.User, name: 'user', description: 'The member', required: true },
        int('credits', 'Credits per period; empty removes the cap', false, 0),
      ] },
      { type: Sub, name: 'usage', description: 'Where the credits went this period (chart)' },
      { type: Sub, name: 'defaults', description: 'Team defaults for new clips ("clear" removes one)', options: [
        { type: ApplicationCommandOptionType.String, name: 'model', description: 'Model name ("clear" removes it)', required: false },
        str('resolution', 'Resolution', resolutions), str('aspect', 'Aspect ratio', aspects), str('duration', 'Clip length', durations),
        str('backend', 'Where clips are made', [...backendChoices, 'gpu', 'api']),
      ] },
      { type: ApplicationCommandOptionType.SubcommandGroup, name: 'blocklist', description: 'Words refused in prompts', options: [
        { type: Sub, name: 'add', description: 'Block a word or phrase', options: [{ type: ApplicationCommandOptionType.String, name: 'word', description: 'Word or phrase', required: true, max_length: 100 }] },
        { type: Sub, name: 'remove', description: 'Unblock a word or phrase', options: [{ type: ApplicationCommandOptionType.String, name: 'word', description: 'Word or phrase', required: true, max_length: 100 }] },
        { type: Sub, name: 'list', description: 'Show the blocklist' },
      ] },
      { type: Sub, name: 'link', description: 'Share one budget with a Slack workspace: get a code, or redeem one', options: [
        { type: ApplicationCommandOptionType.String, name: 'code', description: 'A code from the other platform', required: false, max_length: 32 },
      ] },
    ],
  };
}

export function commandBodies(opts: { allowDms: boolean }): CommandBody[] {
  return [dreamCommandBody(opts), creditsCommandBody(opts), adminCommandBody()];
}

// ---------------------------------------------------------------------------------------------------
// Diffing

type Plain = null | boolean | number | string | Plain[] | { [key: string]: Plain };

/** Drops what Discord fills in or leaves out interchangeably, so equal commands compare equal. */
function normalize(value: unknown, key = ''): Plain | undefined {
  if (value === undefined || value === null) return undefined;
  if (Array.isArray(value)) {
    const items = value.map((v) => normalize(v)).filter((v): v is Plain => v !== undefined);
    return items.length ? items : undefined;
  }
  if (typeof value === 'object') {
    const out: Record<string, Plain> = {};
    for (const k of Object.keys(value as object).sort()) {
      if (['id', 'application_id', 'version', 'guild_id', 'dm_permission', 'name_localized', 'description_localized'].includes(k)) continue;
      const v = normalize((value as Record<string, unknown>)[k], k);
      if (v !== undefined) out[k] = v;
    }
    return Object.keys(out).length ? out : undefined;
  }
  if (value === false && ['required', 'nsfw', 'autocomplete'].includes(key)) return undefined;
  return value as Plain;
}

function comparable(command: object): string {
  const c = { type: 1, integration_types: [0], ...command } as Record<string, unknown>;
  return JSON.stringify(normalize(c) ?? {});
}

export interface SyncResult {
  created: string[];
  updated: string[];
  deleted: string[];
  unchanged: string[];
}

interface Existing { id: string; name: string; type?: number }

/**
 * Makes the application's commands (global, or one guild's) equal `desired`, sending only the changes:
 * POST for a new command, PATCH for a changed one, DELETE for one we no longer declare.
 */
export async function syncCommands(rest: REST, applicationId: string, desired: CommandBody[], guildId?: string): Promise<SyncResult> {
  const list = guildId ? Routes.applicationGuildCommands(applicationId, guildId) : Routes.applicationCommands(applicationId);
  const one = (id: string) => (guildId ? Routes.applicationGuildCommand(applicationId, guildId, id) : Routes.applicationCommand(applicationId, id));
  const existing = (await rest.get(list)) as (Existing & Record<string, unknown>)[];
  const result: SyncResult = { created: [], updated: [], deleted: [], unchanged: [] };
  const key = (c: { name: string; type?: number }) => `${c.type ?? 1}:${c.name}`;
  const byKey = new Map(existing.map((c) => [key(c), c]));
  for (const command of desired) {
    const current = byKey.get(key(command));
    byKey.delete(key(command));
    if (!current) {
      await rest.post(list, { body: command });
      result.created.push(command.name);
    } else if (comparable(current) !== comparable(command)) {
      await rest.patch(one(current.id), { body: command });
      result.updated.push(command.name);
    } else {
      result.unchanged.push(command.name);
    }
  }
  for (const stale of byKey.values()) {
    await rest.delete(one(stale.id));
    result.deleted.push(stale.name);
  }
  return result;
}
