import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { MediaBinaries } from '../../../src/media/ffmpeg.ts';
import { postCallback } from './callbacks.ts';
import { Faults } from './faults.ts';
import { GenerationLifecycle, type FakeGeneration } from './lifecycle.ts';
import { renderFakeMedia, type FakeMedia } from './media.ts';
import { FakeLumaStats } from './stats.ts';
import { validateAudio, validateUpscale, validateVideo } from './validate.ts';

export interface FakeLumaOptions {
  /** The Bearer key it accepts; random by default. */
  apiKey?: string;
  port?: number;
  host?: string;
  /** How long a generation stays queued, then dreaming. */
  timing?: { queuedMs: number; dreamingMs: number };
  /** Enforced like the Build tier (10 concurrent, 20 creates/min) unless set. */
  limits?: { concurrent: number; createsPerMinute: number };
  /** What /generations/concepts/list serves. */
  concepts?: string[];
  /** Starting balance in US cents (GET /credits). */
  creditCents?: number;
  bins?: MediaBinaries;
  media?: FakeMedia;
  log?: (line: string) => void;
}

/**
 * The concept keys the fake offers. The real list is fetched at run time; these are the examples the
 * docs cite (backend-luma.md §3) plus the mirror-image moves. `crane_down` is left out on purpose, so
 * tests can see a camera move the service does not offer being refused.
 */
export const DEFAULT_CONCEPTS = [
  'dolly_zoom', 'orbit_left', 'orbit_right', 'pan_left', 'pan_right', 'push_in', 'pull_out', 'crane_up',
  'zoom_in', 'zoom_out', 'static', 'aerial_drone', 'handheld', 'tilt_up', 'tilt_down',
];

export const API_PREFIX = '/dream-machine/v1';
const PRICE_PER_MPX_CENTS: Record<string, number> = { 'ray-2': 0.64, 'ray-flash-2': 0.22 };
const PIXELS_720P: Record<string, number> = { '16:9': 1280 * 720, '9:16': 720 * 1280, '1:1': 1024 * 1024, '4:3': 1152 * 864, '3:4': 864 * 1152, '21:9': 1552 * 656, '9:21': 656 * 1552 };
const RESOLUTION_AREA: Record<string, number> = { '540p': 0.5625, '720p': 1, '1080p': 2.25, '4k': 9 };

class HttpFailure extends Error {
  constructor(readonly status: number, readonly detail: string, readonly headers: Record<string, string> = {}) {
    super(detail);
  }
}

/**
 * A protocol-faithful fake of the Dream Machine API v1 (backend-luma.md), built from the documented
 * facts rather than from what dreambot sends: Bearer auth, the generation endpoints, validation with
 * `{detail}` errors, queued → dreaming → completed | failed on timers, callbacks with Luma's retry
 * rule, image keyframes fetched over HTTP, real MP4s on its own "CDN", enforced concurrency and
 * creates-per-minute limits, counters, and fault injection (`fake.faults`).
 */
export class FakeLuma {
  private key: string;
  readonly stats = new FakeLumaStats();
  readonly faults = new Faults();
  /** Every create-like request as received (after JSON parsing), with the status it got. */
  readonly received: { route: string; body: unknown; status: number; at: number }[] = [];
  readonly lifecycle: GenerationLifecycle;
  limits: { concurrent: number; createsPerMinute: number };
  timing: { queuedMs: number; dreamingMs: number };
  concepts: string[];
  creditCents: number;
  private server: Server | undefined;
  private readonly charged = new Map<string, number>();
  private origin = '';
  private readonly log: (line: string) => void;

  private constructor(private readonly media: FakeMedia, options: FakeLumaOptions) {
    this.key = options.apiKey ?? `luma-fake-${randomBytes(12).toString('hex')}`;
    this.limits = options.limits ?? { concurrent: 10, createsPerMinute: 20 };
    this.timing = options.timing ?? { queuedMs: 300, dreamingMs: 1500 };
    this.concepts = options.concepts ?? [...DEFAULT_CONCEPTS];
    this.creditCents = options.creditCents ?? 100_000;
    this.log = options.log ?? (() => undefined);
    this.lifecycle = new GenerationLifecycle({
      stats: this.stats,
      timing: () => this.timing,
      onChange: (g) => this.notify(g),
      log: this.log,
    });
  }

  static async start(options: FakeLumaOptions = {}): Promise<FakeLuma> {
    const media = options.media ?? (await renderFakeMedia(options.bins ? { bins: options.bins } : {}));
    const fake = new FakeLuma(media, options);
    await fake.listen(options.port ?? 0, options.host ?? '127.0.0.1');
    return fake;
  }

