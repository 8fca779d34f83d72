import { REST } from 'discord.js';
import { commandBodies, syncCommands, type SyncResult } from '../../adapters/discord/commands.ts';
import type { Config } from '../config.ts';
import { refuse } from './output.ts';

export interface CommandsRegisterOptions {
  /** A guild id: register there (instant, for trials) instead of globally. */
  guild?: string;
  json?: boolean;
}

/**
 * `dreambot commands register [--guild ID]`: makes Discord's slash commands match this version's
 * (/dream, /dream-credits, /dream-admin), sending only what differs, so re-running it is free.
 * Needs only DISCORD_TOKEN (and DISCORD_APPLICATION_ID, else it is read from the token's application).
 */
export async function commandsRegister(config: Config, opts: CommandsRegisterOptions, out: NodeJS.WritableStream = process.stdout): Promise<SyncResult> {
  if (!config.DISCORD_TOKEN) refuse('DISCORD_TOKEN is required to register commands; see .env.example');
  if (opts.guild !== undefined && !/^\d{17,20}$/.test(opts.guild)) refuse(`--guild must be a server id (a number of 17-20 digits), got "${opts.guild}".`);
  const rest = new REST({ api: config.DISCORD_API_URL, retries: 2 }).setToken(config.DISCORD_TOKEN);
  const applicationId = config.DISCORD_APPLICATION_ID ?? ((await rest.get('/applications/@me')) as { id: string }).id;
  const result = await syncCommands(rest, applicationId, commandBodies({ allowDms: config.DISCORD_ALLOW_DMS }), opts.guild);
  if (opts.json) {
    out.write(`${JSON.stringify({ scope: opts.guild ? `guild:${opts.guild}` : 'global', ...result })}\n`);
  } else {
    const scope = opts.guild ? `server ${opts.guild}` : 'global (may take up to an hour to show everywhere)';
    const list = (names: string[]) => (names.length ? names.map((n) => `/${n}`).join(', ') : 'none');
    out.write(`Commands, ${scope}: created ${list(result.created)}; updated ${list(result.updated)}; deleted ${list(result.deleted)}; unchanged ${list(result.unchanged)}.\n`);
  }
  return result;
}
