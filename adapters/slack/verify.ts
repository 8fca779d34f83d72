/**
 * Transport in: Bolt's own ExpressReceiver, whose router is mounted on the project's HTTP server at
 * POST /slack/events. Bolt reads the raw body (nothing parses it earlier: the server has no global body
 * parser), rejects a bad HMAC or a timestamp older than 5 minutes with 401, answers url_verification,
 * and acks through HTTPResponseAck. Socket Mode (SLACK_APP_TOKEN) takes no HTTP route at all.
 *
 * Multi-workspace OAuth mode gives the same receiver Bolt's InstallProvider: GET /slack/install sets the
 * state cookie and redirects to Slack's authorize page (directInstall), GET /slack/oauth_redirect checks
 * the state against that cookie (and its signature, SLACK_STATE_SECRET), exchanges the code with
 * oauth.v2.access (at SLACK_API_URL) and stores the installation; every request is then authorized with
 * the installation of its team instead of one token.
 */
import { App, ExpressReceiver, LogLevel, type InstallationQuery, type InstallationStore, type Logger as BoltLogger } from '@slack/bolt';
import express from 'express';
import type { Logger } from '../../src/log.ts';

/** Bolt logs through pino, with its own messages kept apart under `slack: …`. */
export function boltLogger(log: Logger): BoltLogger {
  let level = LogLevel.INFO;
  const line = (msg: unknown[]) => msg.map((m) => (typeof m === 'string' ? m : m instanceof Error ? m.message : JSON.stringify(m))).join(' ');
  return {
    debug: (...msg: unknown[]) => log.debug(`slack: ${line(msg)}`),
    info: (...msg: unknown[]) => log.info(`slack: ${line(msg)}`),
    warn: (...msg: unknown[]) => log.warn(`slack: ${line(msg)}`),
    error: (...msg: unknown[]) => log.error(`slack: ${line(msg)}`),
    setLevel: (l: LogLevel) => void (level = l),
    getLevel: () => level,
    setName: () => undefined,
  };
}

export interface BoltOAuthOptions {
  clientId: string;
  clientSecret: string;
  stateSecret: string;
  scopes: readonly string[];
  installationStore: InstallationStore;
  /** Where the install page is served and Slack sends the member back (paths on our HTTP server). */
  installPath: string;
  redirectPath: string;
  /** The public redirect URL (PUBLIC_BASE_URL + redirectPath); Slack then requires it to match the app's setting. */
  redirectUri?: string;
}

export interface BoltAppOptions {
  /** Single-workspace mode: SLACK_BOT_TOKEN. */
  token?: string;
  /** Multi-workspace mode: OAuth installs, a token per installation (HTTP mode only). */
  oauth?: BoltOAuthOptions;
  signingSecret?: string;
  appToken?: string;
  apiUrl: string;
  log: Logger;
  /** Passed to every WebClient Bolt makes (tests: no retries against the fake). */
  retries?: number;
}

/** Bolt's own lookup of an installation's bot token (refreshing it first when token rotation is on). */
export type InstallationAuthorize = (query: InstallationQuery<boolean>) => Promise<{ botToken?: string }>;

export interface BoltApp {
  app: App;
  /** OAuth mode: the InstallProvider's authorize(), for work that arrives without a request (deliveries). */
  authorize?: InstallationAuthorize;
  /** The router to mount at /slack (POST /events; with OAuth also GET /install and /oauth_redirect); absent in Socket Mode. */
  router?: express.Router;
  socketMode: boolean;
}

/** The router is mounted here; Bolt's paths are given relative to it. */
export const SLACK_MOUNT = '/slack';
export const SLACK_EVENTS_PATH = '/slack/events';

function underMount(path: string): string {
  if (!path.startsWith(`${SLACK_MOUNT}/`)) throw new Error(`Slack routes live under ${SLACK_MOUNT}/ (got ${path})`);
  return path.slice(SLACK_MOUNT.length);
}

export function createBoltApp(options: BoltAppOptions): BoltApp {
  const logger = boltLogger(options.log);
  const clientOptions = {
    slackApiUrl: options.apiUrl,
    ...(options.retries !== undefined ? { retryConfig: { retries: options.retries } } : {}),
  };
  // The auth.test behind token verification runs in start() (app.init()), where its failure can be reported.
  const common = { logger, clientOptions, deferInitialization: true, ignoreSelf: true } as const;
  if (options.appToken) {
    if (options.oauth) throw new Error('Slack OAuth mode runs over HTTP, not Socket Mode');
    return { app: new App({ ...common, token: options.token, appToken: options.appToken, socketMode: true }), socketMode: true };
  }
  if (!options.signingSecret) throw new Error('SLACK_SIGNING_SECRET is required in HTTP mode');
  const router = express.Router();
  const oauth = options.oauth;
  const receiver = new ExpressReceiver({
    signingSecret: options.signingSecret, logger, router, endpoints: underMount(SLACK_EVENTS_PATH), processBeforeResponse: false,
    // Bolt makes an express app of its own when none is given; the router is all we use of it.
    app: express(),
    ...(oauth ? {
      clientId: oauth.clientId, clientSecret: oauth.clientSecret, stateSecret: oauth.stateSecret, scopes: [...oauth.scopes],
      installationStore: oauth.installationStore,
      ...(oauth.redirectUri ? { redirectUri: oauth.redirectUri } : {}),
      installerOptions: {
        installPath: underMount(oauth.installPath), redirectUriPath: underMount(oauth.redirectPath), directInstall: true,
        // oauth.v2.access (and the auth.test after it) go where every other call goes: SLACK_API_URL.
        clientOptions,
      },
    } : {}),
  });
  const installer = receiver.installer;
  return {
    app: new App({ ...common, ...(oauth ? {} : { token: options.token }), receiver }), router, socketMode: false,
    ...(installer ? { authorize: (query: InstallationQuery<boolean>) => installer.authorize(query) } : {}),
  };
}
