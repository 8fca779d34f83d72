import type { IncomingMessage, ServerResponse } from 'node:http';
import { createHash } from 'node:crypto';
import { parseMultipart, type MultipartFile } from './multipart.ts';
import { snowflake } from './snowflake.ts';
import {
  ChannelType, MAX_REQUEST_BYTES, MessageFlag, type FakeCommand, type FakeInteraction, type FakeMessage, type FakeState, type Json,
} from './state.ts';
import { checkAutocomplete, checkCommand, checkMessage, checkModal } from './validate.ts';
import { Intent } from './gateway.ts';

/**
 * Discord's REST API v10 as far as dreambot and discord.js use it (platform-discord.md §6): bot-token
 * routes, token-authenticated interaction callbacks and webhooks, multipart uploads, Discord's error
 * bodies and codes, and 429s with Discord's headers when a test asks for them.
 */
export interface RestLogEntry {
  at: number;
  method: string;
  path: string;
  /** The route with ids replaced, e.g. "PATCH /webhooks/:app/:token/messages/@original". */
  route: string;
  status: number;
  auth: 'bot' | 'none' | 'invalid';
  interactionId?: string;
  body?: Json;
  files?: { field: string; filename: string; size: number; contentType: string }[];
}

export interface RateLimitRule {
  method?: string;
  /** A route template ("POST /channels/:channel/messages") or a pattern tested against "METHOD /path". */
  route: string | RegExp;
  /** How many matching requests get a 429 before the rule is spent. */
  times: number;
  retryAfter: number;
  global: boolean;
  scope: 'user' | 'global' | 'shared';
}

export interface RestHooks {
  dispatch(t: string, d: Json, intent?: number): void;
  emit(event: string, detail: unknown): void;
  callbackDeadlineMs: () => number;
  tokenLifetimeMs: () => number;
}

interface Ctx {
  method: string;
  params: Record<string, string>;
  query: URLSearchParams;
  body: Json;
  rawJson: unknown;
  files: MultipartFile[];
  auth: RestLogEntry['auth'];
  entry: RestLogEntry;
}

interface Reply {
  status: number;
  body?: unknown;
  headers?: Record<string, string>;
}

type Handler = (ctx: Ctx) => Reply | Promise<Reply>;

const json = (status: number, body?: unknown): Reply => ({ status, body });
const error = (status: number, code: number, message: string): Reply => json(status, { message, code });
const unknownChannel = () => error(404, 10003, 'Unknown Channel');
const unknownMessage = () => error(404, 10008, 'Unknown Message');
const AUTO_ARCHIVE = new Set([60, 1440, 4320, 10080]);
/** "It will be checked for uniqueness in the past few minutes" (resources/message.mdx, enforce_nonce). */
const NONCE_WINDOW_MS = 5 * 60_000;

export class FakeRest {
  readonly log: RestLogEntry[] = [];
  readonly rules: RateLimitRule[] = [];
  private readonly routes: { method: string; pattern: RegExp; template: string; auth: boolean; handler: Handler }[] = [];

  constructor(private readonly state: FakeState, private readonly hooks: RestHooks, private readonly gatewayUrl: () => string) {
    this.define();
  }

  private route(method: string, template: string, auth: boolean, handler: Handler): void {
    const source = template.replace(/[.*+?^${}()|[\]\\]/g, '\\$&').replace(/:(\w+)/g, (_, name: string) => `(?<${name}>[^/]+)`);
    this.routes.push({ method, pattern: new RegExp(`^${source}$`), template, auth, handler });
  }

  async handle(req: IncomingMessage, res: ServerResponse, path: string, query: URLSearchParams): Promise<void> {
    const method = req.method ?? 'GET';
    const entry: RestLogEntry = { at: Date.now(), method, path, route: `${method} ${path}`, status: 0, auth: 'none' };
    const reply = await this.dispatch(req, method, path, query, entry).catch((err: unknown) => {
      this.hooks.emit('error', err);
      return error(500, 0, `fake discord: ${(err as Error).message}`);
    });
    entry.status = reply.status;
    this.log.push(entry);
    this.hooks.emit('request', entry);
    const headers: Record<string, string> = { ...(reply.headers ?? {}) };
    if (reply.body === undefined || reply.status === 204) {
      res.writeHead(reply.status, headers).end();
      return;
    }
    const text = JSON.stringify(reply.body);
    res.writeHead(reply.status, { ...headers, 'Content-Type': 'application/json', 'Content-Length': String(Buffer.byteLength(text)) }).end(text);
  }

