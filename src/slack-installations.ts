import { createCipheriv, createDecipheriv, hkdfSync, randomBytes } from 'node:crypto';
import type { Installation, InstallationQuery, InstallationStore } from '@slack/bolt';
import { sql } from 'drizzle-orm';
import type { Executor } from './db/client.ts';

/**
 * Slack installations for multi-workspace OAuth mode, in Postgres (`slack_installations`): Bolt's
 * InstallationStore, so its InstallProvider stores what `oauth.v2.access` returned and its authorize()
 * finds the bot token of the workspace a request came from. The adapter reaches the table only
 * through this module (adapters write no SQL).
 *
 * The installation is the team: `E:<enterprise_id>` for an org-wide install, else `T:<team_id>`.
 * Tokens are encrypted at rest (AES-256-GCM, the row's key as associated data, so a ciphertext copied to
 * another row does not decrypt); the key is derived with HKDF-SHA256 from SLACK_CLIENT_SECRET, which is
 * the same in every process. Nothing here logs a token, or the installation that carries one.
 * Uninstalling keeps the row (who installed, when) but marks it and clears its tokens.
 */

export interface InstallationRef {
  teamId?: string | undefined;
  enterpriseId?: string | undefined;
  isEnterpriseInstall?: boolean | undefined;
}

/** `E:<enterprise_id>` for an org-wide install, else `T:<team_id>`. */
export function installKey(ref: InstallationRef): string {
  if (ref.isEnterpriseInstall) {
    if (!ref.enterpriseId) throw new Error('an org-wide Slack installation needs its enterprise id');
    return `E:${ref.enterpriseId}`;
  }
  if (!ref.teamId) throw new Error('a Slack installation needs its team id');
  return `T:${ref.teamId}`;
}

const VERSION = 'v1';
const SALT = Buffer.from('dreambot/slack-installations');
const INFO = Buffer.from('bot-token-encryption/v1');

/** AES-256-GCM sealing of tokens, keyed from SLACK_CLIENT_SECRET. */
export class TokenCipher {
  private readonly key: Buffer;

  constructor(secret: string) {
    if (!secret) throw new Error('the Slack token cipher needs SLACK_CLIENT_SECRET');
    this.key = Buffer.from(hkdfSync('sha256', secret, SALT, INFO, 32));
  }

  /** `v1.<iv>.<ciphertext>.<tag>` (base64url), bound to `context` (the install key). */
  seal(plain: string, context: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.key, iv);
    cipher.setAAD(Buffer.from(context));
    const data = Buffer.concat([cipher.update(plain, 'utf8'), cipher.final()]);
    return [VERSION, iv.toString('base64url'), data.toString('base64url'), cipher.getAuthTag().toString('base64url')].join('.');
  }

  open(sealed: string, context: string): string {
    const [version, iv, data, tag] = sealed.split('.');
    if (version !== VERSION || !iv || data === undefined || !tag) throw new Error('not a sealed Slack token');
    const decipher = createDecipheriv('aes-256-gcm', this.key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(context));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
  }
}

type Row = {
  install_key: string;
  enterprise_id: string | null;
  team_id: string | null;
  is_enterprise_install: boolean;
  bot_token: string;
  bot_refresh_token: string | null;
  bot_token_expires_at: Date | string | null;
  installation: Record<string, unknown>;
  uninstalled_at: Date | string | null;
};

type AnyInstallation = Installation<'v1' | 'v2', boolean>;
type Person = { token?: string; refreshToken?: string; [key: string]: unknown };

/** Thrown by fetchInstallation when there is no live installation; Bolt turns it into an authorization failure. */
export class InstallationNotFoundError extends Error {
  constructor(readonly key: string) {
    super(`no Slack installation for ${key}`);
    this.name = 'InstallationNotFoundError';
  }
}

export class SlackInstallationStore implements InstallationStore {
  private readonly cipher: TokenCipher;

  constructor(private readonly db: Executor, clientSecret: string) {
    this.cipher = new TokenCipher(clientSecret);
  }

