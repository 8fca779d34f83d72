import { randomUUID } from 'node:crypto';
import { createReadStream } from 'node:fs';
import http from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import { setTimeout as sleep } from 'node:timers/promises';
import { WebSocketServer, type WebSocket } from 'ws';
import { renderClip, type ClipSpec } from './clip.ts';
import { objectInfo, SAMPLER_TYPES, type NodeSpec } from './nodes.ts';
import { validatePrompt, type Graph } from './validate.ts';

/**
 * A protocol-faithful fake ComfyUI server (routes and messages as in Comfy-Org/ComfyUI server.py,
 * execution.py and main.py): HTTP plus the WebSocket on /ws?clientId=…, every route also under /api,
 * one prompt executing at a time, history in memory (lost when it "dies"), and real MP4 outputs.
 * Faults are switched on through `faults`; tests read `counters`, `received`, `executions`, `uploads`.
 */
export interface FakeFaults {
  /** How long every prompt takes. */
  promptMs: number;
  /** The next `count` prompts take `extraMs` longer. */
  slow: { count: number; extraMs: number } | undefined;
  /** GET /system_stats answers 500. */
  systemStatsFails: boolean;
  /** The next `count` prompts fail at the sampler with execution_error. */
  executionError: { count: number; message: string } | undefined;
  /** The server dies (sockets destroyed, connections refused) when the running prompt is this far through (0..1). */
  dieAt: number | undefined;
}

export interface FakeOptions {
  port?: number;
  host?: string;
  promptMs?: number;
  /** Sampler steps reported as `progress` messages. */
  steps?: number;
  /** Node types this server lacks (a stale install, a missing custom node). */
  missingNodes?: string[];
  name?: string;
}

interface QueueItem {
  number: number;
  promptId: string;
  prompt: Graph;
  extraData: Record<string, unknown>;
  outputs: string[];
  interrupted: boolean;
}

interface HistoryEntry {
  prompt: unknown[];
  outputs: Record<string, Record<string, unknown>>;
  status: { status_str: 'success' | 'error'; completed: boolean; messages: [string, Record<string, unknown>][] };
  meta: Record<string, unknown>;
}

export interface Execution {
  promptId: string;
  clientId: string | undefined;
  startedAt: number;
  endedAt?: number;
  outcome?: 'success' | 'error' | 'interrupted' | 'died';
}

const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
const LATENT_TYPES = new Set(['Wan22ImageToVideoLatent', 'EmptyLTXVLatentVideo', 'LTXVImgToVideo', 'WanImageToVideo']);

export class FakeComfyUI {
  readonly faults: FakeFaults;
  readonly counters = {
    prompts: 0, rejected: 0, executions: 0, completed: 0, interrupts: 0, uploads: 0, systemStats: 0,
    objectInfo: 0, history: 0, view: 0, queue: 0, wsConnections: 0, deaths: 0,
  };
  /** Every accepted POST /prompt body. */
  readonly received: { promptId: string; clientId: string | undefined; prompt: Graph; at: number }[] = [];
  readonly rejections: unknown[] = [];
  readonly executions: Execution[] = [];
  readonly interrupts: { promptId: string | undefined; hit: boolean }[] = [];
  /** The input folder (uploads survive a restart, as files on disk do). */
  readonly uploads = new Map<string, Buffer>();
  readonly systemStatsAt: number[] = [];

  private readonly server: http.Server;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly connections = new Set<Socket>();
  private readonly sockets = new Map<string, WebSocket>();
  private readonly outputFiles = new Map<string, string>();
  private queue: QueueItem[] = [];
  private running: QueueItem | undefined;
  private history = new Map<string, HistoryEntry>();
  private lastNode: string | null = null;
  private number = 0;
  private outputCounter = 0;
  private epoch = 0;
  private listening = false;
  private port = 0;
  private readonly steps: number;
  private readonly missing: Set<string>;