  private async dispatch(req: IncomingMessage, method: string, path: string, query: URLSearchParams, entry: RestLogEntry): Promise<Reply> {
    const route = this.routes.find((r) => r.method === method && r.pattern.test(path));
    if (!route) return error(404, 0, '404: Not Found');
    entry.route = `${method} ${route.template}`;
    const groups = (route.pattern.exec(path)?.groups ?? {}) as Record<string, string>;
    const params = Object.fromEntries(Object.entries(groups).map(([k, v]) => [k, decodeURIComponent(v)]));
    const header = req.headers.authorization;
    entry.auth = header === undefined ? 'none' : header === `Bot ${this.state.opts.token}` ? 'bot' : 'invalid';
    if (route.auth && entry.auth !== 'bot') return error(401, 0, '401: Unauthorized');

    const limited = this.rateLimited(method, route.template, path);
    if (limited) return limited;

    const raw = await readBody(req);
    if (raw === null) return error(413, 40005, 'Request entity too large');
    let body: Json = {};
    let rawJson: unknown;
    let files: MultipartFile[] = [];
    const type = req.headers['content-type'] ?? '';
    try {
      if (type.startsWith('multipart/form-data')) {
        const parts = parseMultipart(raw, type);
        files = parts.files;
        const payload = parts.fields.get('payload_json');
        rawJson = payload ? JSON.parse(payload) : {};
      } else if (raw.length > 0) {
        rawJson = JSON.parse(raw.toString('utf8'));
      }
    } catch {
      return error(400, 50109, 'The request body contains invalid JSON.');
    }
    if (rawJson && typeof rawJson === 'object' && !Array.isArray(rawJson)) body = rawJson as Json;
    entry.body = body;
    if (files.length) entry.files = files.map((f) => ({ field: f.field, filename: f.filename, size: f.data.length, contentType: f.contentType }));
    return route.handler({ method, params, query, body, rawJson, files, auth: entry.auth, entry });
  }

  private rateLimited(method: string, template: string, path: string): Reply | null {
    const rule = this.rules.find((r) => r.times > 0 && (!r.method || r.method === method)
      && (typeof r.route === 'string' ? r.route === `${method} ${template}` || r.route === template : r.route.test(`${method} ${path}`)));
    if (!rule) return null;
    rule.times -= 1;
    const bucket = createHash('sha1').update(template).digest('hex').slice(0, 16);
    const headers: Record<string, string> = {
      'Retry-After': String(Math.ceil(rule.retryAfter)),
      'X-RateLimit-Limit': '5',
      'X-RateLimit-Remaining': '0',
      'X-RateLimit-Reset': ((Date.now() + rule.retryAfter * 1000) / 1000).toFixed(3),
      'X-RateLimit-Reset-After': rule.retryAfter.toFixed(3),
      'X-RateLimit-Bucket': bucket,
      'X-RateLimit-Scope': rule.scope,
    };
    if (rule.global) headers['X-RateLimit-Global'] = 'true';
    return { status: 429, headers, body: { message: 'You are being rate limited.', retry_after: rule.retryAfter, global: rule.global, ...(rule.global ? { code: 0 } : {}) } };
  }

  // -----------------------------------------------------------------------------------------------
  // Routes

