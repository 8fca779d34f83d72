import { writeFile, mkdtemp } from 'node:fs/promises';
import { createServer } from 'node:net';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { readAsset } from '../../src/assets.ts';
import { createLumaBackend, type LumaBackend, type LumaBackendOptions } from '../../src/backends/luma/backend.ts';
import { mountLumaCallbacks } from '../../src/backends/luma/callbacks.ts';
import { loadConfig } from '../../src/config.ts';
import { getGeneration, type Generation } from '../../src/generations.ts';
import { createHttpServer, type HttpServer } from '../../src/http/server.ts';
import { probe, type ProbeResult } from '../../src/media/probe.ts';
import { Runtime } from '../../src/runtime.ts';
import { FakeLuma, type FakeLumaOptions } from '../fakes/luma/fake-luma.ts';
import { createTestContext, waitFor, type TestContext } from '../support/context.ts';

/** A port nothing listens on right now, so PUBLIC_BASE_URL can be known before the server starts. */
export async function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const port = (s.address() as { port: number }).port;
      s.close(() => resolve(port));
    });
  });
}

export interface LumaHarness {
  fake: FakeLuma;
  ctx: TestContext;
  /** The "bot" side: admission, and the HTTP server Luma fetches images from and posts callbacks to. */
  web: Runtime;
  server: HttpServer | undefined;
  publicUrl: string | undefined;
  dir: string;
  /** A worker-side runtime (workers started), with the luma backend built from its config. */
  startWorkers(env?: Record<string, string>, overrides?: Partial<LumaBackendOptions>): Promise<Runtime>;
  dream(request: Record<string, unknown>, who?: { team?: string; user?: string }): ReturnType<Runtime['admit']>;
  settled(id: string, timeoutMs?: number): Promise<Generation>;
  available(team?: string): Promise<number>;
  captures(id: string): Promise<number>;
  holdState(id: string): Promise<string | undefined>;
  clip(g: Generation): Promise<ProbeResult>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  fake?: FakeLumaOptions;
  env?: Record<string, string>;
  /** Serve HTTP at a PUBLIC_BASE_URL (images, callbacks); off means a deployment without one. */
  publicUrl?: boolean;
}

let keys = 0;

export async function startLumaHarness(options: HarnessOptions = {}): Promise<LumaHarness> {
  const fake = await FakeLuma.start({ timing: { queuedMs: 150, dreamingMs: 700 }, ...options.fake });
  const port = options.publicUrl === false ? undefined : await freePort();
  const publicUrl = port ? `http://127.0.0.1:${port}` : undefined;
  const ctx = await createTestContext({
    LUMA_API_KEY: fake.apiKey, LUMA_BASE_URL: fake.url, LUMA_POLL_MS: '300', MEMBER_ACTIVE_JOBS: '10', TEAM_ACTIVE_JOBS: '20',
    ...(publicUrl ? { PUBLIC_BASE_URL: publicUrl, ASSET_SIGNING_SECRET: 'luma-test-signing-secret-0123456789' } : {}),
    ...options.env,
  });
  const runtimes: Runtime[] = [];
  const web = await ctx.runtime();
  let server: HttpServer | undefined;
  if (port) {
    server = createHttpServer({ runtime: web });
    mountLumaCallbacks(server, web);
    await server.listen(port, '127.0.0.1');
  }
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dreambot-luma-test-'));

  const harness: LumaHarness = {
    fake, ctx, web, server, publicUrl, dir,
    async startWorkers(env = {}, overrides) {
      const config = loadConfig({ ...ctx.env, ...env });
      const rt = await Runtime.create(config, {
        log: ctx.log,
        backends: overrides ? (defaults) => {
          void defaults.get('luma')?.close?.();
          defaults.set('luma', createLumaBackend(config, ctx.log, overrides));
          return defaults;
        } : undefined,
      });
      runtimes.push(rt);
      await rt.startWorkers();
      return rt;
    },
    dream(request, who = {}) {
      keys += 1;
      return web.admit({
        idempotencyKey: `luma-${ctx.id}-${keys}`, team: { platform: 'cli', externalId: who.team ?? 'luma-team' },
        member: { externalId: who.user ?? 'ana' }, request: { backend: 'luma', ...request }, replyTo: { platform: 'cli' },
      });
    },
    settled(id, timeoutMs = 60_000) {
      return waitFor(async () => {
        const g = await getGeneration(web.db, id);
        return g && ['delivered', 'failed', 'cancelled'].includes(g.state) ? g : null;
      }, timeoutMs, `generation ${id} to end`);
    },
    async available(team = 'luma-team') {
      const rows = await web.db.execute(sql`
        select a.balance from accounts a join platform_accounts p on p.team_id = a.team_id
        where p.platform = 'cli' and p.external_id = ${team} and a.kind = 'available'`);
      return rows[0] ? Number(rows[0].balance) : NaN;
    },
    async captures(id) {
      const rows = await web.db.execute(sql`select count(*) as n from transfers where generation_id = ${id} and kind = 'capture'`);
      return Number(rows[0]!.n);
    },
    async holdState(id) {
      const rows = await web.db.execute(sql`select state from holds where generation_id = ${id}`);
      return rows[0] ? String(rows[0].state) : undefined;
    },
    async clip(g) {
      const asset = await readAsset(web.db, g.resultAssetId!);
      const file = path.join(dir, `${g.id}.mp4`);
      await writeFile(file, asset.data);
      return probe(web.bins.ffprobe, file);
    },
    async close() {
      for (const rt of runtimes.reverse()) await rt.close(1000).catch(() => undefined);
      await server?.close().catch(() => undefined);
      await ctx.cleanup();
      await fake.close();
    },
  };
  return harness;
}

/** The luma backend inside a runtime. */
export function lumaOf(rt: Runtime): LumaBackend {
  return rt.backends.get('luma') as LumaBackend;
}
