/**
 * Transport in: Bolt's own ExpressReceiver, whose router is mounted on the project's HTTP server at
 * POST /slack/events. Bolt reads the raw body (nothing parses it earlier: the server has no global body
 * parser), rejects a bad HMAC or a timestamp older than 5 minutes with 401, answers url_verification,
 * and acks through HTTPResponseAck. Socket Mode (SLACK_APP_TOKEN) takes no HTTP route at all.
 */
import { App, ExpressReceiver, LogLevel, type Logger as BoltLogger } from '@slack/bolt';
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

export interface BoltAppOptions {
  token: string;
  signingSecret?: string;
  appToken?: string;
  apiUrl: string;
  log: Logger;
  /** Passed to every WebClient Bolt makes (tests: no retries against the fake). */
  retries?: number;
}

export interface BoltApp {
  app: App;
  /** The router to mount at /slack/events; absent in Socket Mode. */
  router?: express.Router;
  socketMode: boolean;
}

export function createBoltApp(options: BoltAppOptions): BoltApp {
  const logger = boltLogger(options.log);
  const clientOptions = {
    slackApiUrl: options.apiUrl,
    ...(options.retries !== undefined ? { retryConfig: { retries: options.retries } } : {}),
  };
  // The auth.test behind token verification runs in start() (app.init()), where its failure can be reported.
  const common = { token: options.token, logger, clientOptions, deferInitialization: true, ignoreSelf: true } as const;
  if (options.appToken) {
    return { app: new App({ ...common, appToken: options.appToken, socketMode: true }), socketMode: true };
  }
  if (!options.signingSecret) throw new Error('SLACK_SIGNING_SECRET is required in HTTP mode');
  const router = express.Router();
  const receiver = new ExpressReceiver({
    signingSecret: options.signingSecret, logger, router, endpoints: '/', processBeforeResponse: false,
    // Bolt makes an express app of its own when none is given; the router is all we use of it.
    app: express(),
  });
  return { app: new App({ ...common, receiver }), router, socketMode: false };
}