  private define(): void {
    const s = this.state;
    this.route('GET', '/gateway', false, () => json(200, { url: this.gatewayUrl() }));
    this.route('GET', '/gateway/bot', true, () => json(200, {
      url: this.gatewayUrl(), shards: 1, session_start_limit: { total: 1000, remaining: 999, reset_after: 0, max_concurrency: 1 },
    }));
    this.route('GET', '/users/@me', true, () => json(200, s.bot));
    const application = () => json(200, {
      id: s.applicationId, name: s.bot.username, icon: null, description: '', bot_public: true, bot_require_code_grant: false,
      verify_key: '0'.repeat(64), flags: 0, bot: s.bot,
    });
    this.route('GET', '/applications/@me', true, application);
    this.route('GET', '/oauth2/applications/@me', true, application);

    // Interaction callbacks and webhooks: no Authorization, the token is the credential.
    this.route('POST', '/interactions/:id/:token/callback', false, (ctx) => this.callback(ctx));
    this.route('GET', '/webhooks/:app/:token/messages/:message', false, (ctx) => this.webhookMessage(ctx, 'get'));
    this.route('PATCH', '/webhooks/:app/:token/messages/:message', false, (ctx) => this.webhookMessage(ctx, 'edit'));
    this.route('DELETE', '/webhooks/:app/:token/messages/:message', false, (ctx) => this.webhookMessage(ctx, 'delete'));
    this.route('POST', '/webhooks/:app/:token', false, (ctx) => this.followUp(ctx));

    this.route('GET', '/channels/:channel', true, ({ params }) => {
      const channel = s.channels.get(params.channel!);
      return channel ? json(200, channel) : unknownChannel();
    });
    this.route('POST', '/channels/:channel/messages', true, (ctx) => this.createChannelMessage(ctx));
    this.route('GET', '/channels/:channel/messages/:message', true, ({ params }) => {
      const message = this.channelMessage(params.channel!, params.message!);
      return message ? json(200, s.messageJson(message)) : unknownMessage();
    });
    this.route('PATCH', '/channels/:channel/messages/:message', true, (ctx) => {
      const message = this.channelMessage(ctx.params.channel!, ctx.params.message!);
      if (!message) return unknownMessage();
      if (message.authorId !== s.bot.id) return error(403, 50005, 'Cannot edit a message authored by another user');
      return this.edit(message, ctx, 'bot');
    });
    this.route('DELETE', '/channels/:channel/messages/:message', true, ({ params }) => {
      const message = this.channelMessage(params.channel!, params.message!);
      if (!message) return unknownMessage();
      this.remove(message);
      return json(204);
    });
    this.route('POST', '/channels/:channel/messages/:message/threads', true, (ctx) => this.startThread(ctx));
    this.route('PUT', '/channels/:channel/messages/:message/reactions/:emoji/@me', true, ({ params }) => {
      const message = this.channelMessage(params.channel!, params.message!);
      if (!message) return unknownMessage();
      const emoji = params.emoji!;
      this.react(message, s.bot.id, emoji);
      return json(204);
    });
    this.route('DELETE', '/channels/:channel/messages/:message/reactions/:emoji/@me', true, ({ params }) => {
      const message = this.channelMessage(params.channel!, params.message!);
      if (!message) return unknownMessage();
      message.reactions.get(params.emoji!)?.delete(s.bot.id);
      return json(204);
    });

    for (const scope of ['', '/guilds/:guild']) {
      const base = `/applications/:app${scope}/commands`;
      this.route('GET', base, true, (ctx) => this.withCommands(ctx, (list) => json(200, list)));
      this.route('POST', base, true, (ctx) => this.withCommands(ctx, (list, key) => this.upsertCommand(list, key, ctx.body, ctx.params.guild)));
      this.route('PUT', base, true, (ctx) => this.withCommands(ctx, (list, key) => this.overwriteCommands(list, key, ctx.rawJson, ctx.params.guild)));
      this.route('GET', `${base}/:command`, true, (ctx) => this.withCommands(ctx, (list) => {
        const found = list.find((c) => c.id === ctx.params.command);
        return found ? json(200, found) : error(404, 10063, 'Unknown application command');
      }));
      this.route('PATCH', `${base}/:command`, true, (ctx) => this.withCommands(ctx, (list) => this.patchCommand(list, ctx)));
      this.route('DELETE', `${base}/:command`, true, (ctx) => this.withCommands(ctx, (list, key) => {
        const index = list.findIndex((c) => c.id === ctx.params.command);
        if (index < 0) return error(404, 10063, 'Unknown application command');
        list.splice(index, 1);
        s.commands.set(key, list);
        return json(204);
      }));
    }
  }

