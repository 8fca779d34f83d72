/**
 * The Slack adapter: a Bolt App on the project's HTTP server (POST /slack/events, signature-checked by
 * Bolt) or on Socket Mode when SLACK_APP_TOKEN is set. Transport only: it parses Slack payloads into
 * neutral requests for admission (`flow.ts`), renders Block Kit (`render.ts`) and delivers clips
 * (`deliver.ts`); it never calls a backend or writes SQL itself.
 *
 * Two modes. Single workspace: SLACK_BOT_TOKEN. Multi-workspace OAuth: SLACK_CLIENT_ID, SLACK_CLIENT_SECRET
 * and SLACK_STATE_SECRET (and no SLACK_BOT_TOKEN): teams install through GET /slack/install, their
 * installations live in Postgres (the core's SlackInstallationStore, tokens encrypted), each request runs
 * with its team's token and each clip is delivered with the token of the team it was made for.
 */
import type { App } from '@slack/bolt';
import type { AdapterFactory, ChatAdapter } from '../index.ts';
import { ConfigError } from '../../src/config.ts';
import type { HttpServer } from '../../src/http/server.ts';
import type { Runtime } from '../../src/runtime.ts';
import { SlackInstallationStore } from '../../src/slack-installations.ts';
import { JobMessages, SlackDeliverer } from './deliver.ts';
import { type SlackDeps } from './flow.ts';
import { BOT_SCOPES, INSTALL_PATH, installedWorkspaces, isNotInstalled, oauthVariables, REDIRECT_PATH, singleWorkspace, type SlackTokens, type WorkspaceRef } from './installations.ts';
import { workQueue, type WorkQueue } from '../shared/work-queue.ts';
import { registerAdmin } from './listeners/admin.ts';
import { registerClip } from './listeners/clip.ts';
import { registerDream } from './listeners/dream.ts';
import { createBoltApp, SLACK_MOUNT } from './verify.ts';

export { SLACK_EVENTS_PATH } from './verify.ts';
export { INSTALL_PATH, REDIRECT_PATH } from './installations.ts';

export interface SlackOAuthConfig {
  /** SLACK_CLIENT_ID, SLACK_CLIENT_SECRET (also the key the stored tokens are sealed with), SLACK_STATE_SECRET. */
  clientId: string;
  clientSecret: string;
  stateSecret: string;
  /** PUBLIC_BASE_URL + /slack/oauth_redirect, when known (Slack checks it against the app's redirect URLs). */
  redirectUri?: string;
}

export interface SlackAdapterConfig {
  runtime: Runtime;
  /** The project's HTTP server; required in HTTP mode (no appToken). */
  http?: HttpServer;
  /** SLACK_BOT_TOKEN (xoxb-…): single-workspace mode. */
  botToken?: string;
  /** Multi-workspace OAuth mode (instead of botToken; HTTP mode only). */
  oauth?: SlackOAuthConfig;
  /** SLACK_SIGNING_SECRET; required in HTTP mode. */
  signingSecret?: string;
  /** SLACK_APP_TOKEN (xapp-…): Socket Mode instead of HTTP. */
  appToken?: string;
  /** SLACK_API_URL; a local fake in tests. */
  apiUrl?: string;
  /** SLACK_ADMIN_USER_IDS, parsed: admins besides the workspace's own admins and owners. */
  adminUserIds?: readonly string[];
  /** Minimum time between two updates of one job message. Default 5000. */
  progressEveryMs?: number;
  /** Post-ack work running at once in this process. Default 16. */
  concurrency?: number;
  /** Web API retries per call (WebClient default when unset). */
  retries?: number;
}

export class SlackAdapter implements ChatAdapter {
  readonly platform = 'slack' as const;
  readonly deliverer: SlackDeliverer;
  readonly app: App;
  readonly deps: SlackDeps;
  /** Bot clients by team; in OAuth mode backed by `installations`. */
  readonly tokens: SlackTokens;
  readonly installations?: SlackInstallationStore;
  private readonly jobs: JobMessages;
  private readonly work: WorkQueue;
  private readonly socketMode: boolean;
  private started = false;