  /** What `oauth.v2.access` returned (as Bolt shaped it), stored; a reinstall replaces the tokens and clears the uninstall mark. */
  async storeInstallation(installation: AnyInstallation): Promise<void> {
    const isEnterpriseInstall = !!installation.isEnterpriseInstall;
    const key = installKey({ teamId: installation.team?.id, enterpriseId: installation.enterprise?.id, isEnterpriseInstall });
    const bot = installation.bot;
    if (!bot?.token) throw new Error(`the Slack installation ${key} has no bot token`);
    // The JSON copy keeps everything but the tokens: the bot's are in their own (sealed) columns; a user
    // token, should one ever be granted, is sealed in place.
    const json = structuredClone(installation) as unknown as Record<string, unknown>;
    const jsonBot = json.bot as Person;
    delete jsonBot.token;
    delete jsonBot.refreshToken;
    const user = json.user as Person | undefined;
    if (user?.token) user.token = this.cipher.seal(user.token, `${key}:user`);
    if (user?.refreshToken) user.refreshToken = this.cipher.seal(user.refreshToken, `${key}:user-refresh`);
    const expiresAt = bot.expiresAt ? new Date(bot.expiresAt * 1000).toISOString() : null;
    await this.db.execute(sql`
      insert into slack_installations (install_key, enterprise_id, team_id, is_enterprise_install, app_id, bot_user_id, bot_id, bot_token,
        bot_refresh_token, bot_token_expires_at, bot_scopes, installer_user_id, installation)
      values (${key}, ${installation.enterprise?.id ?? null}, ${installation.team?.id ?? null}, ${isEnterpriseInstall}, ${installation.appId ?? null},
        ${bot.userId ?? null}, ${bot.id ?? null}, ${this.cipher.seal(bot.token, key)},
        ${bot.refreshToken ? this.cipher.seal(bot.refreshToken, `${key}:refresh`) : null}, ${expiresAt}::timestamptz,
        array(select jsonb_array_elements_text(${JSON.stringify(bot.scopes ?? [])}::jsonb)), ${installation.user?.id ?? null}, ${JSON.stringify(json)}::jsonb)
      on conflict (install_key) do update set
        enterprise_id = excluded.enterprise_id, team_id = excluded.team_id, is_enterprise_install = excluded.is_enterprise_install,
        app_id = excluded.app_id, bot_user_id = excluded.bot_user_id, bot_id = excluded.bot_id, bot_token = excluded.bot_token,
        bot_refresh_token = excluded.bot_refresh_token, bot_token_expires_at = excluded.bot_token_expires_at, bot_scopes = excluded.bot_scopes,
        installer_user_id = excluded.installer_user_id, installation = excluded.installation,
        installed_at = case when slack_installations.uninstalled_at is null then slack_installations.installed_at else now() end,
        updated_at = now(), uninstalled_at = null`);
  }

  /** The live installation for a query, tokens opened; null when there is none (never installed, or uninstalled). */
  async findInstallation(query: InstallationRef): Promise<AnyInstallation | null> {
    const key = installKey(query);
    const rows = await this.db.execute<Row>(sql`
      select install_key, enterprise_id, team_id, is_enterprise_install, bot_token, bot_refresh_token, bot_token_expires_at, installation, uninstalled_at
      from slack_installations where install_key = ${key}`);
    const row = rows[0];
    if (!row || row.uninstalled_at || !row.bot_token) return null;
    const installation = structuredClone(row.installation) as unknown as AnyInstallation & { bot: Person; user?: Person };
    installation.bot.token = this.cipher.open(row.bot_token, key);
    if (row.bot_refresh_token) installation.bot.refreshToken = this.cipher.open(row.bot_refresh_token, `${key}:refresh`);
    else delete installation.bot.refreshToken;
    if (row.bot_token_expires_at) installation.bot.expiresAt = Math.floor(new Date(row.bot_token_expires_at).getTime() / 1000);
    const user = installation.user;
    if (user?.token) user.token = this.cipher.open(user.token, `${key}:user`);
    if (user?.refreshToken) user.refreshToken = this.cipher.open(user.refreshToken, `${key}:user-refresh`);
    return installation;
  }

  /** Bolt's lookup for every incoming request: throws when the app is not installed there. */
  async fetchInstallation(query: InstallationQuery<boolean>): Promise<AnyInstallation> {
    const found = await this.findInstallation(query);
    if (!found) throw new InstallationNotFoundError(installKey(query));
    return found;
  }

  /** `app_uninstalled` / `tokens_revoked`: the row stays, marked, with its tokens gone. */
  async deleteInstallation(query: InstallationQuery<boolean> | InstallationRef): Promise<void> {
    const key = installKey(query);
    await this.db.execute(sql`
      update slack_installations
      set bot_token = '', bot_refresh_token = null, bot_token_expires_at = null,
        installation = installation #- '{user,token}' #- '{user,refreshToken}',
        uninstalled_at = coalesce(uninstalled_at, now()), updated_at = now()
      where install_key = ${key}`);
  }
}