  // -----------------------------------------------------------------------------------------------
  // Interactions

  private interactionByToken(ctx: Ctx): FakeInteraction | Reply {
    const interaction = this.state.interactionsByToken.get(ctx.params.token!);
    if (!interaction || interaction.applicationId !== ctx.params.app) return error(404, 10015, 'Unknown Webhook');
    ctx.entry.interactionId = interaction.id;
    if (interaction.expired || Date.now() > interaction.createdAt + this.hooks.tokenLifetimeMs()) {
      return error(401, 50027, 'Invalid Webhook Token');
    }
    return interaction;
  }

  private callback(ctx: Ctx): Reply {
    const s = this.state;
    const interaction = s.interactions.get(ctx.params.id!);
    if (!interaction || interaction.token !== ctx.params.token) return error(404, 10062, 'Unknown interaction');
    ctx.entry.interactionId = interaction.id;
    const now = Date.now();
    if (now - interaction.dispatchedAt > this.hooks.callbackDeadlineMs()) return error(404, 10062, 'Unknown interaction');
    if (interaction.callback) {
      interaction.rejectedCallbacks += 1;
      return error(400, 40060, 'Interaction has already been acknowledged.');
    }
    const type = Number(ctx.body.type);
    const data = ctx.body.data as Json | undefined;
    const isComponent = interaction.type === 3 || (interaction.type === 5 && !!interaction.sourceMessageId);
    const invalidType = () => json(400, { code: 50035, message: 'Invalid Form Body', errors: { type: { _errors: [{ code: 'INTERACTION_RESPONSE_TYPE_INVALID', message: 'Invalid interaction response type' }] } } });
    let messageId: string | undefined;
    // An autocomplete interaction takes its choices and nothing else (no reply, defer or modal).
    if (interaction.type === 4 && type !== 8) return invalidType();
    switch (type) {
      case 4: {
        const problem = checkMessage(data ?? {}, { creating: true, files: ctx.files.length });
        if (problem) return json(400, problem);
        const big = this.oversized(ctx.files, this.interactionLimit(interaction));
        if (big) return big;
        const flags = Number(data?.flags ?? 0) & (MessageFlag.Ephemeral | MessageFlag.IsComponentsV2 | (1 << 12));
        messageId = this.createFromPayload(interaction.channelId, data ?? {}, ctx.files, { flags, type: interaction.type === 2 ? 20 : 19, interaction }).id;
        break;
      }
      case 5: {
        const flags = MessageFlag.Loading | (Number(data?.flags ?? 0) & MessageFlag.Ephemeral);
        messageId = this.createFromPayload(interaction.channelId, {}, [], { flags, type: interaction.type === 2 ? 20 : 19, interaction, allowEmpty: true }).id;
        break;
      }
      case 6:
        if (!isComponent) return invalidType();
        messageId = interaction.sourceMessageId;
        break;
      case 7: {
        if (!isComponent) return invalidType();
        const source = interaction.sourceMessageId ? s.messages.get(interaction.sourceMessageId) : undefined;
        if (!source) return unknownMessage();
        const problem = checkMessage(data ?? {}, { creating: false, files: ctx.files.length });
        if (problem) return json(400, problem);
        this.applyEdit(source, data ?? {}, ctx.files, 'webhook');
        messageId = source.id;
        break;
      }
      case 8: {
        if (interaction.type !== 4) return invalidType();
        const problem = checkAutocomplete(data);
        if (!problem.empty) return json(400, problem.body());
        break;
      }
      case 9: {
        if (interaction.type === 5) return invalidType();
        const problem = checkModal(data);
        if (!problem.empty) return json(400, problem.body());
        interaction.modal = data;
        break;
      }
      default:
        return invalidType();
    }
    interaction.callback = { type, at: now, latencyMs: now - interaction.dispatchedAt, data };
    if (messageId) interaction.originalMessageId = messageId;
    this.hooks.emit('callback', interaction);
    if (ctx.query.get('with_response') !== 'true') return json(204);
    const message = messageId ? s.messages.get(messageId) : undefined;
    return json(200, {
      interaction: {
        id: interaction.id, type: interaction.type, activity_instance_id: null,
        ...(message ? {
          response_message_id: message.id,
          response_message_loading: (message.flags & MessageFlag.Loading) !== 0,
          response_message_ephemeral: (message.flags & MessageFlag.Ephemeral) !== 0,
        } : {}),
      },
      resource: { type, ...(message && (type === 4 || type === 7) ? { message: s.messageJson(message) } : {}) },
    });
  }

