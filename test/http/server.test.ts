import { randomUUID } from 'node:crypto';
import postgres from 'postgres';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { storeAsset } from '../../src/assets.ts';
import { createHttpServer, type HttpServer } from '../../src/http/server.ts';
import { assetUrl, signAssetPath, verifyAssetSignature } from '../../src/http/signing.ts';
import { createMetrics, observeJobDuration } from '../../src/metrics.ts';
import type { Runtime } from '../../src/runtime.ts';
import { createTestContext, type TestContext } from '../support/context.ts';

const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==', 'base64');
const ADMIN_PASSWORD = 'correct horse battery staple';

let ctx: TestContext;
let rt: Runtime;
let adminRt: Runtime;
const servers: HttpServer[] = [];
const deadClients: postgres.Sql[] = [];

async function start(server: HttpServer): Promise<string> {
  servers.push(server);
  const port = await server.listen(0, '127.0.0.1');
  return `http://127.0.0.1:${port}`;
}

let base: string;

beforeAll(async () => {
  ctx = await createTestContext();
  rt = await ctx.runtime();
  adminRt = await ctx.runtime({ ADMIN_PASSWORD });
  base = await start(createHttpServer({ runtime: rt }));
});

afterAll(async () => {
  for (const server of servers) await server.close();
  for (const client of deadClients) await client.end({ timeout: 1 }).catch(() => undefined);
  await ctx?.cleanup();
});

const basic = (user: string, password: string) => `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`;

describe('signed asset URLs', () => {
  const secret = 'a-long-random-signing-secret-for-tests';
  const id = randomUUID();
  const now = Date.UTC(2026, 10, 21, 12) / 1000;

  it('signs a path that verifies until it expires', () => {
    const path = signAssetPath(secret, id, now + 60);
    const url = new URL(path, 'http://x');
    expect(url.pathname).toBe(`/assets/${id}`);
    const exp = url.searchParams.get('exp')!;
    const sig = url.searchParams.get('sig')!;
    expect(exp).toBe(String(now + 60));
    expect(sig).toMatch(/^[A-Za-z0-9_-]{43}$/);
    expect(verifyAssetSignature(secret, id, exp, sig, now * 1000)).toBe(true);
    expect(verifyAssetSignature(secret, id, exp, sig, (now + 60) * 1000)).toBe(false);
    expect(verifyAssetSignature(secret, id, exp, sig, new Date((now + 59) * 1000))).toBe(true);
  });

  it('refuses another id, another expiry, another secret, a tampered or malformed signature', () => {
    const url = new URL(signAssetPath(secret, id, now + 60), 'http://x');
    const exp = url.searchParams.get('exp')!;
    const sig = url.searchParams.get('sig')!;
    const at = now * 1000;
    expect(verifyAssetSignature(secret, randomUUID(), exp, sig, at)).toBe(false);
    expect(verifyAssetSignature(secret, id, String(now + 61), sig, at)).toBe(false);
    expect(verifyAssetSignature('another-secret', id, exp, sig, at)).toBe(false);
    // Every variant of the last character, including those that decode to the same bytes.
    for (const c of 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_') {
      if (c !== sig.at(-1)) expect(verifyAssetSignature(secret, id, exp, sig.slice(0, -1) + c, at)).toBe(false);
    }
    expect(verifyAssetSignature(secret, id, exp, sig + '=', at)).toBe(false);
    expect(verifyAssetSignature(secret, id, exp, '', at)).toBe(false);
    expect(verifyAssetSignature(secret, id, undefined, sig, at)).toBe(false);
    expect(verifyAssetSignature(secret, id, [exp], sig, at)).toBe(false);
    expect(verifyAssetSignature(secret, id, exp, [sig], at)).toBe(false);
    expect(verifyAssetSignature(secret, id, `${exp}.5`, sig, at)).toBe(false);
  });

  it('builds absolute URLs from a base with or without a trailing slash', () => {
    const a = assetUrl('https://dreambot.example.com/', secret, id, 300, now * 1000);
    const b = assetUrl('https://dreambot.example.com', secret, id, 300, new Date(now * 1000));
    expect(a).toBe(b);
    expect(a).toBe(`https://dreambot.example.com${signAssetPath(secret, id, now + 300)}`);
  });
});

