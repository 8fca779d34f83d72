import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { methods, methodScopes, type MethodContext } from './methods.ts';
import { FakeWorkspace, SlackError, type FakeSlackOptions } from './model.ts';

/**
 * A local Slack Web API for the real Bolt App and WebClient: POST /api/<method> with a Bearer token and
 * a form, JSON or multipart body; the upload URLs files.getUploadURLExternal hands out; url_private file
 * hosting (bytes with the bot token, an HTML login page without it, as Slack does); response_url sinks.
 * GET /_fake/state dumps the workspace for local trials.
 */
export interface FakeSlackServer {
  ws: FakeWorkspace;
  /** http://127.0.0.1:PORT */
  url: string;
  /** What the app's SLACK_API_URL should be: http://127.0.0.1:PORT/api/ */
  apiUrl: string;
  close(): Promise<void>;
}

const LOGIN_PAGE = `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8"><title>Slack</title></head>
<body><h1>Sign in to dreamers</h1><form action="/signin" method="post"><input name="email"><button>Sign in</button></form></body></html>`;

async function readBody(req: IncomingMessage, limit = 300 * 1024 * 1024): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let total = 0;
  for await (const chunk of req) {
    total += (chunk as Buffer).length;
    if (total > limit) throw new SlackError('request_too_large');
    chunks.push(chunk as Buffer);
  }
  return Buffer.concat(chunks);
}

const JSON_FIELDS = ['blocks', 'attachments', 'view', 'files', 'metadata'];

/** Form, JSON or multipart into one args object; JSON-encoded fields (blocks, view, files) decoded. */
async function parseArgs(req: IncomingMessage, body: Buffer): Promise<{ args: Record<string, unknown>; json: boolean; files: Map<string, Buffer> }> {
  const type = (req.headers['content-type'] ?? '').toLowerCase();
  const files = new Map<string, Buffer>();
  let args: Record<string, unknown> = {};
  let json = false;
  if (type.startsWith('application/json')) {
    json = true;
    try {
      args = body.length ? (JSON.parse(body.toString('utf8')) as Record<string, unknown>) : {};
    } catch {
      throw new SlackError('invalid_json');
    }
  } else if (type.startsWith('multipart/form-data')) {
    const form = await new Request('http://fake.local/', { method: 'POST', headers: { 'content-type': req.headers['content-type']! }, body: new Uint8Array(body) }).formData();
    for (const [key, value] of form.entries()) {
      if (typeof value === 'string') args[key] = value;
      else files.set(key, Buffer.from(await value.arrayBuffer()));
    }
  } else if (type.startsWith('application/x-www-form-urlencoded') || body.length === 0) {
    for (const [k, v] of new URLSearchParams(body.toString('utf8'))) args[k] = v;
  } else {
    throw new SlackError('invalid_form_data');
  }
  for (const key of JSON_FIELDS) {
    const v = args[key];
    if (typeof v === 'string' && v.length) {
      try {
        args[key] = JSON.parse(v);
      } catch {
        throw new SlackError(key === 'blocks' ? 'invalid_blocks_format' : 'invalid_arguments');
      }
    }
  }
  return { args, json, files };
}

function send(res: ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}): void {
  const text = typeof body === 'string' ? body : JSON.stringify(body);
  res.writeHead(status, { 'content-type': typeof body === 'string' ? 'text/plain; charset=utf-8' : 'application/json; charset=utf-8', ...headers });
  res.end(text);
}