  private webhookMessage(ctx: Ctx, action: 'get' | 'edit' | 'delete'): Reply {
    const interaction = this.interactionByToken(ctx);
    if (!('id' in interaction)) return interaction;
    const id = ctx.params.message === '@original' ? interaction.originalMessageId : ctx.params.message;
    const message = id ? this.state.messages.get(id) : undefined;
    const ours = message && !message.deleted && (message.id === interaction.originalMessageId || message.interactionMetadata?.id === interaction.id);
    if (!message || !ours) return unknownMessage();
    if (action === 'get') return json(200, this.state.messageJson(message));
    if (action === 'delete') {
      this.remove(message);
      return json(204);
    }
    const big = this.oversized(ctx.files, this.interactionLimit(interaction));
    if (big) return big;
    return this.edit(message, ctx, 'webhook');
  }

  private followUp(ctx: Ctx): Reply {
    const interaction = this.interactionByToken(ctx);
    if (!('id' in interaction)) return interaction;
    if (!interaction.callback) return error(404, 10015, 'Unknown Webhook');
    const problem = checkMessage(ctx.body, { creating: true, files: ctx.files.length });
    if (problem) return json(400, problem);
    const big = this.oversized(ctx.files, this.interactionLimit(interaction));
    if (big) return big;
    const flags = Number(ctx.body.flags ?? 0) & (MessageFlag.Ephemeral | MessageFlag.IsComponentsV2 | (1 << 12));
    const message = this.createFromPayload(interaction.channelId, ctx.body, ctx.files, { flags, type: 0, interaction });
    return ctx.query.get('wait') === 'true' ? json(200, this.state.messageJson(message)) : json(204);
  }

  private interactionLimit(interaction: FakeInteraction): number {
    return Number(interaction.payload.attachment_size_limit ?? this.state.uploadLimit(interaction.channelId));
  }

  // -----------------------------------------------------------------------------------------------
  // Messages

  private channelMessage(channelId: string, messageId: string): FakeMessage | undefined {
    const message = this.state.messages.get(messageId);
    if (!message || message.deleted || message.channelId !== channelId) return undefined;
    // Ephemeral messages exist only for their interaction's webhook.
    if (message.flags & MessageFlag.Ephemeral) return undefined;
    return message;
  }

  private oversized(files: MultipartFile[], limit: number): Reply | null {
    const total = files.reduce((n, f) => n + f.data.length, 0);
    if (files.some((f) => f.data.length > limit) || total > MAX_REQUEST_BYTES) return error(413, 40005, 'Request entity too large');
    return null;
  }