  private constructor(private readonly options: FakeOptions) {
    this.faults = { promptMs: options.promptMs ?? 1000, slow: undefined, systemStatsFails: false, executionError: undefined, dieAt: undefined };
    this.steps = options.steps ?? 10;
    this.missing = new Set(options.missingNodes ?? []);
    this.server = http.createServer((req, res) => {
      this.route(req, res).catch((error: unknown) => {
        if (!res.headersSent) res.writeHead(500, { 'content-type': 'text/plain' });
        res.end(String(error));
      });
    });
    this.server.keepAliveTimeout = 5000;
    this.server.on('connection', (socket) => {
      this.connections.add(socket);
      socket.on('close', () => this.connections.delete(socket));
    });
    this.server.on('upgrade', (req, socket, head) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      if (url.pathname !== '/ws' && url.pathname !== '/api/ws') {
        socket.destroy();
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.onSocket(ws, url.searchParams.get('clientId') ?? ''));
    });
  }

  static async start(options: FakeOptions = {}): Promise<FakeComfyUI> {
    const fake = new FakeComfyUI(options);
    await fake.listen(options.port ?? 0);
    return fake;
  }

  get url(): string {
    return `http://${this.options.host ?? '127.0.0.1'}:${this.port}/`;
  }

  get name(): string {
    return this.options.name ?? this.url;
  }

  get alive(): boolean {
    return this.listening;
  }

  /** The prompt executing now, if any. */
  get runningPromptId(): string | undefined {
    return this.running?.promptId;
  }

  executionsOf(promptId: string): number {
    return this.executions.filter((e) => e.promptId === promptId).length;
  }

  /** Renders the MP4 for a size ahead of time, so a test's first prompt is not slowed by ffmpeg. */
  prepare(spec: ClipSpec): Promise<string> {
    return renderClip(spec);
  }

  private listen(port: number): Promise<void> {
    return new Promise((resolve, reject) => {
      this.server.once('error', reject);
      this.server.listen(port, this.options.host ?? '127.0.0.1', () => {
        this.server.off('error', reject);
        this.port = (this.server.address() as AddressInfo).port;
        this.listening = true;
        resolve();
      });
    });
  }

  /**
   * The process crashes: every socket is destroyed, new connections are refused, and the in-memory
   * queue and history are gone. Uploaded inputs and output files stay (they are files on disk).
   */
  async die(): Promise<void> {
    if (!this.listening) return;
    this.listening = false;
    this.epoch += 1;
    this.counters.deaths += 1;
    const running = this.executions.find((e) => e.promptId === this.running?.promptId && !e.endedAt);
    if (running) {
      running.endedAt = Date.now();
      running.outcome = 'died';
    }
    this.running = undefined;
    this.queue = [];
    this.history = new Map();
    this.lastNode = null;
    const closed = new Promise<void>((resolve) => this.server.close(() => resolve()));
    for (const ws of this.wss.clients) ws.terminate();
    this.sockets.clear();
    for (const socket of this.connections) socket.destroy();
    await closed;
  }

  /** Starts again on the same port with empty memory, as a restarted ComfyUI does. */
  async revive(): Promise<void> {
    if (this.listening) return;
    await this.listen(this.port);
  }

  async close(): Promise<void> {
    await this.die();
    this.wss.close();
  }

  // ---------------------------------------------------------------- HTTP

  private async route(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? '/', 'http://fake');
    const route = url.pathname.startsWith('/api/') ? url.pathname.slice(4) : url.pathname;
    const method = req.method ?? 'GET';
    const json = (status: number, body: unknown) => {
      res.writeHead(status, { 'content-type': 'application/json; charset=utf-8' });
      res.end(JSON.stringify(body));
    };
    const empty = (status: number) => {
      res.writeHead(status);
      res.end();
    };

    if (method === 'GET' && route === '/system_stats') {
      this.counters.systemStats += 1;
      this.systemStatsAt.push(Date.now());
      if (this.faults.systemStatsFails) return json(500, { error: 'CUDA error: an illegal memory access was encountered' });
      return json(200, this.systemStats());
    }
    if (method === 'GET' && route === '/object_info') {
      this.counters.objectInfo += 1;
      return json(200, this.info());
    }
    if (method === 'GET' && route.startsWith('/object_info/')) {
      const name = decodeURIComponent(route.slice('/object_info/'.length));
      const info = this.info();
      return json(200, info[name] ? { [name]: info[name] } : {});
    }
    if (method === 'POST' && route === '/prompt') return this.postPrompt(await readJson(req), json);
    if (method === 'GET' && route === '/prompt') return json(200, this.queueInfo());
    if (method === 'GET' && route === '/history') {
      this.counters.history += 1;
      return json(200, Object.fromEntries(this.history));
    }
    if (method === 'GET' && route.startsWith('/history/')) {
      this.counters.history += 1;
      const id = decodeURIComponent(route.slice('/history/'.length));
      const entry = this.history.get(id);
      return json(200, entry ? { [id]: structuredClone(entry) } : {});
    }
    if (method === 'POST' && route === '/history') {
      const body = (await readJson(req)) as { clear?: boolean; delete?: string[] };
      if (body.clear) this.history.clear();
      for (const id of body.delete ?? []) this.history.delete(id);
      return empty(200);
    }
    if (method === 'GET' && route === '/queue') {
      this.counters.queue += 1;
      const tuple = (item: QueueItem) => [item.number, item.promptId, item.prompt, item.extraData, item.outputs];
      return json(200, { queue_running: this.running ? [tuple(this.running)] : [], queue_pending: this.queue.map(tuple) });
    }
    if (method === 'POST' && route === '/queue') {
      const body = (await readJson(req)) as { clear?: boolean; delete?: string[] };
      if (body.clear) this.queue = [];
      for (const id of body.delete ?? []) this.queue = this.queue.filter((item) => item.promptId !== id);
      this.broadcastStatus();
      return empty(200);
    }
    if (method === 'POST' && route === '/interrupt') {
      const body = ((await readJson(req).catch(() => ({}))) ?? {}) as { prompt_id?: string };
      this.counters.interrupts += 1;
      const hit = !!this.running && (!body.prompt_id || body.prompt_id === this.running.promptId);
      if (hit) this.running!.interrupted = true;
      this.interrupts.push({ promptId: body.prompt_id, hit });
      return empty(200);
    }
    if (method === 'POST' && route === '/upload/image') return this.upload(req, json, empty);
    if (method === 'GET' && route === '/view') return this.view(url, res, empty);
    if (route === '/ws') return empty(400);
    return empty(404);
  }

  private info(): Record<string, NodeSpec> {
    return objectInfo([...this.uploads.keys()], this.missing);
  }

  private systemStats() {
    return {
      system: {
        os: 'posix', ram_total: 135_089_651_712, ram_free: 120_000_000_000, comfyui_version: '0.3.66',
        required_frontend_version: '1.28.7', python_version: '3.12.3 (main)', pytorch_version: '2.8.0+cu128',
        embedded_python: false, argv: ['main.py', '--listen', '0.0.0.0'],
      },
      devices: [{
        name: 'cuda:0 NVIDIA H100 80GB HBM3 : cudaMallocAsync', type: 'cuda', index: 0,
        vram_total: 85_031_714_816, vram_free: 70_000_000_000, torch_vram_total: 0, torch_vram_free: 0,
      }],
    };
  }

  private queueInfo() {
    return { exec_info: { queue_remaining: this.queue.length + (this.running ? 1 : 0) } };
  }

  private postPrompt(body: unknown, json: (status: number, body: unknown) => void): void {
    const data = (body ?? {}) as { prompt?: Graph; client_id?: string; prompt_id?: string | null; number?: number; front?: boolean; extra_data?: Record<string, unknown> };
    const reject = (error: unknown, nodeErrors: unknown = {}) => {
      this.counters.rejected += 1;
      this.rejections.push({ error, node_errors: nodeErrors });
      json(400, { error, node_errors: nodeErrors });
    };
    let number: number;
    if (typeof data.number === 'number') number = data.number;
    else {
      number = data.front ? -this.number : this.number;
      this.number += 1;
    }
    if (!data.prompt) return reject({ type: 'no_prompt', message: 'No prompt provided', details: 'No prompt provided', extra_info: {} });
    let promptId: string;
    if (data.prompt_id === undefined || data.prompt_id === null) promptId = randomUUID();
    else if (typeof data.prompt_id === 'string' && UUID.test(data.prompt_id)) promptId = data.prompt_id;
    else {
      return reject({
        type: 'invalid_prompt_id', message: 'prompt_id must be a valid UUID',
        details: 'prompt_id must be a UUID string in canonical lowercase hyphenated form; omit it to let the server generate one', extra_info: {},
      });
    }
    const valid = validatePrompt(data.prompt, this.info());
    if (!valid.ok) return reject(valid.error, valid.node_errors);
    const extraData: Record<string, unknown> = { ...(data.extra_data ?? {}), ...(data.client_id ? { client_id: data.client_id } : {}), create_time: Date.now() };
    // Like ComfyUI, a second POST with an id already in use is queued and runs again.
    this.queue.push({ number, promptId, prompt: data.prompt, extraData, outputs: valid.outputs, interrupted: false });
    this.queue.sort((a, b) => a.number - b.number);
    this.counters.prompts += 1;
    this.received.push({ promptId, clientId: data.client_id, prompt: structuredClone(data.prompt), at: Date.now() });
    this.broadcastStatus();
    json(200, { prompt_id: promptId, number, node_errors: {} });
    setImmediate(() => this.pump());
  }

  private async upload(req: http.IncomingMessage, json: (s: number, b: unknown) => void, empty: (s: number) => void): Promise<void> {
    const body = await readBody(req);
    let form: FormData;
    try {
      form = await new Response(new Uint8Array(body), { headers: { 'content-type': req.headers['content-type'] ?? '' } }).formData();
    } catch {
      return empty(400);
    }
    const image = form.get('image');
    if (!image || typeof image === 'string' || !image.name) return empty(400);
    const subfolder = String(form.get('subfolder') ?? '');
    const type = String(form.get('type') ?? 'input');
    const overwrite = ['true', '1'].includes(String(form.get('overwrite') ?? ''));
    if (subfolder.includes('..') || image.name.includes('/') || image.name.includes('..')) return empty(400);
    const bytes = Buffer.from(await image.arrayBuffer());
    let name = image.name;
    const at = (n: string) => (subfolder ? `${subfolder}/${n}` : n);
    if (!overwrite) {
      const dot = name.lastIndexOf('.');
      const [stem, ext] = dot > 0 ? [name.slice(0, dot), name.slice(dot)] : [name, ''];
      for (let i = 1; this.uploads.has(at(name)) && !this.uploads.get(at(name))!.equals(bytes); i++) name = `${stem} (${i})${ext}`;
    }
    this.uploads.set(at(name), bytes);
    this.counters.uploads += 1;
    json(200, { name, subfolder, type });
  }

  private view(url: URL, res: http.ServerResponse, empty: (s: number) => void): void {
    const filename = url.searchParams.get('filename');
    if (!filename) return empty(404);
    if (filename.startsWith('/') || filename.includes('..')) return empty(400);
    const type = url.searchParams.get('type') ?? 'output';
    const subfolder = url.searchParams.get('subfolder') ?? '';
    if (subfolder.includes('..')) return empty(403);
    const file = this.outputFiles.get(`${type}/${subfolder ? `${subfolder}/` : ''}${filename}`);
    if (!file) return empty(404);
    this.counters.view += 1;
    res.writeHead(200, { 'content-type': 'video/mp4', 'content-disposition': `filename="${filename}"` });
    createReadStream(file).pipe(res);
  }

  // ---------------------------------------------------------------- WebSocket

  private onSocket(ws: WebSocket, requested: string): void {
    this.counters.wsConnections += 1;
    const sid = requested || randomUUID().replace(/-/g, '');
    this.sockets.set(sid, ws);
    ws.on('close', () => {
      if (this.sockets.get(sid) === ws) this.sockets.delete(sid);
    });
    ws.on('error', () => undefined);
    this.send('status', { status: this.queueInfo(), sid }, sid);
    // On reconnect, the client whose prompt is executing hears the current node again.
    if (this.running && this.running.extraData.client_id === sid && this.lastNode !== null) this.send('executing', { node: this.lastNode }, sid);
  }

  private send(type: string, data: Record<string, unknown>, sid?: string): void {
    const message = JSON.stringify({ type, data });
    const targets = sid === undefined ? [...this.sockets.values()] : this.sockets.has(sid) ? [this.sockets.get(sid)!] : [];
    for (const ws of targets) if (ws.readyState === ws.OPEN) ws.send(message);
  }

  private broadcastStatus(): void {
    this.send('status', { status: this.queueInfo() });
  }

  // ---------------------------------------------------------------- execution

  /** main.py's prompt_worker: one prompt at a time, lowest number first. */
  private pump(): void {
    if (this.running || !this.listening) return;
    const item = this.queue.shift();
    if (!item) return;
    this.running = item;
    this.broadcastStatus();
    const epoch = this.epoch;
    void this.execute(item, epoch).finally(() => {
      if (this.epoch !== epoch) return;
      this.running = undefined;
      this.lastNode = null;
      this.broadcastStatus();
      this.pump();
    });
  }

  private async execute(item: QueueItem, epoch: number): Promise<void> {
    const alive = () => this.epoch === epoch && this.listening;
    const client = typeof item.extraData.client_id === 'string' ? item.extraData.client_id : undefined;
    const messages: [string, Record<string, unknown>][] = [];
    const add = (event: string, data: Record<string, unknown>, broadcast = false) => {
      const stamped = { ...data, timestamp: Date.now() };
      messages.push([event, stamped]);
      if (client !== undefined || broadcast) this.send(event, stamped, client);
    };
    const execution: Execution = { promptId: item.promptId, clientId: client, startedAt: Date.now() };
    this.executions.push(execution);
    this.counters.executions += 1;

    let duration = this.faults.promptMs;
    if (this.faults.slow && this.faults.slow.count > 0) {
      duration += this.faults.slow.extraMs;
      this.faults.slow.count -= 1;
    }
    let failure: string | undefined;
    if (this.faults.executionError && this.faults.executionError.count > 0) {
      failure = this.faults.executionError.message;
      this.faults.executionError.count -= 1;
    }
    const dieAt = this.faults.dieAt;

    add('execution_start', { prompt_id: item.promptId });
    add('execution_cached', { nodes: [], prompt_id: item.promptId });
    const order = executionOrder(item.prompt, item.outputs);
    const others = Math.max(1, order.filter((id) => !SAMPLER_TYPES.has(item.prompt[id]!.class_type!)).length);
    const outputs: Record<string, Record<string, unknown>> = {};
    const meta: Record<string, unknown> = {};
    const executed: string[] = [];
    const finish = (status: 'success' | 'error', outcome: Execution['outcome']) => {
      execution.endedAt = Date.now();
      execution.outcome = outcome;
      if (outcome === 'success') this.counters.completed += 1;
      this.history.set(item.promptId, {
        prompt: [item.number, item.promptId, item.prompt, item.extraData, item.outputs],
        outputs, status: { status_str: status, completed: status === 'success', messages }, meta,
      });
      this.lastNode = null;
      if (client !== undefined) this.send('executing', { node: null, prompt_id: item.promptId }, client);
    };
    const interrupted = (nodeId: string) => {
      add('execution_interrupted', { prompt_id: item.promptId, node_id: nodeId, node_type: item.prompt[nodeId]!.class_type, executed: [...executed] }, true);
      finish('error', 'interrupted');
    };

    for (const nodeId of order) {
      if (!alive()) return;
      const node = item.prompt[nodeId]!;
      this.lastNode = nodeId;
      if (client !== undefined) this.send('executing', { node: nodeId, display_node: nodeId, prompt_id: item.promptId }, client);
      if (SAMPLER_TYPES.has(node.class_type!)) {
        for (let step = 1; step <= this.steps; step++) {
          await sleep((duration * 0.85) / this.steps);
          if (!alive()) return;
          if (item.interrupted) return interrupted(nodeId);
          if (dieAt !== undefined && step / this.steps >= dieAt) {
            this.faults.dieAt = undefined;
            await this.die();
            return;
          }
          if (client !== undefined) this.send('progress', { value: step, max: this.steps, prompt_id: item.promptId, node: nodeId }, client);
        }
        if (failure !== undefined) {
          add('execution_error', {
            prompt_id: item.promptId, node_id: nodeId, node_type: node.class_type, executed: [...executed],
            exception_message: `${failure}\n`, exception_type: 'torch.OutOfMemoryError',
            traceback: ['  File "/ComfyUI/execution.py", line 496, in execute\n'], current_inputs: {}, current_outputs: [...executed],
          });
          return finish('error', 'error');
        }
      } else {
        await sleep((duration * 0.15) / others);
        if (!alive()) return;
        if (item.interrupted) return interrupted(nodeId);
      }
      if (node.class_type === 'SaveVideo') {
        const file = await renderClip(clipSpec(item.prompt));
        if (!alive()) return;
        const prefix = String(node.inputs?.filename_prefix ?? 'video/ComfyUI');
        const slash = prefix.lastIndexOf('/');
        const subfolder = slash >= 0 ? prefix.slice(0, slash) : '';
        this.outputCounter += 1;
        const filename = `${prefix.slice(slash + 1)}_${String(this.outputCounter).padStart(5, '0')}_.mp4`;
        this.outputFiles.set(`output/${subfolder ? `${subfolder}/` : ''}${filename}`, file);
        const output = { images: [{ filename, subfolder, type: 'output' }], animated: [true] };
        outputs[nodeId] = output;
        meta[nodeId] = { node_id: nodeId, display_node: nodeId, parent_node: null, real_node_id: nodeId };
        if (client !== undefined) this.send('executed', { node: nodeId, display_node: nodeId, output, prompt_id: item.promptId }, client);
      }
      executed.push(nodeId);
    }
    add('execution_success', { prompt_id: item.promptId });
    finish('success', 'success');
  }
}