export async function startFakeSlack(options: FakeSlackOptions & { port?: number; host?: string } = {}): Promise<FakeSlackServer> {
  const ws = new FakeWorkspace(options);
  let baseUrl = '';

  async function api(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    const body = await readBody(req);
    let token: string | undefined;
    let args: Record<string, unknown> = {};
    const record = (ok: boolean, error?: string, result?: Record<string, unknown>) => ws.calls.push({ method, args, token, at: ws.now(), ok, ...(error ? { error } : {}), ...(result ? { result } : {}) });
    try {
      const parsed = await parseArgs(req, body);
      args = parsed.args;
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      // Slack takes a token in a form body, but a JSON body must use the Authorization header.
      token = bearer?.[1] ?? (!parsed.json && typeof args.token === 'string' ? args.token : undefined);
      const impl = methods[method];
      if (!impl) throw new SlackError('unknown_method');
      if (!token) throw new SlackError('not_authed');
      if (token !== ws.botToken) throw new SlackError('invalid_auth');
      const needed = methodScopes[method];
      if (needed && !ws.scopes.has(needed)) throw new SlackError('missing_scope', { needed, provided: [...ws.scopes].join(',') });
      const fault = ws.takeFault(method);
      if (fault) {
        record(false, fault.error);
        if (fault.status === 429) return send(res, 429, { ok: false, error: fault.error }, { 'retry-after': String(fault.retryAfter ?? 1) });
        return send(res, fault.status ?? 200, { ok: false, error: fault.error });
      }
      const ctx: MethodContext = { ws, baseUrl };
      const result = impl(ctx, args);
      record(true, undefined, result);
      send(res, 200, { ok: true, ...result }, { 'x-oauth-scopes': [...ws.scopes].join(',') });
    } catch (error) {
      if (!(error instanceof SlackError)) throw error;
      record(false, error.error);
      send(res, 200, { ok: false, error: error.error, ...error.extra });
    }
  }

  /** The upload URL: raw bytes or a multipart file part, no token needed (it is pre-signed). */
  async function upload(req: IncomingMessage, res: ServerResponse, fileId: string): Promise<void> {
    const f = ws.files.get(fileId);
    if (!f || f.completed) return send(res, 404, 'Not Found');
    const body = await readBody(req);
    const type = (req.headers['content-type'] ?? '').toLowerCase();
    let data = body;
    if (type.startsWith('multipart/form-data')) {
      const form = await new Request('http://fake.local/', { method: 'POST', headers: { 'content-type': req.headers['content-type']! }, body: new Uint8Array(body) }).formData();
      const part = [...form.values()].find((v) => typeof v !== 'string');
      if (!part || typeof part === 'string') return send(res, 400, 'no file part');
      data = Buffer.from(await part.arrayBuffer());
    }
    f.data = data;
    send(res, 200, `OK - ${data.length}`);
  }

  function download(req: IncomingMessage, res: ServerResponse, fileId: string): void {
    const f = ws.files.get(fileId);
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    // Without a valid token (or without files:read) Slack answers 200 with its login page (bolt-js #2585).
    if (!f || f.deleted || !f.data || bearer !== ws.botToken || !ws.scopes.has('files:read')) {
      res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' });
      return void res.end(LOGIN_PAGE);
    }
    res.writeHead(200, { 'content-type': f.mimetype, 'content-length': String(f.data.length) });
    res.end(f.data);
  }

  async function respond(req: IncomingMessage, res: ServerResponse, id: string): Promise<void> {
    const body = await readBody(req);
    let parsed: Record<string, unknown> = {};
    try {
      parsed = JSON.parse(body.toString('utf8') || '{}') as Record<string, unknown>;
    } catch {
      return send(res, 400, 'invalid_payload');
    }
    const outcome = ws.useResponseUrl(id, parsed);
    if (outcome === 'ok') return send(res, 200, 'ok');
    send(res, 404, outcome);
  }

  const server: Server = createServer((req, res) => {
    const url = new URL(req.url ?? '/', 'http://fake.local');
    const path = url.pathname;
    const handle = async () => {
      let m: RegExpExecArray | null;
      if (req.method === 'POST' && (m = /^\/api\/([\w.]+)$/.exec(path))) return api(req, res, m[1]!);
      if (req.method === 'GET' && (m = /^\/api\/([\w.]+)$/.exec(path))) return send(res, 200, { ok: false, error: 'invalid_request_method' });
      if (req.method === 'POST' && (m = /^\/upload\/v1\/(\w+)$/.exec(path))) return upload(req, res, m[1]!);
      if (req.method === 'GET' && (m = /^\/files-pri\/\w+-(\w+)\//.exec(path))) return download(req, res, m[1]!);
      if (req.method === 'POST' && (m = /^\/response\/(\w+)$/.exec(path))) return respond(req, res, m[1]!);
      if (req.method === 'GET' && path === '/_fake/state') return send(res, 200, snapshot(ws));
      send(res, 404, 'Not Found');
    };
    handle().catch((error: unknown) => {
      if (!res.headersSent) send(res, 500, { ok: false, error: 'fatal_error', detail: String(error) });
      else res.end();
    });
  });
  await new Promise<void>((resolve) => server.listen(options.port ?? 0, options.host ?? '127.0.0.1', resolve));
  const port = (server.address() as AddressInfo).port;
  baseUrl = `http://${options.host ?? '127.0.0.1'}:${port}`;
  return {
    ws,
    url: baseUrl,
    apiUrl: `${baseUrl}/api/`,
    close: () => new Promise<void>((resolve) => {
      server.close(() => resolve());
      server.closeAllConnections();
    }),
  };
}

/** Channels with their threads, for a person looking at a local trial. */
function snapshot(ws: FakeWorkspace): Record<string, unknown> {
  const channels = [...ws.channels.values()].map((c) => ({
    id: c.id, name: c.name,
    messages: ws.history(c.id).map((m) => ({
      ts: m.ts, user: m.user, text: FakeWorkspace.textOf(m), files: m.files,
      replies: ws.thread(c.id, m.ts).map((r) => ({ ts: r.ts, user: r.user, text: FakeWorkspace.textOf(r), files: r.files })),
    })),
  }));
  return { team: ws.teamId, channels, ephemerals: ws.ephemerals, homes: Object.fromEntries([...ws.homes].map(([u, v]) => [u, v.view])) };
}