  private createChannelMessage(ctx: Ctx): Reply {
    const s = this.state;
    const channelId = ctx.params.channel!;
    const channel = s.channels.get(channelId);
    if (!channel) return unknownChannel();
    if ((channel.thread_metadata as Json | undefined)?.locked) return error(403, 50083, 'Thread is archived');
    const problem = checkMessage(ctx.body, { creating: true, files: ctx.files.length });
    if (problem) return json(400, problem);
    const big = this.oversized(ctx.files, s.uploadLimit(channelId));
    if (big) return big;
    const nonce = ctx.body.nonce as string | number | undefined;
    if (nonce !== undefined && ctx.body.enforce_nonce === true) {
      const cutoff = Date.now() - NONCE_WINDOW_MS;
      const earlier = [...s.messages.values()].find((m) => m.channelId === channelId && m.authorId === s.bot.id && m.nonce === nonce && m.createdAt >= cutoff);
      if (earlier) return json(200, s.messageJson(earlier));
    }
    const reference = ctx.body.message_reference as Json | undefined;
    if (reference?.message_id) {
      const target = s.messages.get(String(reference.message_id));
      if ((!target || target.deleted) && reference.fail_if_not_exists !== false) {
        return json(400, { code: 50035, message: 'Invalid Form Body', errors: { message_reference: { _errors: [{ code: 'REPLIES_UNKNOWN_MESSAGE', message: 'Unknown message' }] } } });
      }
    }
    const flags = Number(ctx.body.flags ?? 0) & (MessageFlag.IsComponentsV2 | (1 << 12) | (1 << 2));
    const message = this.createFromPayload(channelId, ctx.body, ctx.files, {
      flags, type: reference ? 19 : 0, ...(nonce !== undefined ? { nonce } : {}),
      ...(reference ? { messageReference: { type: 0, message_id: reference.message_id, channel_id: reference.channel_id ?? channelId, guild_id: channel.guild_id } } : {}),
    });
    return json(200, s.messageJson(message));
  }

  private createFromPayload(channelId: string, body: Json, files: MultipartFile[], opts: {
    flags: number; type: number; interaction?: FakeInteraction; nonce?: string | number; messageReference?: Json; allowEmpty?: boolean;
  }): FakeMessage {
    const s = this.state;
    const attachments = files.map((f) => s.storeAttachment(channelId, { filename: this.filenameFor(body, f), contentType: f.contentType, data: f.data }));
    const interaction = opts.interaction;
    const message = s.createMessage({
      channelId, content: String(body.content ?? ''), embeds: (body.embeds as Json[]) ?? [], components: (body.components as Json[]) ?? [],
      attachments, flags: opts.flags, type: opts.type, via: interaction ? 'webhook' : 'bot',
      ...(opts.nonce !== undefined ? { nonce: opts.nonce } : {}),
      ...(opts.messageReference ? { messageReference: opts.messageReference } : {}),
      ...(interaction ? {
        webhookId: s.applicationId,
        interactionMetadata: {
          id: interaction.id, type: interaction.type, user: s.users.get(interaction.userId),
          authorizing_integration_owners: interaction.payload.authorizing_integration_owners ?? {},
          ...(interaction.sourceMessageId ? { interacted_message_id: interaction.sourceMessageId } : {}),
        },
      } : {}),
    });
    this.hooks.emit('messageCreate', message);
    return message;
  }

  /** `attachments[i].filename` in the payload may rename files[i]; discord.js sends both. */
  private filenameFor(body: Json, file: MultipartFile): string {
    const index = /^files\[(\d+)\]$/.exec(file.field)?.[1];
    const described = Array.isArray(body.attachments) ? (body.attachments as Json[]).find((a) => String(a.id) === index) : undefined;
    return typeof described?.filename === 'string' ? described.filename : file.filename;
  }

  private edit(message: FakeMessage, ctx: Ctx, via: 'webhook' | 'bot'): Reply {
    const problem = checkMessage(ctx.body, { creating: false, files: ctx.files.length });
    if (problem) return json(400, problem);
    if (via === 'bot') {
      const big = this.oversized(ctx.files, this.state.uploadLimit(message.channelId));
      if (big) return big;
    }
    this.applyEdit(message, ctx.body, ctx.files, via);
    return json(200, this.state.messageJson(message));
  }

  private applyEdit(message: FakeMessage, body: Json, files: MultipartFile[], via: 'webhook' | 'bot'): void {
    if ('content' in body) message.content = body.content === null ? '' : String(body.content);
    if ('embeds' in body) message.embeds = (body.embeds as Json[] | null) ?? [];
    if ('components' in body) message.components = (body.components as Json[] | null) ?? [];
    if ('flags' in body && body.flags !== null) {
      const settable = MessageFlag.IsComponentsV2 | (1 << 2);
      message.flags = (message.flags & ~(1 << 2)) | (Number(body.flags) & settable);
    }
    const added = files.map((f) => this.state.storeAttachment(message.channelId, { filename: this.filenameFor(body, f), contentType: f.contentType, data: f.data }));
    if (Array.isArray(body.attachments)) {
      const keep = new Set((body.attachments as Json[]).map((a) => String(a.id)));
      message.attachments = message.attachments.filter((a) => keep.has(a.id));
    }
    message.attachments.push(...added);
    message.flags &= ~MessageFlag.Loading;
    message.editedAt = Date.now();
    message.history.push({ at: message.editedAt, content: message.content, via });
    this.hooks.emit('messageUpdate', message);
  }

