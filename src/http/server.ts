import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type ErrorRequestHandler, type RequestHandler, type Router } from 'express';
import { createBullBoard } from '@bull-board/api';
import { BullMQAdapter } from '@bull-board/api/bullMQAdapter';
import { ExpressAdapter } from '@bull-board/express';
import { readAsset } from '../assets.ts';
import { secretValues } from '../config.ts';
import { isAppError, ErrorCode } from '../errors.ts';
import { createMetrics, type Metrics } from '../metrics.ts';
import type { Runtime } from '../runtime.ts';
import { verifyAssetSignature } from './signing.ts';

export type ReadinessCheck = () => Promise<void>;

export interface HttpServerDeps {
  runtime: Runtime;
  /** Defaults to a registry made for this runtime. */
  metrics?: Metrics;
  /** Readiness probes; default to Redis PING and Postgres `select 1` on the runtime's connections. */
  checks?: { redis?: ReadinessCheck; postgres?: ReadinessCheck };
  /** Called once, before the 404 handler, to add routes (Slack events, backend callbacks). */
  extraRoutes?: (app: express.Express) => void;
  /** Readiness timeout per check, in ms. */
  readyTimeoutMs?: number;
}

export interface HttpServer {
  app: express.Express;
  /** Adds a router or handler at `path`; works before or after `listen`, and always ahead of the 404 handler. */
  mount(path: string, handler: Router | RequestHandler): void;
  listen(port: number, host?: string): Promise<number>;
  close(): Promise<void>;
}

export const ADMIN_QUEUES_PATH = '/admin/queues';
const ASSET_CACHE_CONTROL = 'private, max-age=300';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

class HttpError extends Error {
  constructor(readonly status: number, readonly code: string, message: string) {
    super(message);
  }
}

function sendError(res: express.Response, status: number, code: string, message: string): void {
  res.status(status).json({ ok: false, error: { code, message } });
}

/** An error's text for a readiness report: no URLs (they may carry passwords), no secret values. */
export function describeCheckError(error: unknown, secrets: string[]): string {
  let text = error instanceof Error ? error.message || error.name : String(error);
  const code = (error as { code?: unknown } | null)?.code;
  if (typeof code === 'string' && !text.includes(code)) text = `${code}: ${text}`;
  text = text.replace(/[a-z][a-z0-9+.-]*:\/\/\S+/gi, '[url]');
  for (const secret of secrets) if (secret) text = text.split(secret).join('[redacted]');
  return text.slice(0, 200) || 'error';
}

function withTimeout(check: ReadinessCheck, ms: number): Promise<void> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`timed out after ${ms} ms`)), ms);
  });
  return Promise.race([Promise.resolve().then(check), timeout]).finally(() => clearTimeout(timer));
}

/** Hash first, so the comparison is constant-time whatever the lengths. */
function sameSecret(given: string, expected: string): boolean {
  const a = createHash('sha256').update(given).digest();
  const b = createHash('sha256').update(expected).digest();
  return timingSafeEqual(a, b);
}

function basicAuth(password: string): RequestHandler {
  return (req, res, next) => {
    const header = req.headers.authorization ?? '';
    const match = /^Basic\s+([A-Za-z0-9+/=]+)\s*$/i.exec(header);
    let given = '';
    let ok = false;
    if (match) {
      const decoded = Buffer.from(match[1]!, 'base64').toString('utf8');
      const colon = decoded.indexOf(':');
      if (colon >= 0) {
        given = decoded.slice(colon + 1);
        ok = true;
      }
    }
    // Always compare, so a missing header costs the same as a wrong password.
    if (sameSecret(given, password) && ok) return next();
    res.setHeader('WWW-Authenticate', 'Basic realm="dreambot", charset="UTF-8"');
    sendError(res, 401, 'UNAUTHORIZED', 'Authentication required.');
  };
}

