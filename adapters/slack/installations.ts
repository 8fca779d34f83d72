/**
 * Which bot token a Slack call uses. Single-workspace mode (SLACK_BOT_TOKEN): always that one. Multi-
 * workspace OAuth mode (SLACK_CLIENT_ID + SLACK_CLIENT_SECRET + SLACK_STATE_SECRET): the installation of
 * the team the work belongs to (the org for an org-wide install, else the workspace), read through the
 * core's SlackInstallationStore (Postgres, tokens sealed there). Requests get their client from Bolt, which
 * authorized them through the same store; deliveries, which come from the queue, look it up here.
 */
import { webApi } from '@slack/bolt';
import { ConfigError } from '../../src/config.ts';
import { ErrorCode, permanentError, type AppError } from '../../src/errors.ts';
import { InstallationNotFoundError, installKey, type InstallationRef, type SlackInstallationStore } from '../../src/slack-installations.ts';

type WebClient = webApi.WebClient;

export const INSTALL_PATH = '/slack/install';
export const REDIRECT_PATH = '/slack/oauth_redirect';

/**
 * The bot scopes the install page asks for: slack/manifest.yml's `oauth_config.scopes.bot`, which the
 * runtime image does not ship (a test keeps the two lists equal).
 */
export const BOT_SCOPES = [
  'commands', 'app_mentions:read', 'chat:write', 'chat:write.public', 'files:read', 'files:write',
  'reactions:read', 'reactions:write', 'users:read',
] as const;

/** A team's place in Slack, as Bolt's context and the stored replyTo carry it. */
export type WorkspaceRef = InstallationRef;

export interface BotAuth {
  client: WebClient;
  token: string;
}

export interface SlackTokens {
  readonly multiWorkspace: boolean;
  /** The bot client for that team. Throws a permanent error when the app is not installed there (any more). */
  forWorkspace(ref: WorkspaceRef): Promise<BotAuth>;
  /** The app was uninstalled there, or its bot token revoked: the installation goes, and so does the cached client. */
  uninstalled(ref: WorkspaceRef): Promise<void>;
}

export const NOT_INSTALLED = 'not_installed';

function notInstalledError(key: string): AppError {
  return permanentError(ErrorCode.BackendFailed, 'Dreambot is not installed in that Slack workspace any more', { context: { slack: NOT_INSTALLED, installation: key } });
}

/** Whether an error (as Bolt wraps it: AuthorizationError → .original → …) comes from a team with no live installation. */
export function isNotInstalled(error: unknown): boolean {
  for (let e = error, depth = 0; e && depth < 5; e = (e as { original?: unknown; cause?: unknown }).original ?? (e as { cause?: unknown }).cause, depth++) {
    if (e instanceof InstallationNotFoundError) return true;
  }
  return false;
}

export function singleWorkspace(client: WebClient, token: string): SlackTokens {
  const auth = { client, token };
  return {
    multiWorkspace: false,
    forWorkspace: async () => auth,
    uninstalled: async () => undefined,
  };
}

export interface InstalledWorkspacesOptions {
  /** Where installations are kept; `uninstalled` marks them there. */
  store: SlackInstallationStore;
  /**
   * The bot token of an installation: Bolt's InstallProvider.authorize() over the same store, which also
   * refreshes a rotating token before it expires (and stores the new one). Throws when there is none.
   */
  authorize: (query: { teamId: string | undefined; enterpriseId: string | undefined; isEnterpriseInstall: boolean }) => Promise<{ botToken?: string }>;
  clientOptions: webApi.WebClientOptions;
  /** How long a looked-up token is reused before the store is asked again. Default 30 s. */
  ttlMs?: number;
}

/** OAuth mode: one WebClient per installation token, looked up in the store and reused for a short while. */
export function installedWorkspaces(options: InstalledWorkspacesOptions): SlackTokens {
  const cache = new Map<string, BotAuth & { until: number }>();
  const ttl = options.ttlMs ?? 30_000;
  return {
    multiWorkspace: true,
    async forWorkspace(ref) {
      const key = installKey(ref);
      // An org-wide token serves every workspace of the org; each gets a client that names its workspace, as Bolt's do.
      const slot = `${key}|${ref.teamId ?? ''}`;
      const cached = cache.get(slot);
      if (cached && cached.until > Date.now()) return cached;
      const token = await options.authorize({ teamId: ref.teamId, enterpriseId: ref.enterpriseId, isEnterpriseInstall: !!ref.isEnterpriseInstall })
        .then((found) => found.botToken, (error: unknown) => {
          // "No installation" is final; anything else (the database) is worth a retry.
          if (isNotInstalled(error)) return undefined;
          throw error;
        });
      if (!token) {
        cache.delete(slot);
        throw notInstalledError(key);
      }
      const client = cached?.token === token ? cached.client : new webApi.WebClient(token, { ...options.clientOptions, ...(ref.teamId ? { teamId: ref.teamId } : {}) });
      const entry = { client, token, until: Date.now() + ttl };
      cache.set(slot, entry);
      return entry;
    },
    async uninstalled(ref) {
      const key = installKey(ref);
      for (const slot of [...cache.keys()]) if (slot.startsWith(`${key}|`)) cache.delete(slot);
      await options.store.deleteInstallation(ref);
    },
  };
}

type OAuthVariable = 'SLACK_CLIENT_ID' | 'SLACK_CLIENT_SECRET' | 'SLACK_STATE_SECRET';
const OAUTH_VARIABLES: OAuthVariable[] = ['SLACK_CLIENT_ID', 'SLACK_CLIENT_SECRET', 'SLACK_STATE_SECRET'];

/**
 * Whether the OAuth variables ask for multi-workspace mode: all three set, or none. Some but not all is a
 * boot-time error that names what is missing.
 */
export function oauthVariables(config: Partial<Record<OAuthVariable, string | undefined>>): { clientId: string; clientSecret: string; stateSecret: string } | null {
  const missing = OAUTH_VARIABLES.filter((k) => !config[k]);
  if (missing.length === OAUTH_VARIABLES.length) return null;
  if (missing.length) {
    const given = OAUTH_VARIABLES.filter((k) => config[k]);
    throw new ConfigError(`${missing.join(' and ')} ${missing.length === 1 ? 'is' : 'are'} required for Slack multi-workspace OAuth mode (${given.join(' and ')} ${given.length === 1 ? 'is' : 'are'} set); set all of SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_STATE_SECRET, or none of them. See .env.example`);
  }
  return { clientId: config.SLACK_CLIENT_ID!, clientSecret: config.SLACK_CLIENT_SECRET!, stateSecret: config.SLACK_STATE_SECRET! };
}