  private remove(message: FakeMessage): void {
    message.deleted = true;
    this.hooks.emit('messageDelete', message);
    // MESSAGE_DELETE needs GuildMessages (1 << 9), which dreambot does not ask for.
    this.hooks.dispatch('MESSAGE_DELETE', { id: message.id, channel_id: message.channelId, ...(message.guildId ? { guild_id: message.guildId } : {}) }, 1 << 9);
  }

  react(message: FakeMessage, userId: string, emoji: string): void {
    const s = this.state;
    const users = message.reactions.get(emoji) ?? new Set<string>();
    if (users.has(userId)) return;
    users.add(userId);
    message.reactions.set(emoji, users);
    const d: Json = {
      user_id: userId, channel_id: message.channelId, message_id: message.id, emoji: { id: null, name: emoji },
      message_author_id: message.authorId, burst: false, burst_colors: [], type: 0,
    };
    if (message.guildId) {
      d.guild_id = message.guildId;
      const member = s.memberJson(message.guildId, userId);
      if (member) d.member = member;
    }
    this.hooks.dispatch('MESSAGE_REACTION_ADD', d, message.guildId ? Intent.GuildMessageReactions : Intent.DirectMessageReactions);
  }

  private startThread(ctx: Ctx): Reply {
    const s = this.state;
    const channel = s.channels.get(ctx.params.channel!);
    if (!channel) return unknownChannel();
    const message = this.channelMessage(ctx.params.channel!, ctx.params.message!);
    if (!message) return unknownMessage();
    if (channel.type !== ChannelType.GuildText && channel.type !== 5) return error(400, 50024, 'Cannot execute action on this channel type');
    const name = typeof ctx.body.name === 'string' ? ctx.body.name : '';
    if (name.length < 1 || name.length > 100) {
      return json(400, { code: 50035, message: 'Invalid Form Body', errors: { name: { _errors: [{ code: 'BASE_TYPE_BAD_LENGTH', message: 'Must be between 1 and 100 in length.' }] } } });
    }
    const archive = ctx.body.auto_archive_duration === undefined ? 1440 : Number(ctx.body.auto_archive_duration);
    if (!AUTO_ARCHIVE.has(archive)) {
      return json(400, { code: 50035, message: 'Invalid Form Body', errors: { auto_archive_duration: { _errors: [{ code: 'BASE_TYPE_CHOICES', message: 'Value must be one of {60, 1440, 4320, 10080}.' }] } } });
    }
    if (message.threadId) return error(400, 160004, 'A thread has already been created for this message');
    const now = new Date().toISOString();
    const thread = {
      id: message.id, type: ChannelType.PublicThread, guild_id: channel.guild_id, parent_id: channel.id, owner_id: s.bot.id, name,
      last_message_id: null, message_count: 0, member_count: 1, total_message_sent: 0, rate_limit_per_user: Number(ctx.body.rate_limit_per_user ?? 0),
      flags: 0, thread_metadata: { archived: false, auto_archive_duration: archive, archive_timestamp: now, locked: false, create_timestamp: now },
      member: { id: message.id, user_id: s.bot.id, join_timestamp: now, flags: 0 },
    };
    s.channels.set(thread.id, thread);
    message.threadId = thread.id;
    message.flags |= MessageFlag.HasThread;
    this.hooks.dispatch('THREAD_CREATE', { ...thread, newly_created: true }, Intent.Guilds);
    this.hooks.emit('threadCreate', thread);
    return json(201, thread);
  }