  /** The Bearer key it accepts now. */
  get apiKey(): string {
    return this.key;
  }

  /** Accepts only `key` from now on (a revoked or rotated key answers 401). */
  acceptKey(key: string): void {
    this.key = key;
  }

  /** The SDK's baseURL (LUMA_BASE_URL). */
  get url(): string {
    return `${this.origin}${API_PREFIX}`;
  }

  generation(id: string): FakeGeneration | undefined {
    return this.lifecycle.get(id);
  }

  get imageFetches() {
    return this.lifecycle.imageFetches;
  }

  /** Bodies of accepted creates, oldest first, optionally only of one route ('POST /generations/video', …). */
  createdBodies(route?: string): Record<string, unknown>[] {
    return this.received.filter((r) => r.status < 300 && (!route || r.route === route)).map((r) => r.body as Record<string, unknown>);
  }

  async close(): Promise<void> {
    this.lifecycle.stopAll();
    const server = this.server;
    this.server = undefined;
    if (!server) return;
    await new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    });
  }

  private listen(port: number, host: string): Promise<void> {
    const server = createServer((req, res) => void this.handle(req, res));
    this.server = server;
    return new Promise((resolve, reject) => {
      server.once('error', reject);
      server.listen(port, host, () => {
        const address = server.address() as AddressInfo;
        this.origin = `http://${host}:${address.port}`;
        resolve();
      });
    });
  }

  private async handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const method = req.method ?? 'GET';
    try {
      if (method === 'GET' && url.pathname.startsWith('/cdn/')) return this.serveCdn(url.pathname, res);
      if (method === 'GET' && url.pathname.startsWith('/_fake/')) return this.serveInspection(url.pathname, res);
      if (!url.pathname.startsWith(API_PREFIX)) throw new HttpFailure(404, 'Not Found');
      const path = url.pathname.slice(API_PREFIX.length).replace(/\/+$/, '') || '/';
      const route = routeOf(method, path);
      this.stats.countRequest(route);
      const auth = req.headers.authorization ?? '';
      if (!auth) throw new HttpFailure(401, 'Not authenticated');
      if (auth !== `Bearer ${this.key}`) throw new HttpFailure(401, 'Invalid API key');
      const creating = method === 'POST';
      const serverError = this.faults.takeServerError(creating ? 'create' : 'read');
      if (serverError && !serverError.afterCommit) throw new HttpFailure(serverError.status, 'Internal Server Error');
      const body = creating ? await readJson(req) : undefined;
      const [status, payload, headers] = await this.route(method, path, route, url, body, serverError?.afterCommit ?? false);
      send(res, status, payload, headers);
    } catch (error) {
      if (error instanceof HttpFailure) return send(res, error.status, { detail: error.detail }, error.headers);
      this.log(`fake luma error: ${(error as Error).stack ?? String(error)}`);
      send(res, 500, { detail: 'Internal Server Error' });
    }
  }

  private async route(method: string, path: string, route: string, url: URL, body: unknown, failAfterCommit: boolean): Promise<[number, unknown, Record<string, string>?]> {
    const parts = path.split('/').filter(Boolean);
    if (route === 'GET /ping') return [200, 'pong'];
    if (route === 'GET /credits') return [200, { credit_balance: Math.round(this.creditCents) }];
    if (route === 'GET /generations/concepts/list') return [200, this.concepts];
    if (route === 'GET /generations') {
      const limit = Math.min(100, Math.max(1, Number(url.searchParams.get('limit') ?? 10) || 10));
      const offset = Math.max(0, Number(url.searchParams.get('offset') ?? 0) || 0);
      const { page, total } = this.lifecycle.list(limit, offset);
      return [200, { generations: page.map((g) => this.view(g)), count: page.length, has_more: offset + page.length < total, limit, offset }];
    }
    if (route === 'GET /generations/:id') {
      const g = this.require(parts[1]!);
      g.reads += 1;
      if (g.state === 'completed' && g.completedSeenAt === undefined) g.completedSeenAt = Date.now();
      return [200, this.view(g)];
    }
    if (route === 'DELETE /generations/:id') {
      if (!this.lifecycle.delete(parts[1]!)) throw new HttpFailure(404, 'Generation not found');
      return [204, undefined];
    }
    if (route === 'POST /generations/video' || route === 'POST /generations') return this.create(route, body, failAfterCommit);
    if (route === 'POST /generations/:id/upscale' || route === 'POST /generations/:id/audio') return this.derive(route, parts[1]!, body, failAfterCommit);
    throw new HttpFailure(404, 'Not Found');
  }

  private async create(route: string, body: unknown, failAfterCommit: boolean): Promise<[number, unknown, Record<string, string>?]> {
    const reject = (status: number, detail: string, headers: Record<string, string> = {}): never => {
      this.received.push({ route, body, status, at: Date.now() });
      throw new HttpFailure(status, detail, headers);
    };
    const storm = this.faults.takeStorm();
    if (storm) {
      this.stats.rejections.storm += 1;
      reject(429, 'Too many requests', storm.retryAfterS === undefined ? {} : { 'retry-after': String(storm.retryAfterS) });
    }
    const checked = validateVideo(body, this.concepts, (id) => {
      const g = this.lifecycle.get(id);
      return g ? g.state === 'completed' : undefined;
    });
    if (!checked.ok) return reject(checked.status, checked.detail);
    const request = checked.value;
    this.enforceLimits(reject);
    const plan = this.faults.takeGenerationPlan(request.prompt);
    const generation = this.accept('video', request, plan, this.price(request));
    this.received.push({ route, body, status: failAfterCommit ? 500 : 201, at: Date.now() });
    if (failAfterCommit) throw new HttpFailure(500, 'Internal Server Error');
    if (plan.hangMs) await new Promise((r) => setTimeout(r, plan.hangMs));
    return [201, this.view(generation)];
  }

  /** Upscale and add-audio: a new generation made from a completed one. */
  private async derive(route: string, parentId: string, body: unknown, failAfterCommit: boolean): Promise<[number, unknown, Record<string, string>?]> {
    const reject = (status: number, detail: string, headers: Record<string, string> = {}): never => {
      this.received.push({ route, body: { parentId, body }, status, at: Date.now() });
      throw new HttpFailure(status, detail, headers);
    };
    const storm = this.faults.takeStorm();
    if (storm) {
      this.stats.rejections.storm += 1;
      reject(429, 'Too many requests', storm.retryAfterS === undefined ? {} : { 'retry-after': String(storm.retryAfterS) });
    }
    const parent = this.lifecycle.get(parentId);
    if (!parent) return reject(404, 'Generation not found');
    if (parent.state !== 'completed') return reject(400, `Generation ${parentId} is not completed`);
    const checked = route.endsWith('/upscale') ? validateUpscale(body) : validateAudio(body);
    if (!checked.ok) return reject(checked.status, checked.detail);
    const request = checked.value;
    this.enforceLimits(reject);
    const plan = this.faults.takeGenerationPlan('prompt' in request ? request.prompt : undefined);
    const generation = this.accept(request.generation_type, request, plan, 0, parentId);
    this.received.push({ route, body: { parentId, body }, status: failAfterCommit ? 500 : 200, at: Date.now() });
    if (failAfterCommit) throw new HttpFailure(500, 'Internal Server Error');
    if (plan.hangMs) await new Promise((r) => setTimeout(r, plan.hangMs));
    return [200, this.view(generation)];
  }

  private enforceLimits(reject: (status: number, detail: string, headers?: Record<string, string>) => never): void {
    if (this.lifecycle.runningCount() >= this.limits.concurrent) {
      this.stats.rejections.concurrency += 1;
      reject(429, `Concurrency limit reached (${this.limits.concurrent} generations at once)`);
    }
    const now = Date.now();
    if (this.stats.createsWithin(60_000, now) >= this.limits.createsPerMinute) {
      this.stats.rejections.rate += 1;
      const oldest = this.stats.createTimes.filter((t) => t > now - 60_000)[0] ?? now;
      reject(429, `Rate limit reached (${this.limits.createsPerMinute} creates per minute)`, { 'retry-after': String(Math.max(1, Math.ceil((oldest + 60_000 - now) / 1000))) });
    }
  }

  private accept(kind: FakeGeneration['kind'], request: FakeGeneration['request'], plan: ReturnType<Faults['takeGenerationPlan']>, priceCents: number, parentId?: string): FakeGeneration {
    this.stats.createTimes.push(Date.now());
    this.stats.createsByKind[kind] += 1;
    // Luma pre-charges and refunds failed generations in full (backend-luma.md §5).
    this.creditCents -= priceCents;
    const { hangMs: _hang, ...rest } = plan;
    const generation = this.lifecycle.add(kind, request, rest, parentId);
    this.charged.set(generation.id, priceCents);
    return generation;
  }

  private price(request: { model: string; aspect_ratio?: string; resolution?: string; duration?: string }): number {
    const pixels = (PIXELS_720P[request.aspect_ratio ?? '16:9'] ?? PIXELS_720P['16:9']!) * (RESOLUTION_AREA[request.resolution ?? '720p'] ?? 1);
    const seconds = Number.parseInt(request.duration ?? '5s', 10) || 5;
    return ((pixels * 24 * seconds) / 1e6) * (PRICE_PER_MPX_CENTS[request.model] ?? 0.64);
  }

  private require(id: string): FakeGeneration {
    const g = this.lifecycle.get(id);
    if (!g) throw new HttpFailure(404, 'Generation not found');
    return g;
  }

  private view(g: FakeGeneration): Record<string, unknown> {
    return this.lifecycle.view(g, `${this.origin}/cdn`);
  }

  private notify(generation: FakeGeneration): void {
    if (generation.state === 'failed') this.creditCents += this.charged.get(generation.id) ?? 0;
    const url = generation.request.callback_url;
    if (!url || generation.plan.silent) return;
    const body = this.view(generation);
    for (let i = 0; i < Math.max(1, this.faults.callbackRepeats); i++) void postCallback(url, body, this.stats, this.log);
  }

  /**
   * Not part of the Luma API: what the fake recorded, for a harness that runs it in another process
   * (`GET /_fake/stats`, `GET /_fake/generations/<id>`).
   */
  private serveInspection(pathname: string, res: ServerResponse): void {
    if (pathname === '/_fake/stats') {
      const s = this.stats;
      return send(res, 200, {
        creates: s.creates, createsByKind: s.createsByKind, rejections: s.rejections, concurrentPeak: s.concurrentPeak,
        maxCreatesIn60s: s.maxCreatesInAnyWindow(60_000), callbacks: s.callbacks, requests: Object.fromEntries(s.requests),
      });
    }
    const g = this.lifecycle.get(pathname.replace('/_fake/generations/', ''));
    if (!g) return send(res, 404, { detail: 'Generation not found' });
    return send(res, 200, { id: g.id, state: g.state, createdAt: g.createdAt.getTime(), completedAt: g.completedAt ?? null, completedSeenAt: g.completedSeenAt ?? null, reads: g.reads });
  }

  private serveCdn(pathname: string, res: ServerResponse): void {
    const m = /^\/cdn\/([0-9a-f-]{36})\.(mp4|jpg)$/.exec(pathname);
    const g = m ? this.lifecycle.get(m[1]!) : undefined;
    if (!m || !g || (m[2] === 'mp4' && g.state !== 'completed' && g.state !== 'dreaming')) return send(res, 404, { detail: 'Not Found' });
    this.stats.countRequest('GET /cdn');
    if (m[2] === 'jpg') return sendBytes(res, 'image/jpeg', this.media.thumbnail);
    this.stats.downloads.set(g.id, (this.stats.downloads.get(g.id) ?? 0) + 1);
    sendBytes(res, 'video/mp4', g.kind === 'add_audio' ? this.media.videoWithAudio : this.media.video);
  }
}