export function createHttpServer(deps: HttpServerDeps): HttpServer {
  const { runtime } = deps;
  const metrics = deps.metrics ?? createMetrics({ db: runtime.db, queues: runtime.queues, log: runtime.log });
  const secrets = secretValues(runtime.config);
  const readyTimeoutMs = deps.readyTimeoutMs ?? 2000;
  const checks: Record<'redis' | 'postgres', ReadinessCheck> = {
    redis: deps.checks?.redis ?? (async () => {
      const reply = await runtime.redis.ping();
      if (reply !== 'PONG') throw new Error(`unexpected PING reply`);
    }),
    postgres: deps.checks?.postgres ?? (async () => {
      await runtime.database.sql`select 1`;
    }),
  };

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.get('/healthz', (_req, res) => {
    res.setHeader('Cache-Control', 'no-store');
    res.json({ ok: true });
  });

  app.get('/readyz', async (_req, res) => {
    const names = Object.keys(checks) as (keyof typeof checks)[];
    const results = await Promise.all(
      names.map((name) => withTimeout(checks[name], readyTimeoutMs).then(
        () => 'ok',
        (error: unknown) => describeCheckError(error, secrets),
      )),
    );
    const report = Object.fromEntries(names.map((name, i) => [name, results[i]!]));
    const ok = results.every((r) => r === 'ok');
    // Backends are reported, not required: a rejected Luma key degrades this process, it does not make
    // it unready (preview and other backends still work), so orchestrators should not restart it.
    const backends = await runtime.health.snapshot(runtime.backends.keys()).catch(() => ({} as Record<string, string>));
    const degraded = Object.values(backends).some((state) => state !== 'ok');
    res.setHeader('Cache-Control', 'no-store');
    res.status(ok ? 200 : 503).json({ ok, degraded, checks: report, backends });
  });

  app.get('/metrics', async (_req, res) => {
    const body = await metrics.registry.metrics();
    res.setHeader('Content-Type', metrics.registry.contentType);
    res.setHeader('Cache-Control', 'no-store');
    res.send(body);
  });

  app.get('/assets/:id', async (req, res) => {
    const id = String(req.params.id);
    if (!verifyAssetSignature(runtime.config.assetSecret, id, req.query.exp, req.query.sig)) {
      throw new HttpError(403, 'FORBIDDEN', 'This link is invalid or has expired.');
    }
    if (!UUID.test(id)) throw new HttpError(404, ErrorCode.NotFound, 'That file is no longer stored.');
    const asset = await readAsset(runtime.db, id);
    res.setHeader('Content-Type', asset.mime);
    res.setHeader('Content-Length', String(asset.data.length));
    res.setHeader('Cache-Control', ASSET_CACHE_CONTROL);
    res.setHeader('X-Content-Type-Options', 'nosniff');
    res.end(asset.data);
  });

  const password = runtime.config.ADMIN_PASSWORD;
  if (password) {
    const serverAdapter = new ExpressAdapter();
    serverAdapter.setBasePath(ADMIN_QUEUES_PATH);
    createBullBoard({
      queues: runtime.queues.all().map((queue) => new BullMQAdapter(queue)),
      // @bull-board/express 9.10.1 pins its own @bull-board/api 9.10.1 beside our 9.10.2: the same shape
      // at run time, but TypeScript sees two private `formatters` declarations. Bump both together to drop this.
      serverAdapter: serverAdapter as unknown as Parameters<typeof createBullBoard>[0]['serverAdapter'],
      options: { uiConfig: { boardTitle: 'dreambot' } },
    });
    app.use(ADMIN_QUEUES_PATH, basicAuth(password), serverAdapter.getRouter() as express.Router);
  }

  // Routes added later (mount) land here, still ahead of the 404 and error handlers.
  const extensions = express.Router();
  app.use(extensions);
  deps.extraRoutes?.(app);

  app.use((_req, res) => sendError(res, 404, ErrorCode.NotFound, 'Not found.'));

  const onError: ErrorRequestHandler = (error: unknown, req, res, _next) => {
    if (error instanceof HttpError) return sendError(res, error.status, error.code, error.message);
    if (isAppError(error) && error.code === ErrorCode.NotFound) return sendError(res, 404, error.code, error.message);
    if (isAppError(error) && error.kind === 'user') return sendError(res, 400, error.code, error.message);
    // body-parser and friends mark client errors with a status; their messages are safe to show.
    const status = (error as { status?: unknown; statusCode?: unknown } | null)?.status ?? (error as { statusCode?: unknown } | null)?.statusCode;
    if (typeof status === 'number' && status >= 400 && status < 500) {
      return sendError(res, status, 'BAD_REQUEST', error instanceof Error ? error.message : 'Bad request.');
    }
    runtime.log.error({ err: error, method: req.method, path: req.path }, 'http request failed');
    if (res.headersSent) return void res.end();
    sendError(res, 500, ErrorCode.Internal, 'Internal error.');
  };
  app.use(onError);

  let server: Server | undefined;

  return {
    app,
    mount(path, handler) {
      extensions.use(path, handler);
    },
    listen(port, host) {
      if (server) return Promise.reject(new Error('already listening'));
      const s = createServer(app);
      server = s;
      return new Promise<number>((resolve, reject) => {
        const onListenError = (error: Error) => {
          server = undefined;
          reject(error);
        };
        s.once('error', onListenError);
        s.listen(port, host, () => {
          s.off('error', onListenError);
          s.on('error', (error) => runtime.log.error({ err: error }, 'http server error'));
          resolve((s.address() as AddressInfo).port);
        });
      });
    },
    close() {
      const s = server;
      server = undefined;
      if (!s) return Promise.resolve();
      return new Promise<void>((resolve, reject) => {
        s.close((error) => (error ? reject(error) : resolve()));
        s.closeIdleConnections();
      });
    },
  };
}
