import { randomBytes } from 'node:crypto';
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { methods, methodScopes, type MethodContext } from './methods.ts';
import { FakeWorkspace, SlackError, type FakeSlackOptions } from './model.ts';
import { FakeOAuth } from './oauth.ts';
import { FakeSocketMode } from './socket-mode.ts';

/**
 * A local Slack Web API for the real Bolt App and WebClient: POST /api/<method> with a Bearer token and
 * a form, JSON or multipart body; the upload URLs files.getUploadURLExternal hands out; url_private file
 * hosting (bytes with the bot token, an HTML login page without it, as Slack does); response_url sinks.
 * GET /_fake/state dumps the workspace for local trials.
 *
 * One app, one or more workspaces: each call goes to the workspace its bot token belongs to (an org-wide
 * token to the workspace the call names with team_id or a channel), so a workspace only ever sees calls
 * made with its own installation's token. `oauth.v2.access` (no token) installs the app (see oauth.ts).
 */
export interface FakeSlackServer {
  /** The first workspace: the only one in single-workspace tests. */
  ws: FakeWorkspace;
  /** Every workspace, by team id. */
  workspaces: Map<string, FakeWorkspace>;
  /** Another workspace of the same app (same app id and signing secret), not installed unless told. */
  addWorkspace(options: FakeSlackOptions & { teamId: string }): FakeWorkspace;
  /** Slack's OAuth side: client credentials, the authorize page (`approve`), codes, issued and revoked tokens. */
  oauth: FakeOAuth;
  /** Socket Mode: the app-level token, apps.connections.open, the /link/ WebSocket, envelopes and acks. */
  socket: FakeSocketMode;
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

export interface FakeSlackServerOptions extends FakeSlackOptions {
  port?: number;
  host?: string;
  /** The app's OAuth client credentials (SLACK_CLIENT_ID / SLACK_CLIENT_SECRET point at these). */
  clientId?: string;
  clientSecret?: string;
}

export async function startFakeSlack(options: FakeSlackServerOptions = {}): Promise<FakeSlackServer> {
  const ws = new FakeWorkspace(options);
  const workspaces = new Map<string, FakeWorkspace>([[ws.teamId, ws]]);
  const oauth = new FakeOAuth(
    options.clientId ?? `${Date.now() % 1e12}.${randomBytes(6).readUIntBE(0, 6)}`,
    options.clientSecret ?? randomBytes(16).toString('hex'),
    () => [...workspaces.values()], ws.now,
  );
  let baseUrl = '';
  const socket = new FakeSocketMode(ws.appId, (token) => [...workspaces.values()].some((w) => w.tokens.has(token)) || oauth.revoked.has(token));

  function addWorkspace(more: FakeSlackOptions & { teamId: string }): FakeWorkspace {
    if (workspaces.has(more.teamId)) throw new Error(`workspace ${more.teamId} exists`);
    const added = new FakeWorkspace({
      appId: ws.appId, signingSecret: ws.signingSecret, shareDelayMs: ws.shareDelayMs, now: ws.now,
      botUserId: `U0BOT${more.teamId.slice(1, 6)}`, botId: `B0BOT${more.teamId.slice(1, 6)}`, idTag: String(workspaces.size), installed: false, ...more,
    });
    workspaces.set(added.teamId, added);
    return added;
  }

  /** The workspace a token answers for; an org-wide token serves each workspace of its org, so the call's team_id or channel picks one. */
  function route(token: string, args: Record<string, unknown>): FakeWorkspace | undefined {
    const holders = [...workspaces.values()].filter((w) => w.tokens.has(token));
    if (holders.length <= 1) return holders[0];
    const channel = [args.channel, args.channel_id].find((v): v is string => typeof v === 'string');
    return holders.find((w) => w.teamId === args.team_id) ?? holders.find((w) => channel !== undefined && w.channels.has(channel)) ?? holders[0];
  }

  function basicAuth(req: IncomingMessage): { id: string; secret: string } | null {
    const m = /^Basic\s+(\S+)$/i.exec(req.headers.authorization ?? '');
    if (!m) return null;
    const [id, ...rest] = Buffer.from(m[1]!, 'base64').toString('utf8').split(':');
    return { id: id ?? '', secret: rest.join(':') };
  }

  async function api(req: IncomingMessage, res: ServerResponse, method: string): Promise<void> {
    const body = await readBody(req);
    let token: string | undefined;
    let args: Record<string, unknown> = {};
    let target: FakeWorkspace = ws;
    const record = (ok: boolean, error?: string, result?: Record<string, unknown>) => target.calls.push({ method, args, token, at: target.now(), ok, ...(error ? { error } : {}), ...(result ? { result } : {}) });
    try {
      const parsed = await parseArgs(req, body);
      args = parsed.args;
      if (method === 'oauth.v2.access') {
        // No token: the client credentials and the code are the authentication.
        const result = oauth.exchange(args, basicAuth(req));
        target = workspaces.get((result.team as { id?: string } | null)?.id ?? '') ?? [...workspaces.values()].find((w) => w.tokens.has(String(result.access_token))) ?? ws;
        record(true, undefined, { ...result, access_token: '[issued]' });
        return send(res, 200, { ok: true, ...result });
      }
      const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '');
      // Slack takes a token in a form body, but a JSON body must use the Authorization header.
      token = bearer?.[1] ?? (!parsed.json && typeof args.token === 'string' ? args.token : undefined);
      if (method === 'apps.connections.open') {
        // The app-level token (xapp-…) only; a bot token is the wrong kind (platform-slack.md, Socket Mode).
        const result = socket.open(token);
        record(true, undefined, result);
        return send(res, 200, { ok: true, ...result });
      }
      const impl = methods[method];
      if (!impl) throw new SlackError('unknown_method');
      if (!token) throw new SlackError('not_authed');
      const holder = route(token, args);
      if (!holder) throw new SlackError(oauth.revoked.has(token) ? 'token_revoked' : 'invalid_auth');
      target = holder;
      const needed = methodScopes[method];
      if (needed && !holder.scopes.has(needed)) throw new SlackError('missing_scope', { needed, provided: [...holder.scopes].join(',') });
      const fault = holder.takeFault(method);
      if (fault) {
        record(false, fault.error);
        if (fault.status === 429) return send(res, 429, { ok: false, error: fault.error }, { 'retry-after': String(fault.retryAfter ?? 1) });
        return send(res, fault.status ?? 200, { ok: false, error: fault.error });
      }
      const ctx: MethodContext = { ws: holder, baseUrl };
      const result = impl(ctx, args);
      record(true, undefined, result);
      send(res, 200, { ok: true, ...result }, { 'x-oauth-scopes': [...holder.scopes].join(',') });
    } catch (error) {
      if (!(error instanceof SlackError)) throw error;
      record(false, error.error);
      send(res, 200, { ok: false, error: error.error, ...error.extra });
    }
  }