  constructor(private readonly config: SlackAdapterConfig) {
    const { runtime } = config;
    const log = runtime.log.child({ platform: 'slack' });
    const apiUrl = config.apiUrl ?? runtime.config.SLACK_API_URL;
    const { oauth } = config;
    if (!oauth && !config.botToken) throw new ConfigError('The Slack adapter needs SLACK_BOT_TOKEN (one workspace) or SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_STATE_SECRET (OAuth installs)');
    if (oauth && config.botToken) throw new ConfigError('Set SLACK_BOT_TOKEN (one workspace) or the Slack OAuth variables (many workspaces), not both');
    if (oauth && config.appToken) throw new ConfigError('Slack multi-workspace OAuth mode runs over HTTP (GET /slack/install, POST /slack/events): unset SLACK_APP_TOKEN');
    const installations = oauth ? new SlackInstallationStore(runtime.db, oauth.clientSecret) : undefined;
    const bolt = createBoltApp({
      apiUrl, log,
      ...(config.botToken ? { token: config.botToken } : {}),
      ...(oauth && installations ? {
        oauth: {
          clientId: oauth.clientId, clientSecret: oauth.clientSecret, stateSecret: oauth.stateSecret, scopes: BOT_SCOPES,
          installationStore: installations, installPath: INSTALL_PATH, redirectPath: REDIRECT_PATH,
          ...(oauth.redirectUri ? { redirectUri: oauth.redirectUri } : {}),
        },
      } : {}),
      ...(config.signingSecret ? { signingSecret: config.signingSecret } : {}),
      ...(config.appToken ? { appToken: config.appToken } : {}),
      ...(config.retries !== undefined ? { retries: config.retries } : {}),
    });
    this.app = bolt.app;
    this.socketMode = bolt.socketMode;
    // Single workspace: Bolt's own client, which carries the token. OAuth: a client per installation.
    const client = bolt.app.client;
    if (installations) this.installations = installations;
    this.tokens = installations
      ? installedWorkspaces({ store: installations, authorize: bolt.authorize!, clientOptions: { slackApiUrl: apiUrl, logger: bolt.app.webClientOptions.logger, ...(config.retries !== undefined ? { retryConfig: { retries: config.retries } } : {}) } })
      : singleWorkspace(client, config.botToken!);
    this.work = workQueue(log, { concurrency: config.concurrency ?? 16, label: 'slack' });
    this.jobs = new JobMessages({ runtime, log, updateEveryMs: config.progressEveryMs ?? 5000, busy: () => this.work.busy() });
    this.deliverer = new SlackDeliverer({ runtime, tokens: this.tokens, log, jobs: this.jobs });
    this.deps = {
      runtime, client, token: config.botToken ?? '', tokens: this.tokens, apiUrl, log, jobs: this.jobs,
      adminUserIds: new Set(config.adminUserIds ?? []), later: (w) => this.work.run(w),
    };
    registerDream(bolt.app, this.deps);
    registerClip(bolt.app, this.deps);
    registerAdmin(bolt.app, this.deps);
    if (installations) registerUninstall(bolt.app, this.deps);
    bolt.app.error(async (error) => {
      // OAuth mode: a request from a team with no (live) installation, e.g. just uninstalled. Bolt acked it; nothing runs.
      if (installations && isNotInstalled(error)) return void log.info({ reason: error.message }, 'slack: request from a team without an installation; ignored');
      log.error({ err: error }, 'slack: unhandled listener error');
    });
    if (bolt.router) {
      if (!config.http) throw new ConfigError('The Slack adapter needs the HTTP server in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode).');
      config.http.mount(SLACK_MOUNT, bolt.router);
    }
  }

  /** Checks the token (auth.test), then listens: the mounted route is live from here on. */
  async start(): Promise<void> {
    if (this.started) return;
    await this.app.init();
    if (this.socketMode) await this.app.start();
    this.jobs.start();
    this.started = true;
  }

  /** Resolves when every request acked so far has been handed to admission and answered. */
  idle(): Promise<void> {
    return this.work.idle();
  }

