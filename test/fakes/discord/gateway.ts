import type { IncomingMessage } from 'node:http';
import type { Duplex } from 'node:stream';
import { randomBytes } from 'node:crypto';
import { WebSocket, WebSocketServer } from 'ws';
import type { FakeState, Json } from './state.ts';

/**
 * The JSON gateway (events/gateway.mdx; @discordjs/ws WebSocketShard.ts is the client it must satisfy):
 * HELLO on connect, IDENTIFY → READY (with `application`) + GUILD_CREATE per guild, heartbeats answered
 * with HEARTBEAT_ACK, RESUME → missed events replayed → RESUMED, intent-filtered dispatches with a
 * per-session sequence. Frames are plain JSON text: no zlib-stream (zlib-sync is not installed).
 */
export const Op = { Dispatch: 0, Heartbeat: 1, Identify: 2, PresenceUpdate: 3, VoiceStateUpdate: 4, Resume: 6, Reconnect: 7, RequestGuildMembers: 8, InvalidSession: 9, Hello: 10, HeartbeatAck: 11 } as const;
export const Intent = { Guilds: 1 << 0, GuildMessageReactions: 1 << 10, DirectMessageReactions: 1 << 13 } as const;

interface Buffered { s: number; t: string; d: Json }

export interface GatewaySession {
  id: string;
  intents: number;
  seq: number;
  /** Everything dispatched in this session, for replay on RESUME. */
  buffer: Buffered[];
  ws: WebSocket | null;
  identifiedAt: number;
}

export interface GatewayCounters {
  connections: number;
  identifies: number;
  resumes: number;
  resumed: number;
  invalidSessions: number;
  heartbeats: number;
  heartbeatAcks: number;
  dispatches: number;
  replayed: number;
  serverCloses: number;
  clientCloses: number;
}

export interface GatewayOptions {
  token: string;
  heartbeatIntervalMs: number;
  url: () => string;
  onEvent: (event: string, detail: Json) => void;
}

const BUFFER_LIMIT = 5000;

export class FakeGateway {
  readonly sessions = new Map<string, GatewaySession>();
  readonly counters: GatewayCounters = {
    connections: 0, identifies: 0, resumes: 0, resumed: 0, invalidSessions: 0, heartbeats: 0, heartbeatAcks: 0, dispatches: 0,
    replayed: 0, serverCloses: 0, clientCloses: 0,
  };
  /** Tests of zombie detection turn this off: heartbeats then go unanswered. */
  ackHeartbeats = true;
  private readonly wss = new WebSocketServer({ noServer: true, maxPayload: 4096 * 4 });
  private readonly sockets = new Set<WebSocket>();

  constructor(private readonly state: FakeState, private readonly opts: GatewayOptions) {}

  handleUpgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    this.wss.handleUpgrade(req, socket, head, (ws) => this.onConnection(ws, req));
  }

  /** Sends an event to every live or resumable session whose intents cover it. */
  dispatch(t: string, d: Json, intent?: number): number {
    let sent = 0;
    for (const session of this.sessions.values()) {
      if (intent !== undefined && (session.intents & intent) === 0) continue;
      session.seq += 1;
      const event = { s: session.seq, t, d };
      session.buffer.push(event);
      if (session.buffer.length > BUFFER_LIMIT) session.buffer.shift();
      this.counters.dispatches += 1;
      sent += 1;
      if (session.ws?.readyState === WebSocket.OPEN) session.ws.send(JSON.stringify({ op: Op.Dispatch, ...event }));
    }
    return sent;
  }

  /** Drops every connection with `code`; sessions stay resumable unless the code is 1000 (a fresh IDENTIFY follows). */
  disconnect(code = 4000, reason = 'Unknown error'): void {
    for (const session of this.sessions.values()) {
      const ws = session.ws;
      if (!ws) continue;
      session.ws = null;
      this.counters.serverCloses += 1;
      ws.close(code, reason);
    }
    if (code === 1000) this.sessions.clear();
  }

  /** op 7: asks each client to reconnect and resume. */
  requestReconnect(): void {
    for (const session of this.sessions.values()) session.ws?.send(JSON.stringify({ op: Op.Reconnect, d: null }));
  }

  /** op 1 from the server: asks for an immediate heartbeat. */
  requestHeartbeat(): void {
    for (const session of this.sessions.values()) session.ws?.send(JSON.stringify({ op: Op.Heartbeat, d: null }));
  }

  liveSessions(): number {
    return [...this.sessions.values()].filter((s) => s.ws?.readyState === WebSocket.OPEN).length;
  }

  async close(): Promise<void> {
    for (const ws of this.sockets) ws.terminate();
    this.sessions.clear();
    await new Promise<void>((resolve) => this.wss.close(() => resolve()));
  }

  private onConnection(ws: WebSocket, req: IncomingMessage): void {
    this.sockets.add(ws);
    this.counters.connections += 1;
    const url = new URL(req.url ?? '/', 'ws://fake');
    if (url.searchParams.get('v') !== '10') return void ws.close(4012, 'Invalid API version');
    if ((url.searchParams.get('encoding') ?? 'json') !== 'json') return void ws.close(4002, 'Decode error');
    if (url.searchParams.has('compress')) return void ws.close(4002, 'Decode error');
    let session: GatewaySession | null = null;
    ws.send(JSON.stringify({ op: Op.Hello, d: { heartbeat_interval: this.opts.heartbeatIntervalMs, _trace: ['["fake-gateway",{}]'] } }));
    this.opts.onEvent('connection', { path: url.pathname });

    ws.on('message', (raw, isBinary) => {
      if (isBinary) return void ws.close(4002, 'Decode error');
      let payload: { op?: number; d?: unknown };
      try {
        payload = JSON.parse(raw.toString()) as { op?: number; d?: unknown };
      } catch {
        return void ws.close(4002, 'Decode error');
      }
      switch (payload.op) {
        case Op.Heartbeat:
          this.counters.heartbeats += 1;
          this.opts.onEvent('heartbeat', { seq: payload.d as Json });
          if (this.ackHeartbeats) {
            this.counters.heartbeatAcks += 1;
            ws.send(JSON.stringify({ op: Op.HeartbeatAck }));
          }
          return;
        case Op.Identify: {
          if (session) return void ws.close(4005, 'Already authenticated');
          const d = (payload.d ?? {}) as Json;
          if (d.token !== this.opts.token && d.token !== `Bot ${this.opts.token}`) return void ws.close(4004, 'Authentication failed');
          if (typeof d.intents !== 'number') return void ws.close(4013, 'Invalid intent(s)');
          if (!d.properties || typeof d.properties !== 'object') return void ws.close(4002, 'Decode error');
          session = this.identify(ws, d.intents);
          return;
        }
        case Op.Resume: {
          if (session) return void ws.close(4005, 'Already authenticated');
          const d = (payload.d ?? {}) as Json;
          this.counters.resumes += 1;
          const found = this.sessions.get(String(d.session_id));
          if (d.token !== this.opts.token || !found) {
            this.counters.invalidSessions += 1;
            ws.send(JSON.stringify({ op: Op.InvalidSession, d: false }));
            return;
          }
          session = this.resume(ws, found, Number(d.seq ?? 0));
          return;
        }
        case Op.PresenceUpdate:
        case Op.VoiceStateUpdate:
        case Op.RequestGuildMembers:
          if (!session) return void ws.close(4003, 'Not authenticated');
          return;
        default:
          return void ws.close(4001, 'Unknown opcode');
      }
    });

    ws.on('close', (code) => {
      this.sockets.delete(ws);
      if (!session || session.ws !== ws) return;
      session.ws = null;
      this.counters.clientCloses += 1;
      // A client that closes with 1000 or 1001 ends its session; any other code keeps it resumable.
      if (code === 1000 || code === 1001) this.sessions.delete(session.id);
      this.opts.onEvent('close', { code, session: session.id });
    });
    ws.on('error', () => undefined);
  }

  private identify(ws: WebSocket, intents: number): GatewaySession {
    this.counters.identifies += 1;
    const session: GatewaySession = { id: randomBytes(16).toString('hex'), intents, seq: 0, buffer: [], ws, identifiedAt: Date.now() };
    this.sessions.set(session.id, session);
    const guilds = [...this.state.guilds.values()].filter((g) => g.members.has(this.state.bot.id));
    const ready: Json = {
      v: 10, user: { ...this.state.bot, verified: true, mfa_enabled: false, flags: 0, email: null }, user_settings: {},
      guilds: guilds.map((g) => ({ id: g.id, unavailable: true })), relationships: [], private_channels: [], presences: [],
      guild_join_requests: [], geo_ordered_rtc_regions: ['local'], session_type: 'normal', session_id: session.id,
      resume_gateway_url: this.opts.url().replace(/\/gateway$/, '/resume'), shard: [0, 1],
      application: { id: this.state.applicationId, flags: 0 }, auth: {},
    };
    this.sendTo(session, 'READY', ready);
    for (const guild of guilds) this.sendTo(session, 'GUILD_CREATE', this.state.guildCreatePayload(guild.id));
    this.opts.onEvent('identify', { session: session.id, intents });
    return session;
  }

  private resume(ws: WebSocket, session: GatewaySession, seq: number): GatewaySession {
    const previous = session.ws;
    session.ws = ws;
    if (previous && previous !== ws) previous.close(4000, 'Session resumed elsewhere');
    const missed = session.buffer.filter((e) => e.s > seq);
    for (const event of missed) ws.send(JSON.stringify({ op: Op.Dispatch, ...event }));
    this.counters.replayed += missed.length;
    this.counters.resumed += 1;
    this.sendTo(session, 'RESUMED', {});
    this.opts.onEvent('resumed', { session: session.id, replayed: missed.length });
    return session;
  }

  private sendTo(session: GatewaySession, t: string, d: Json): void {
    session.seq += 1;
    const event = { s: session.seq, t, d };
    session.buffer.push(event);
    session.ws?.send(JSON.stringify({ op: Op.Dispatch, ...event }));
  }
}