function routeOf(method: string, path: string): string {
  const parts = path.split('/').filter(Boolean);
  if (path === '/ping' || path === '/credits' || path === '/generations' || path === '/generations/video' || path === '/generations/concepts/list') return `${method} ${path}`;
  if (parts[0] === 'generations' && parts.length === 2) return `${method} /generations/:id`;
  if (parts[0] === 'generations' && parts.length === 3 && (parts[2] === 'upscale' || parts[2] === 'audio')) return `${method} /generations/:id/${parts[2]}`;
  return `${method} ${path}`;
}

async function readJson(req: IncomingMessage): Promise<unknown> {
  const chunks: Buffer[] = [];
  for await (const chunk of req) chunks.push(chunk as Buffer);
  const text = Buffer.concat(chunks).toString('utf8');
  if (text.trim() === '') return undefined;
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new HttpFailure(422, 'The request body is not valid JSON');
  }
}

function send(res: ServerResponse, status: number, payload: unknown, headers: Record<string, string> = {}): void {
  if (res.headersSent || res.destroyed) return;
  if (status === 204 || payload === undefined) {
    res.writeHead(status, headers).end();
    return;
  }
  const body = JSON.stringify(payload);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': String(Buffer.byteLength(body)), ...headers }).end(body);
}

function sendBytes(res: ServerResponse, type: string, data: Buffer): void {
  res.writeHead(200, { 'content-type': type, 'content-length': String(data.length), 'cache-control': 'public, max-age=86400' }).end(data);
}