  // -----------------------------------------------------------------------------------------------
  // Application commands

  private withCommands(ctx: Ctx, fn: (list: FakeCommand[], key: string) => Reply): Reply {
    if (ctx.params.app !== this.state.applicationId) return error(403, 50001, 'Missing Access');
    const guild = ctx.params.guild;
    if (guild && !this.state.guilds.has(guild)) return error(404, 10004, 'Unknown Guild');
    const key = guild ?? '';
    return fn([...(this.state.commands.get(key) ?? [])], key);
  }

  private countCreate(key: string): Reply | null {
    const day = `${key}:${new Date().toISOString().slice(0, 10)}`;
    const count = (this.state.commandCreates.get(day) ?? 0) + 1;
    if (count > 200) return error(429, 30034, 'Max number of daily application command creates has been reached (200)');
    this.state.commandCreates.set(day, count);
    return null;
  }

  private toCommand(body: Json, guildId: string | undefined, id?: string): FakeCommand {
    const type = Number(body.type ?? 1);
    return {
      id: id ?? snowflake(), application_id: this.state.applicationId, version: snowflake(), type, name: String(body.name),
      name_localizations: body.name_localizations ?? null, description: String(body.description ?? ''),
      description_localizations: body.description_localizations ?? null, options: (body.options as Json[] | undefined) ?? [],
      default_member_permissions: body.default_member_permissions ?? null, nsfw: body.nsfw ?? false,
      contexts: body.contexts ?? null, integration_types: body.integration_types ?? [0],
      ...(body.dm_permission !== undefined ? { dm_permission: body.dm_permission } : {}),
      ...(guildId ? { guild_id: guildId } : {}),
    };
  }

  private upsertCommand(list: FakeCommand[], key: string, body: Json, guildId: string | undefined): Reply {
    const problem = checkCommand(body);
    if (!problem.empty) return json(400, problem.body());
    const type = Number(body.type ?? 1);
    const index = list.findIndex((c) => c.name === body.name && c.type === type);
    if (index >= 0) {
      list[index] = this.toCommand(body, guildId, list[index]!.id);
      this.state.commands.set(key, list);
      return json(200, list[index]);
    }
    const limited = this.countCreate(key);
    if (limited) return limited;
    const command = this.toCommand(body, guildId);
    list.push(command);
    this.state.commands.set(key, list);
    return json(201, command);
  }

  private overwriteCommands(list: FakeCommand[], key: string, raw: unknown, guildId: string | undefined): Reply {
    if (!Array.isArray(raw)) return json(400, { code: 50035, message: 'Invalid Form Body', errors: { _errors: [{ code: 'BASE_TYPE_ARRAY', message: 'Must be an array.' }] } });
    const next: FakeCommand[] = [];
    for (const [i, body] of (raw as Json[]).entries()) {
      const problem = checkCommand(body);
      if (!problem.empty) return json(400, { code: 50035, message: 'Invalid Form Body', errors: { [i]: (problem.body() as { errors: Json }).errors } });
      const existing = list.find((c) => c.name === body.name && c.type === Number(body.type ?? 1));
      if (!existing) {
        const limited = this.countCreate(key);
        if (limited) return limited;
      }
      next.push(this.toCommand(body, guildId, existing?.id));
    }
    this.state.commands.set(key, next);
    return json(200, next);
  }

  private patchCommand(list: FakeCommand[], ctx: Ctx): Reply {
    const index = list.findIndex((c) => c.id === ctx.params.command);
    if (index < 0) return error(404, 10063, 'Unknown application command');
    const merged = { ...list[index]!, ...ctx.body };
    const problem = checkCommand(merged);
    if (!problem.empty) return json(400, problem.body());
    list[index] = this.toCommand(merged, ctx.params.guild, list[index]!.id);
    this.state.commands.set(ctx.params.guild ?? '', list);
    return json(200, list[index]);
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  let tooBig = false;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_REQUEST_BYTES + 1024 * 1024) tooBig = true;
    if (!tooBig) chunks.push(chunk as Buffer);
  }
  return tooBig ? null : Buffer.concat(chunks);
}