  /** Stops taking requests; work already acked gets up to `graceMs` to finish. */
  async stop(graceMs = 10_000): Promise<void> {
    if (this.socketMode && this.started) await this.app.stop();
    await Promise.race([this.work.idle(), new Promise((r) => setTimeout(r, graceMs).unref())]);
    this.jobs.stop();
    await this.deliverer.settle();
    this.started = false;
  }
}

export function createSlackAdapter(config: SlackAdapterConfig): SlackAdapter {
  return new SlackAdapter(config);
}

/**
 * `app_uninstalled`, or `tokens_revoked` for the bot: the installation goes (marked, tokens cleared), so
 * later requests from there are not authorized and later deliveries there fail at once, releasing their
 * credits. Bolt runs these two without authorizing them (the installation may be gone already).
 */
function registerUninstall(app: App, deps: SlackDeps): void {
  const uninstall = (context: WorkspaceRef, why: string) => deps.later(async () => {
    await deps.tokens.uninstalled(context);
    deps.log.info({ teamId: context.teamId, enterpriseId: context.enterpriseId, orgWide: !!context.isEnterpriseInstall }, `slack: ${why}; installation removed`);
  });
  app.event('app_uninstalled', async ({ context }) => uninstall(context, 'app uninstalled'));
  app.event('tokens_revoked', async ({ event, context }) => {
    if (event.tokens.bot?.length) uninstall(context, 'bot token revoked');
  });
}

/**
 * Registered in adapters/index.ts: serves Slack when SLACK_BOT_TOKEN is set (one workspace), or when
 * SLACK_CLIENT_ID, SLACK_CLIENT_SECRET and SLACK_STATE_SECRET are (OAuth installs, many workspaces).
 */
export const slackAdapterFactory: AdapterFactory = (runtime, http) => {
  const c = runtime.config;
  const adminUserIds = (c.SLACK_ADMIN_USER_IDS ?? '').split(/[\s,]+/).filter(Boolean);
  if (c.SLACK_BOT_TOKEN) {
    if (c.SLACK_CLIENT_ID || c.SLACK_CLIENT_SECRET || c.SLACK_STATE_SECRET) runtime.log.warn('SLACK_BOT_TOKEN is set, so Slack serves that one workspace; the Slack OAuth variables are ignored (unset SLACK_BOT_TOKEN for multi-workspace installs)');
    if (!c.SLACK_SIGNING_SECRET && !c.SLACK_APP_TOKEN) {
      throw new ConfigError('SLACK_SIGNING_SECRET is required when SLACK_BOT_TOKEN is set (or SLACK_APP_TOKEN for Socket Mode); see .env.example');
    }
    return createSlackAdapter({
      runtime, http, botToken: c.SLACK_BOT_TOKEN, apiUrl: c.SLACK_API_URL,
      ...(c.SLACK_SIGNING_SECRET ? { signingSecret: c.SLACK_SIGNING_SECRET } : {}),
      ...(c.SLACK_APP_TOKEN ? { appToken: c.SLACK_APP_TOKEN } : {}),
      adminUserIds,
    });
  }
  const oauth = oauthVariables(c);
  if (!oauth) return null;
  if (!c.SLACK_SIGNING_SECRET) throw new ConfigError('SLACK_SIGNING_SECRET is required for Slack multi-workspace OAuth mode (requests arrive over HTTP at /slack/events); see .env.example');
  if (c.SLACK_APP_TOKEN) throw new ConfigError('Slack multi-workspace OAuth mode runs over HTTP (GET /slack/install, POST /slack/events): unset SLACK_APP_TOKEN, or set SLACK_BOT_TOKEN for one workspace over Socket Mode');
  return createSlackAdapter({
    runtime, http, apiUrl: c.SLACK_API_URL, signingSecret: c.SLACK_SIGNING_SECRET,
    oauth: { ...oauth, ...(c.PUBLIC_BASE_URL ? { redirectUri: `${c.PUBLIC_BASE_URL.replace(/\/+$/, '')}${REDIRECT_PATH}` } : {}) },
    adminUserIds,
  });
};