describe('http server', () => {
  it('GET /healthz answers 200 without touching anything', async () => {
    const res = await fetch(`${base}/healthz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true });
    expect(res.headers.get('x-powered-by')).toBeNull();
  });

  it('GET /readyz is 200 when Redis and Postgres answer', async () => {
    const res = await fetch(`${base}/readyz`);
    expect(res.status).toBe(200);
    expect(await res.json()).toEqual({ ok: true, degraded: false, checks: { redis: 'ok', postgres: 'ok' }, backends: { preview: 'ok' } });
  });

  it('GET /readyz is 503 when Postgres is unreachable, without leaking the URL or its password', async () => {
    // Nothing listens on port 1: the check genuinely fails.
    const dead = postgres('postgres://postgres:pw-that-must-not-leak@127.0.0.1:1/nothing', { max: 1, connect_timeout: 1, onnotice: () => {} });
    deadClients.push(dead);
    const url = await start(createHttpServer({ runtime: rt, checks: { postgres: async () => void (await dead`select 1`) } }));
    const res = await fetch(`${url}/readyz`);
    expect(res.status).toBe(503);
    const text = await res.text();
    expect(text).not.toContain('pw-that-must-not-leak');
    expect(text).not.toContain('postgres://');
    const body = JSON.parse(text) as { ok: boolean; checks: Record<string, string> };
    expect(body.ok).toBe(false);
    expect(body.checks.redis).toBe('ok');
    expect(body.checks.postgres).toMatch(/ECONNREFUSED|connect/i);
  });

  it('GET /readyz is 503 when a check hangs past the timeout', async () => {
    const url = await start(createHttpServer({
      runtime: rt, readyTimeoutMs: 200, checks: { redis: () => new Promise<void>(() => undefined) },
    }));
    const started = Date.now();
    const res = await fetch(`${url}/readyz`);
    expect(Date.now() - started).toBeLessThan(2000);
    expect(res.status).toBe(503);
    expect(await res.json()).toEqual({ ok: false, degraded: false, checks: { redis: 'timed out after 200 ms', postgres: 'ok' }, backends: { preview: 'ok' } });
  });

  it('GET /metrics reports queue depth, generations and credits read at scrape time', async () => {
    const metrics = createMetrics({ db: rt.db, queues: rt.queues });
    const url = await start(createHttpServer({ runtime: rt, metrics }));
    const admitted = await rt.admit({
      idempotencyKey: `metrics-${randomUUID()}`, team: { platform: 'cli', externalId: 'metrics-team' },
      member: { externalId: 'metrics-user' }, request: { prompt: 'a red fox runs through snow' },
    });
    expect(admitted).toBeTruthy();
    observeJobDuration('preview', 'succeeded', 12.5);
    const res = await fetch(`${url}/metrics`);
    expect(res.status).toBe(200);
    expect(res.headers.get('content-type')).toMatch(/^text\/plain/);
    const text = await res.text();
    expect(text).toContain('# TYPE dreambot_generations gauge');
    expect(text).toContain('dreambot_generations{state="queued"} 1');
    expect(text).toContain('# TYPE dreambot_queue_depth gauge');
    expect(text).toContain('dreambot_queue_depth{backend="preview",state="waiting_fair"} 1');
    expect(text).toMatch(/dreambot_queue_depth\{backend="preview",state="active"\} 0/);
    expect(text).toMatch(/dreambot_queue_depth\{backend="delivery",state="waiting"\} 0/);
    expect(text).toMatch(/^dreambot_credits_held [1-9]\d*$/m);
    expect(text).toMatch(/^dreambot_credits_captured_total 0$/m);
    expect(text).toContain('dreambot_job_duration_seconds_bucket{le="15",backend="preview",outcome="succeeded"} 1');
    expect(text).toContain('process_cpu_user_seconds_total');
  });

  describe('assets', () => {
    let id: string;
    beforeAll(async () => {
      id = await storeAsset(rt.db, { teamId: null, kind: 'frame', mime: 'image/png', data: PNG });
    });

    it('serves the stored bytes and mime at a signed URL', async () => {
      const res = await fetch(assetUrl(base, rt.config.assetSecret, id, 60));
      expect(res.status).toBe(200);
      expect(res.headers.get('content-type')).toBe('image/png');
      expect(res.headers.get('cache-control')).toBe('private, max-age=300');
      expect(res.headers.get('x-content-type-options')).toBe('nosniff');
      expect(Buffer.from(await res.arrayBuffer()).equals(PNG)).toBe(true);
    });

    it('403 for a tampered signature, a signature for another id, or none', async () => {
      const url = new URL(assetUrl(base, rt.config.assetSecret, id, 60));
      const sig = url.searchParams.get('sig')!;
      url.searchParams.set('sig', (sig[0] === 'A' ? 'B' : 'A') + sig.slice(1));
      const tampered = await fetch(url);
      expect(tampered.status).toBe(403);
      const body = await tampered.json() as { ok: boolean; error: { code: string } };
      expect(body).toMatchObject({ ok: false, error: { code: 'FORBIDDEN' } });

      const other = new URL(assetUrl(base, rt.config.assetSecret, randomUUID(), 60));
      expect((await fetch(`${base}/assets/${id}${other.search}`)).status).toBe(403);
      expect((await fetch(`${base}/assets/${id}`)).status).toBe(403);
    });

    it('403 once expired', async () => {
      const path = signAssetPath(rt.config.assetSecret, id, Math.floor(Date.now() / 1000) - 1);
      expect((await fetch(`${base}${path}`)).status).toBe(403);
    });

    it('404 for an unknown id with a valid signature, and for a non-uuid id', async () => {
      const res = await fetch(assetUrl(base, rt.config.assetSecret, randomUUID(), 60));
      expect(res.status).toBe(404);
      expect(await res.json()).toMatchObject({ ok: false, error: { code: 'NOT_FOUND' } });
      expect((await fetch(assetUrl(base, rt.config.assetSecret, 'not-a-uuid', 60))).status).toBe(404);
    });

    it('a URL signed with another secret is refused', async () => {
      expect((await fetch(assetUrl(base, 'someone-elses-secret', id, 60))).status).toBe(403);
    });
  });

  it('unknown routes are JSON 404s', async () => {
    const res = await fetch(`${base}/nope`);
    expect(res.status).toBe(404);
    expect(res.headers.get('content-type')).toMatch(/application\/json/);
  });

  it('errors are JSON with no stack trace', async () => {
    const url = await start(createHttpServer({
      runtime: rt,
      extraRoutes: (app) => app.get('/boom', () => { throw new Error('secret internals at /srv/app/x.ts:12'); }),
    }));
    const res = await fetch(`${url}/boom`);
    expect(res.status).toBe(500);
    const text = await res.text();
    expect(text).not.toContain('internals');
    expect(text).not.toContain('.ts');
    expect(JSON.parse(text)).toEqual({ ok: false, error: { code: 'INTERNAL', message: 'Internal error.' } });
  });

  it('mount() adds routes after creation, ahead of the 404 handler', async () => {
    const server = createHttpServer({ runtime: rt });
    const url = await start(server);
    expect((await fetch(`${url}/slack/events`, { method: 'POST' })).status).toBe(404);
    server.mount('/slack', (req, res, next) => (req.method === 'POST' && req.path === '/events' ? res.status(200).send('ok') : next()));
    const res = await fetch(`${url}/slack/events`, { method: 'POST' });
    expect(res.status).toBe(200);
    expect(await res.text()).toBe('ok');
  });

  describe('Bull Board at /admin/queues', () => {
    it('is not mounted without ADMIN_PASSWORD', async () => {
      expect((await fetch(`${base}/admin/queues`)).status).toBe(404);
      expect((await fetch(`${base}/admin/queues`, { headers: { authorization: basic('admin', ADMIN_PASSWORD) } })).status).toBe(404);
    });

    it('asks for credentials, refuses wrong ones, and serves the board for the right password', async () => {
      const url = await start(createHttpServer({ runtime: adminRt }));
      const none = await fetch(`${url}/admin/queues`);
      expect(none.status).toBe(401);
      expect(none.headers.get('www-authenticate')).toMatch(/^Basic realm="dreambot"/);
      expect((await fetch(`${url}/admin/queues`, { headers: { authorization: basic('admin', 'wrong') } })).status).toBe(401);
      expect((await fetch(`${url}/admin/queues`, { headers: { authorization: basic('admin', `${ADMIN_PASSWORD}x`) } })).status).toBe(401);
      expect((await fetch(`${url}/admin/queues`, { headers: { authorization: 'Bearer whatever' } })).status).toBe(401);
      expect((await fetch(`${url}/admin/queues/api/queues`)).status).toBe(401);

      const ok = await fetch(`${url}/admin/queues`, { headers: { authorization: basic('anyone', ADMIN_PASSWORD) } });
      expect(ok.status).toBe(200);
      expect(ok.headers.get('content-type')).toMatch(/text\/html/);

      const api = await fetch(`${url}/admin/queues/api/queues`, { headers: { authorization: basic('', ADMIN_PASSWORD) } });
      expect(api.status).toBe(200);
      const body = await api.json() as { queues: { name: string }[] };
      expect(body.queues.map((q) => q.name).sort()).toEqual(['delivery', 'gen-preview']);
    });
  });
});
