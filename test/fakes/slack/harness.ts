import { randomBytes } from 'node:crypto';
import { startAdapters, type ChatAdapter } from '../../../adapters/index.ts';
import type { SlackAdapter } from '../../../adapters/slack/index.ts';
import { loadConfig } from '../../../src/config.ts';
import { getGeneration, listGenerations, type Generation } from '../../../src/generations.ts';
import { createHttpServer, type HttpServer } from '../../../src/http/server.ts';
import type { Logger } from '../../../src/log.ts';
import { Runtime, type RuntimeOptions } from '../../../src/runtime.ts';
import { createTestContext, waitFor, type TestContext } from '../../support/context.ts';
import { SlackDriver } from './driver.ts';
import { seedWorkspace } from './index.ts';
import type { FakeMessage, FakeSlackOptions, FakeWorkspace } from './model.ts';
import { startFakeSlack, type FakeSlackServer } from './server.ts';

/**
 * The whole bot side as `dreambot start` runs it, pointed at the fake Slack: a Runtime with real Redis and
 * Postgres (a database of its own), the generation workers on the preview backend, the project's HTTP
 * server with the adapters the registry starts (so the one-line registration is what is tested), and a
 * driver that signs requests to POST /slack/events.
 *
 * `oauth: true` starts it in multi-workspace mode instead: no SLACK_BOT_TOKEN, the fake's OAuth client
 * credentials and a state secret, and a fake whose first workspace is not installed yet.
 */
export interface SlackHarness {
  ctx: TestContext;
  rt: Runtime;
  fake: FakeSlackServer;
  driver: SlackDriver;
  /** A driver that sends as another workspace of the fake. */
  driverFor(workspace: FakeWorkspace): SlackDriver;
  http: HttpServer;
  /** The bot's HTTP server: http://127.0.0.1:PORT */
  url: string;
  adapter: SlackAdapter;
  people: ReturnType<typeof seedWorkspace>;
  /** Generations of this database, newest first. */
  generations(): Promise<Generation[]>;
  settled(id: string, timeoutMs?: number): Promise<Generation>;
  close(): Promise<void>;
}

export interface SlackHarnessOptions {
  env?: Record<string, string>;
  fake?: FakeSlackOptions;
  workers?: boolean;
  backends?: RuntimeOptions['backends'];
  /** Multi-workspace OAuth mode. */
  oauth?: boolean;
  /**
   * Socket Mode: SLACK_APP_TOKEN is the fake's app-level token and no SLACK_SIGNING_SECRET is set, so
   * nothing arrives over HTTP; the driver sends envelopes down the app's WebSocket and reads its acks.
   */
  socketMode?: boolean;
  /** The runtime's logger (default: the test context's, silent). */
  log?: Logger;
}

export async function startSlackHarness(options: SlackHarnessOptions = {}): Promise<SlackHarness> {
  const fake = await startFakeSlack({ ...(options.oauth ? { installed: false } : {}), ...options.fake });
  const people = seedWorkspace(fake.ws);
  const credentials: Record<string, string> = options.oauth
    ? { SLACK_CLIENT_ID: fake.oauth.clientId, SLACK_CLIENT_SECRET: fake.oauth.clientSecret, SLACK_STATE_SECRET: randomBytes(16).toString('hex') }
    : { SLACK_BOT_TOKEN: fake.ws.botToken };
  if (options.socketMode && options.oauth) throw new Error('Slack OAuth mode runs over HTTP, not Socket Mode');
  const transport: Record<string, string> = options.socketMode ? { SLACK_APP_TOKEN: fake.socket.appToken } : { SLACK_SIGNING_SECRET: fake.ws.signingSecret };
  const ctx = await createTestContext({
    ...credentials, ...transport, SLACK_API_URL: fake.apiUrl,
    PREVIEW_CONCURRENCY: '2', ...options.env,
  });
  const rt = await Runtime.create(loadConfig(ctx.env), { log: options.log ?? ctx.log, ...(options.backends ? { backends: options.backends } : {}) });
  if (options.workers !== false) await rt.startWorkers();
  const http = createHttpServer({ runtime: rt });
  const adapters: ChatAdapter[] = await startAdapters(rt, http);
  const adapter = adapters.find((a) => a.platform === 'slack') as SlackAdapter | undefined;
  if (!adapter) throw new Error('the adapter registry did not start Slack');
  const port = await http.listen(0, '127.0.0.1');
  const url = `http://127.0.0.1:${port}`;
  const endpoint = options.socketMode ? 'socket' : `${url}/slack/events`;
  const driver = new SlackDriver(fake, endpoint);
  return {
    ctx, rt, fake, driver, http, url, adapter, people,
    driverFor: (workspace) => new SlackDriver(fake, endpoint, workspace),
    generations: () => listGenerations(rt.db, { limit: 500 }),
    settled: (id, timeoutMs = 60_000) => waitFor(async () => {
      const g = await getGeneration(rt.db, id);
      return g && ['delivered', 'failed', 'cancelled'].includes(g.state) ? g : null;
    }, timeoutMs, `generation ${id} to end`),
    async close() {
      for (const a of adapters) await a.stop().catch(() => undefined);
      await http.close().catch(() => undefined);
      await rt.close(1000).catch(() => undefined);
      await ctx.cleanup();
      await fake.close();
    },
  };
}

/** Waits for a delivered clip in a thread: the uploaded file and the card with its buttons. */
export async function clipInThread(ws: FakeWorkspace, channel: string, thread: string, timeoutMs = 60_000): Promise<{ file: FakeMessage; card: FakeMessage }> {
  return waitFor(async () => {
    const replies = ws.thread(channel, thread);
    const file = replies.find((m) => m.files?.length);
    const card = replies.find((m) => (m.blocks ?? []).some((b) => (b as { type?: string }).type === 'actions'));
    return file && card ? { file, card } : null;
  }, timeoutMs, `a clip in thread ${thread}`);
}
