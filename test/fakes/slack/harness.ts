import { startAdapters, type ChatAdapter } from '../../../adapters/index.ts';
import type { SlackAdapter } from '../../../adapters/slack/index.ts';
import { loadConfig } from '../../../src/config.ts';
import { getGeneration, listGenerations, type Generation } from '../../../src/generations.ts';
import { createHttpServer, type HttpServer } from '../../../src/http/server.ts';
import { Runtime, type RuntimeOptions } from '../../../src/runtime.ts';
import { createTestContext, waitFor, type TestContext } from '../../support/context.ts';
import { SlackDriver } from './driver.ts';
import { seedWorkspace } from './index.ts';
import type { FakeSlackOptions } from './model.ts';
import { startFakeSlack, type FakeSlackServer } from './server.ts';

/**
 * The whole bot side as `dreambot start` runs it, pointed at the fake Slack: a Runtime with real Redis and
 * Postgres (a database of its own), the generation workers on the preview backend, the project's HTTP
 * server with the adapters the registry starts (so the one-line registration is what is tested), and a
 * driver that signs requests to POST /slack/events.
 */
export interface SlackHarness {
  ctx: TestContext;
  rt: Runtime;
  fake: FakeSlackServer;
  driver: SlackDriver;
  http: HttpServer;
  adapter: SlackAdapter;
  people: ReturnType<typeof seedWorkspace>;
  /** Generations of this database, newest first. */
  generations(): Promise<Generation[]>;
  settled(id: string, timeoutMs?: number): Promise<Generation>;
  close(): Promise<void>;
}

export async function startSlackHarness(options: { env?: Record<string, string>; fake?: FakeSlackOptions; workers?: boolean; backends?: RuntimeOptions['backends'] } = {}): Promise<SlackHarness> {
  const fake = await startFakeSlack(options.fake);
  const people = seedWorkspace(fake.ws);
  const ctx = await createTestContext({
    SLACK_BOT_TOKEN: fake.ws.botToken, SLACK_SIGNING_SECRET: fake.ws.signingSecret, SLACK_API_URL: fake.apiUrl,
    PREVIEW_CONCURRENCY: '2', ...options.env,
  });
  const rt = await Runtime.create(loadConfig(ctx.env), { log: ctx.log, ...(options.backends ? { backends: options.backends } : {}) });
  if (options.workers !== false) await rt.startWorkers();
  const http = createHttpServer({ runtime: rt });
  const adapters: ChatAdapter[] = await startAdapters(rt, http);
  const adapter = adapters.find((a) => a.platform === 'slack') as SlackAdapter | undefined;
  if (!adapter) throw new Error('the adapter registry did not start Slack');
  const port = await http.listen(0, '127.0.0.1');
  const driver = new SlackDriver(fake, `http://127.0.0.1:${port}/slack/events`);
  return {
    ctx, rt, fake, driver, http, adapter, people,
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
