import { randomBytes } from 'node:crypto';
import type { IncomingMessage, Server } from 'node:http';
import type { Duplex } from 'node:stream';
import { WebSocket, WebSocketServer } from 'ws';
import { SlackError } from './model.ts';

/**
 * Slack's Socket Mode side (platform-slack.md; slackapi/node-slack-sdk packages/socket-mode): the app calls
 * `apps.connections.open` with its app-level token (`xapp-…`), gets a one-use `ws://…/link/?ticket=…` URL,
 * connects, and is greeted with `{type:'hello'}`. From then on envelopes `{envelope_id, type, payload,
 * accepts_response_payload, retry_attempt?, retry_reason?}` go down the socket and the app answers each
 * with `{envelope_id, payload?}`. `{type:'disconnect'}` asks the app to reconnect (a new URL, a new socket).
 */
export type EnvelopeType = 'slash_commands' | 'events_api' | 'interactive';

export interface Envelope {
  envelope_id: string;
  type: EnvelopeType;
  payload: Record<string, unknown>;
  accepts_response_payload: boolean;
  retry_attempt?: number;
  retry_reason?: string;
}

export interface SocketAck {
  envelopeId: string;
  /** What the app sent back with the ack (Bolt always sends an object, `{}` when empty). */
  payload?: unknown;
  /** ms between sending the envelope and receiving its ack (NaN for an ack of an unknown envelope). */
  ms: number;
  at: number;
}

export interface PushOptions {
  /** Reuse an envelope id (a redelivery); a new one by default. */
  envelopeId?: string;
  retryAttempt?: number;
  retryReason?: string;
  /** How long to wait for the ack before giving up (resolves with `null`). Default 5000. */
  ackTimeoutMs?: number;
}

/** An id shaped like Slack's (`1d2c3b4a-…`). */
export function newEnvelopeId(): string {
  return `${randomBytes(4).toString('hex')}-${randomBytes(2).toString('hex')}-${randomBytes(2).toString('hex')}-${randomBytes(6).toString('hex')}`;
}

export class FakeSocketMode {
  /** The app-level token the app must open connections with. */
  readonly appToken = `xapp-1-A0DREAMBOT-${Date.now()}-${randomBytes(16).toString('hex')}`;
  /** Every ack received, in order. */
  readonly acks: SocketAck[] = [];
  /** Every envelope sent, in order. */
  readonly sent: Envelope[] = [];
  /** Tickets handed out by apps.connections.open; each works once. */
  private readonly tickets = new Set<string>();
  /** Sockets that got their hello (open ones). */
  readonly sockets = new Set<WebSocket>();
  /** How many sockets have been greeted so far (reconnects count). */
  connections = 0;
  private readonly wss = new WebSocketServer({ noServer: true });
  private readonly waiting = new Map<string, { sentAt: number; resolve: (ack: SocketAck) => void }>();
  private baseUrl = '';

  constructor(private readonly appId: string, private readonly isOtherToken: (token: string) => boolean) {}

  /** Serves the `/link/` upgrades on the fake's HTTP server. */
  attach(server: Server, baseUrl: string): void {
    this.baseUrl = baseUrl;
    server.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => {
      const url = new URL(req.url ?? '/', 'http://fake.local');
      const ticket = url.searchParams.get('ticket') ?? '';
      if (url.pathname !== '/link/' || !this.tickets.delete(ticket)) {
        socket.end('HTTP/1.1 401 Unauthorized\r\nConnection: close\r\n\r\n');
        return;
      }
      this.wss.handleUpgrade(req, socket, head, (ws) => this.greet(ws));
    });
  }

  /** apps.connections.open: only the app-level token opens a connection. */
  open(token: string | undefined): { url: string } {
    if (!token) throw new SlackError('not_authed');
    if (!token.startsWith('xapp-')) throw new SlackError(this.isOtherToken(token) ? 'not_allowed_token_type' : 'invalid_auth');
    if (token !== this.appToken) throw new SlackError('invalid_auth');
    const ticket = randomBytes(16).toString('hex');
    this.tickets.add(ticket);
    return { url: `${this.baseUrl.replace(/^http/, 'ws')}/link/?ticket=${ticket}&app_id=${this.appId}` };
  }

  private greet(ws: WebSocket): void {
    this.sockets.add(ws);
    this.connections += 1;
    ws.on('close', () => this.sockets.delete(ws));
    ws.on('message', (data, isBinary) => {
      if (isBinary) return;
      let msg: { envelope_id?: unknown; payload?: unknown };
      try {
        msg = JSON.parse(String(data)) as typeof msg;
      } catch {
        return;
      }
      if (typeof msg.envelope_id !== 'string') return;
      const pending = this.waiting.get(msg.envelope_id);
      const ack: SocketAck = {
        envelopeId: msg.envelope_id, at: Date.now(), ms: pending ? performance.now() - pending.sentAt : Number.NaN,
        ...('payload' in msg ? { payload: msg.payload } : {}),
      };
      this.acks.push(ack);
      if (pending) {
        this.waiting.delete(msg.envelope_id);
        pending.resolve(ack);
      }
    });
    ws.send(JSON.stringify({
      type: 'hello', num_connections: this.sockets.size,
      debug_info: { host: 'applink-fake', build_number: 1, approximate_connection_time: 18060 },
      connection_info: { app_id: this.appId },
    }));
  }

  /** Waits until at least `count` sockets have been greeted in all (reconnects included). */
  async connected(count = 1, timeoutMs = 10_000): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    while (this.connections < count || this.sockets.size === 0) {
      if (Date.now() > deadline) throw new Error(`no Socket Mode connection #${count} within ${timeoutMs} ms`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Sends an envelope down the newest open socket; resolves with its ack, or null when none came in time. */
  push(type: EnvelopeType, payload: Record<string, unknown>, options: PushOptions = {}): Promise<SocketAck | null> {
    const socket = [...this.sockets].filter((s) => s.readyState === WebSocket.OPEN).at(-1);
    if (!socket) throw new Error('no open Socket Mode connection');
    const envelope: Envelope = {
      envelope_id: options.envelopeId ?? newEnvelopeId(),
      type, payload, accepts_response_payload: type !== 'events_api',
      ...(type === 'events_api' ? { retry_attempt: options.retryAttempt ?? 0, retry_reason: options.retryReason ?? '' } : {}),
    };
    this.sent.push(envelope);
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        this.waiting.delete(envelope.envelope_id);
        resolve(null);
      }, options.ackTimeoutMs ?? 5000);
      this.waiting.set(envelope.envelope_id, {
        sentAt: performance.now(),
        resolve: (ack) => {
          clearTimeout(timer);
          resolve(ack);
        },
      });
      socket.send(JSON.stringify(envelope));
    });
  }

  /** Slack asks the app to reconnect (e.g. `refresh_requested`, `warning`, `link_disabled`). */
  disconnect(reason = 'refresh_requested'): void {
    for (const s of this.sockets) s.send(JSON.stringify({ type: 'disconnect', reason, debug_info: { host: 'applink-fake' } }));
  }

  close(): void {
    for (const s of this.sockets) s.terminate();
    this.wss.close();
  }
}