  const fileOwner = (fileId: string) => [...workspaces.values()].find((w) => w.files.has(fileId));

  /** The upload URL: raw bytes or a multipart file part, no token needed (it is pre-signed). */
  async function upload(req: IncomingMessage, res: ServerResponse, fileId: string): Promise<void> {
    const f = fileOwner(fileId)?.files.get(fileId);
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

  function download(req: IncomingMessage, res: ServerResponse, teamId: string, fileId: string): void {
    const owner = workspaces.get(teamId);
    const f = owner?.files.get(fileId);
    const bearer = /^Bearer\s+(\S+)$/i.exec(req.headers.authorization ?? '')?.[1];
    // Without a valid token (or without files:read) Slack answers 200 with its login page (bolt-js #2585).
    if (!owner || !f || f.deleted || !f.data || !bearer || !owner.tokens.has(bearer) || !owner.scopes.has('files:read')) {
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
    const owner = [...workspaces.values()].find((w) => w.hasResponseUrl(id)) ?? ws;
    const outcome = owner.useResponseUrl(id, parsed);
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
      if (req.method === 'GET' && (m = /^\/files-pri\/(\w+)-(\w+)\//.exec(path))) return download(req, res, m[1]!, m[2]!);
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
  socket.attach(server, baseUrl);
  return {
    ws, workspaces, addWorkspace, oauth, socket,
    url: baseUrl,
    apiUrl: `${baseUrl}/api/`,
    close: () => new Promise<void>((resolve) => {
      socket.close();
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