/** Dependencies first, only what the outputs need (ExecutionList's order, near enough). */
function executionOrder(prompt: Graph, outputs: string[]): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (id: string) => {
    if (seen.has(id) || !prompt[id]) return;
    seen.add(id);
    for (const value of Object.values(prompt[id]!.inputs ?? {})) if (Array.isArray(value) && typeof value[0] === 'string') visit(value[0]);
    order.push(id);
  };
  for (const out of outputs) visit(out);
  return order;
}

/** What SaveVideo would write: the latent's size and length, at CreateVideo's rate. */
function clipSpec(prompt: Graph): ClipSpec {
  const nodes = Object.values(prompt);
  const latent = nodes.find((n) => LATENT_TYPES.has(String(n.class_type)))?.inputs ?? {};
  const video = nodes.find((n) => n.class_type === 'CreateVideo')?.inputs ?? {};
  const even = (v: unknown, fallback: number) => Math.max(16, Math.round((Number(v) || fallback) / 2) * 2);
  return { width: even(latent.width, 640), height: even(latent.height, 360), frames: Math.max(1, Number(latent.length) || 24), fps: Number(video.fps) || 24 };
}

function readBody(req: http.IncomingMessage): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    req.on('data', (c: Buffer) => chunks.push(c));
    req.on('end', () => resolve(Buffer.concat(chunks)));
    req.on('error', reject);
  });
}

async function readJson(req: http.IncomingMessage): Promise<unknown> {
  const body = await readBody(req);
  return body.length ? (JSON.parse(body.toString('utf8')) as unknown) : {};
}
