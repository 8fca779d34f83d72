/**
 * The Slack adapter: a Bolt App on the project's HTTP server (POST /slack/events, signature-checked by
 * Bolt) or on Socket Mode when SLACK_APP_TOKEN is set. Transport only: it parses Slack payloads into
 * neutral requests for admission (`flow.ts`), renders Block Kit (`render.ts`) and delivers clips
 * (`deliver.ts`); it never calls a backend or writes SQL itself. Single-workspace: SLACK_BOT_TOKEN.
 */
import type { App } from '@slack/bolt';
import type { AdapterFactory, ChatAdapter } from '../index.ts';
import { ConfigError } from '../../src/config.ts';
import type { HttpServer } from '../../src/http/server.ts';
import type { Runtime } from '../../src/runtime.ts';
import { JobMessages, SlackDeliverer } from './deliver.ts';
import { type SlackDeps } from './flow.ts';
import { workQueue, type WorkQueue } from '../shared/work-queue.ts';
import { registerAdmin } from './listeners/admin.ts';
import { registerClip } from './listeners/clip.ts';
import { registerDream } from './listeners/dream.ts';
import { createBoltApp } from './verify.ts';

export const SLACK_EVENTS_PATH = '/slack/events';

export interface SlackAdapterConfig {
  runtime: Runtime;
  /** The project's HTTP server; required in HTTP mode (no appToken). */
  http?: HttpServer;
  /** SLACK_BOT_TOKEN (xoxb-…). */
  botToken: string;
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
  private readonly jobs: JobMessages;
  private readonly work: WorkQueue;
  private readonly socketMode: boolean;
  private started = false;

  constructor(private readonly config: SlackAdapterConfig) {
    const { runtime } = config;
    const log = runtime.log.child({ platform: 'slack' });
    const apiUrl = config.apiUrl ?? runtime.config.SLACK_API_URL;
    const bolt = createBoltApp({
      token: config.botToken, apiUrl, log,
      ...(config.signingSecret ? { signingSecret: config.signingSecret } : {}),
      ...(config.appToken ? { appToken: config.appToken } : {}),
      ...(config.retries !== undefined ? { retries: config.retries } : {}),
    });
    this.app = bolt.app;
    this.socketMode = bolt.socketMode;
    const client = bolt.app.client;
    this.work = workQueue(log, { concurrency: config.concurrency ?? 16, label: 'slack' });
    this.jobs = new JobMessages({ runtime, client, log, updateEveryMs: config.progressEveryMs ?? 5000, busy: () => this.work.busy() });
    this.deliverer = new SlackDeliverer({ runtime, client, log, jobs: this.jobs });
    this.deps = {
      runtime, client, token: config.botToken, apiUrl, log, jobs: this.jobs,
      adminUserIds: new Set(config.adminUserIds ?? []), later: (w) => this.work.run(w),
    };
    registerDream(bolt.app, this.deps);
    registerClip(bolt.app, this.deps);
    registerAdmin(bolt.app, this.deps);
    bolt.app.error(async (error) => log.error({ err: error }, 'slack: unhandled listener error'));
    if (bolt.router) {
      if (!config.http) throw new ConfigError('The Slack adapter needs the HTTP server in HTTP mode (or set SLACK_APP_TOKEN for Socket Mode).');
      config.http.mount(SLACK_EVENTS_PATH, bolt.router);
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

/** Registered in adapters/index.ts: serves Slack when SLACK_BOT_TOKEN is set. */
export const slackAdapterFactory: AdapterFactory = (runtime, http) => {
  const c = runtime.config;
  if (!c.SLACK_BOT_TOKEN) {
    if (c.SLACK_CLIENT_ID) runtime.log.warn('SLACK_CLIENT_ID is set but multi-workspace OAuth is not supported yet: set SLACK_BOT_TOKEN (one workspace) to serve Slack');
    return null;
  }
  if (!c.SLACK_SIGNING_SECRET && !c.SLACK_APP_TOKEN) {
    throw new ConfigError('SLACK_SIGNING_SECRET is required when SLACK_BOT_TOKEN is set (or SLACK_APP_TOKEN for Socket Mode); see .env.example');
  }
  return createSlackAdapter({
    runtime, http, botToken: c.SLACK_BOT_TOKEN, apiUrl: c.SLACK_API_URL,
    ...(c.SLACK_SIGNING_SECRET ? { signingSecret: c.SLACK_SIGNING_SECRET } : {}),
    ...(c.SLACK_APP_TOKEN ? { appToken: c.SLACK_APP_TOKEN } : {}),
    adminUserIds: (c.SLACK_ADMIN_USER_IDS ?? '').split(/[\s,]+/).filter(Boolean),
  });
};
