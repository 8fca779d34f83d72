import { EventEmitter } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { FakeGateway, type GatewayCounters } from './gateway.ts';
import { FakeRest, type RateLimitRule, type RestLogEntry } from './rest.ts';
import { snowflake } from './snowflake.ts';
import {
  ADMIN_PERMISSIONS, BOT_PERMISSIONS, ChannelType, FakeState, MEMBER_PERMISSIONS, type CallbackRecord, type FakeChannel, type FakeGuild,
  type FakeInteraction, type FakeMessage, type FakeUser, type Json,
} from './state.ts';

export { ADMIN_PERMISSIONS, MEMBER_PERMISSIONS, BOT_PERMISSIONS, ChannelType };
export type { CallbackRecord, FakeChannel, FakeGuild, FakeInteraction, FakeMessage, FakeUser, Json, RateLimitRule, RestLogEntry };

/**
 * A local Discord for tests and trials: REST under /api/v10, a JSON gateway, and attachment bytes at
 * the URLs its interactions name. The real discord.js Client runs against it unmodified (point
 * `rest.api` at `apiUrl`; the gateway address comes from GET /gateway/bot). Tests drive it as members
 * would (`sendCommand`, `sendAutocomplete`, `clickButton`, `submitModal`, `addReaction`) and break it as
 * Discord does (`disconnect`, `expireToken`, `rateLimit`), then read what the bot did from its in-memory world.
 */
export interface FakeDiscordOptions {
  port?: number;
  token?: string;
  botName?: string;
  /** HELLO's heartbeat_interval; Discord sends about 41250. */
  heartbeatIntervalMs?: number;
  /** Discord's first-response deadline: 3 s. */
  callbackDeadlineMs?: number;
  /** How long an interaction token works for edits and follow-ups: 15 min from the interaction's snowflake time. */
  tokenLifetimeMs?: number;
}

export type OptionValue = string | number | boolean | { user: FakeUser } | AttachmentInput;

export interface AttachmentInput {
  filename: string;
  contentType: string;
  data: Buffer;
}

export interface InteractionBase {
  user: FakeUser;
  /** Defaults to the member's permissions in the guild. */
  permissions?: string;
  attachmentSizeLimit?: number;
  /** Makes the interaction's snowflake (and so its token's 15 minutes) this much older than now. */
  ageMs?: number;
  locale?: string;
}

export interface CommandInput extends InteractionBase {
  name: string;
  channel: FakeChannel;
  group?: string;
  subcommand?: string;
  options?: Record<string, OptionValue | undefined>;
}

export interface AutocompleteChoice {
  name: string;
  value: string | number;
}

export interface SentInteraction {
  id: string;
  token: string;
  payload: Json;
  record: FakeInteraction;
  /** Resolves with the first callback Discord accepted. */
  callback(timeoutMs?: number): Promise<CallbackRecord>;
  original(): FakeMessage | undefined;
  followUps(): FakeMessage[];
  /** Dispatches the very same INTERACTION_CREATE again, as Discord occasionally does. */
  redeliver(): void;
}

export class FakeDiscord extends EventEmitter {
  readonly state: FakeState;
  readonly rest: FakeRest;
  readonly gateway: FakeGateway;
  private readonly server: Server;
  private port = 0;
  callbackDeadlineMs: number;
  tokenLifetimeMs: number;

  private constructor(readonly opts: FakeDiscordOptions) {
    super();
    this.setMaxListeners(0);
    const token = opts.token ?? `fake.${snowflake()}.token`;
    this.callbackDeadlineMs = opts.callbackDeadlineMs ?? 3000;
    this.tokenLifetimeMs = opts.tokenLifetimeMs ?? 15 * 60_000;
    this.state = new FakeState({ token, botName: opts.botName ?? 'dreambot', baseUrl: () => this.baseUrl });
    this.gateway = new FakeGateway(this.state, {
      token, heartbeatIntervalMs: opts.heartbeatIntervalMs ?? 41_250, url: () => this.gatewayUrl,
      onEvent: (event, detail) => this.emit(`gateway:${event}`, detail),
    });
    this.rest = new FakeRest(this.state, {
      dispatch: (t, d, intent) => this.gateway.dispatch(t, d, intent),
      emit: (event, detail) => this.emit(event, detail),
      callbackDeadlineMs: () => this.callbackDeadlineMs,
      tokenLifetimeMs: () => this.tokenLifetimeMs,
    }, () => this.gatewayUrl);
    this.server = createServer((req, res) => {
      const url = new URL(req.url ?? '/', 'http://fake');
      if (url.pathname.startsWith('/api/v10/')) return void this.rest.handle(req, res, url.pathname.slice('/api/v10'.length), url.searchParams);
      const file = /^\/attachments\/\d+\/(\d+)\/[^/]+$/.exec(url.pathname);
      const attachment = file && req.method === 'GET' ? this.state.attachments.get(file[1]!) : undefined;
      if (attachment) {
        res.writeHead(200, { 'Content-Type': attachment.content_type, 'Content-Length': String(attachment.size) }).end(attachment.data);
        return;
      }
      res.writeHead(404, { 'Content-Type': 'application/json' }).end(JSON.stringify({ message: '404: Not Found', code: 0 }));
    });
    this.server.on('upgrade', (req, socket, head) => {
      const path = new URL(req.url ?? '/', 'http://fake').pathname;
      if (path === '/gateway' || path === '/resume') this.gateway.handleUpgrade(req, socket, head);
      else socket.destroy();
    });
  }

  static async start(opts: FakeDiscordOptions = {}): Promise<FakeDiscord> {
    const fake = new FakeDiscord(opts);
    await new Promise<void>((resolve, reject) => {
      fake.server.once('error', reject);
      fake.server.listen(opts.port ?? 0, '127.0.0.1', () => resolve());
    });
    fake.port = (fake.server.address() as AddressInfo).port;
    return fake;
  }

  async stop(): Promise<void> {
    await this.gateway.close();
    this.server.closeAllConnections();
    await new Promise<void>((resolve) => this.server.close(() => resolve()));
  }

  get baseUrl(): string {
    return `http://127.0.0.1:${this.port}`;
  }
  /** What discord.js takes as `rest.api` (it appends /v10 itself). */
  get apiUrl(): string {
    return `${this.baseUrl}/api`;
  }
  get gatewayUrl(): string {
    return `ws://127.0.0.1:${this.port}/gateway`;
  }
  get token(): string {
    return this.state.opts.token;
  }
  get applicationId(): string {
    return this.state.applicationId;
  }
  get bot(): FakeUser {
    return this.state.bot;
  }

  /** The environment that points dreambot at this fake. */
  env(): Record<string, string> {
    return { DISCORD_TOKEN: this.token, DISCORD_APPLICATION_ID: this.applicationId, DISCORD_API_URL: this.apiUrl };
  }

  // -----------------------------------------------------------------------------------------------
  // The world

  /** A guild with one text channel. Guilds added after a client identified are announced with GUILD_CREATE. */
  addGuild(input: { name?: string; attachmentSizeLimit?: number; channelName?: string } = {}): { guild: FakeGuild; channel: FakeChannel } {
    const guild = this.state.addGuild({ name: input.name ?? 'Test Server', ...(input.attachmentSizeLimit ? { attachmentSizeLimit: input.attachmentSizeLimit } : {}) });
    const channel = this.state.addChannel({ guildId: guild.id, name: input.channelName ?? 'general' });
    if (this.gateway.sessions.size > 0) this.gateway.dispatch('GUILD_CREATE', this.state.guildCreatePayload(guild.id), 1);
    return { guild, channel };
  }

  addUser(username: string, opts: { bot?: boolean } = {}): FakeUser {
    return this.state.addUser({ username, ...(opts.bot ? { bot: true } : {}) });
  }

  /** Adds the user to the guild; `admin` gives Manage Server. */
  addMember(guild: FakeGuild, user: FakeUser, opts: { admin?: boolean; permissions?: string } = {}): void {
    this.state.addMember(guild.id, user.id, opts.permissions ?? (opts.admin ? ADMIN_PERMISSIONS : MEMBER_PERMISSIONS));
  }

  dmChannel(user: FakeUser): FakeChannel {
    const existing = [...this.state.channels.values()].find((c) => c.type === ChannelType.DM && (c.recipients as FakeUser[] | undefined)?.[0]?.id === user.id);
    return existing ?? this.state.addChannel({ type: ChannelType.DM, recipientId: user.id });
  }

  // -----------------------------------------------------------------------------------------------
  // Driving it as members do

  /**
   * Any interaction, as raw as a test wants it: `type` 2 (command), 3 (component), 4 (autocomplete) or
   * 5 (modal submit), with its `data`; `message` for components. The helpers below build `data` for you.
   */
  sendInteraction(input: InteractionBase & { type: 2 | 3 | 4 | 5; data: Json; channel: FakeChannel; message?: FakeMessage }): SentInteraction {
    return this.interact(input.type, input.data, input.channel, input, input.message);
  }

  /** A slash command. Option types come from the registered command when there is one, else from the values. */
  sendCommand(input: CommandInput): SentInteraction {
    return this.interact(2, this.commandData(input), input.channel, input);
  }

  /**
   * A member typing into an autocompleted option (INTERACTION_CREATE type 4): `focused` is the option being
   * typed, `typed` what is in it so far (it need not be complete or valid), `options` whatever else is filled.
   * Read the answer with `autocompleteChoices`.
   */
  sendAutocomplete(input: CommandInput & { focused: string; typed?: string }): SentInteraction {
    const { focused, typed = '', ...rest } = input;
    const data = this.commandData({ ...rest, options: { ...(rest.options ?? {}), [focused]: typed } }, focused);
    return this.interact(4, data, input.channel, input);
  }

  /** The choices the bot answered an autocomplete with (callback type 8), with how long it took. */
  async autocompleteChoices(sent: SentInteraction, timeoutMs = 5000): Promise<{ choices: AutocompleteChoice[]; latencyMs: number }> {
    const callback = await sent.callback(timeoutMs);
    if (callback.type !== 8) throw new Error(`fake discord: interaction ${sent.id} was answered with type ${callback.type}, not 8`);
    return { choices: ((callback.data?.choices ?? []) as AutocompleteChoice[]), latencyMs: callback.latencyMs };
  }

  /** `data` of an APPLICATION_COMMAND interaction; in an autocomplete one, `focused` marks the option being typed. */
  private commandData(input: CommandInput, focused?: string): Json {
    const guildId = input.channel.guild_id;
    const registered = [...(this.state.commands.get(guildId ?? '') ?? []), ...(this.state.commands.get('') ?? [])].find((c) => c.name === input.name && c.type === 1);
    let defs = (registered?.options ?? []) as Json[];
    const resolved: { attachments: Json; users: Json; members: Json } = { attachments: {}, users: {}, members: {} };
    const leafOptions: Json[] = [];
    const path: { name: string; type: number }[] = [];
    if (input.group) {
      path.push({ name: input.group, type: 2 });
      defs = ((defs.find((d) => d.name === input.group)?.options ?? []) as Json[]);
    }
    if (input.subcommand) {
      path.push({ name: input.subcommand, type: 1 });
      defs = ((defs.find((d) => d.name === input.subcommand)?.options ?? []) as Json[]);
    }
    for (const [name, value] of Object.entries(input.options ?? {})) {
      if (value === undefined) continue;
      const declared = defs.find((d) => d.name === name)?.type as number | undefined;
      if (typeof value === 'object' && 'data' in value) {
        const attachment = this.state.storeAttachment(input.channel.id, { filename: value.filename, contentType: value.contentType, data: value.data });
        const { data: _data, ...json } = attachment;
        (resolved.attachments as Json)[attachment.id] = { ...json, ephemeral: true };
        leafOptions.push({ name, type: 11, value: attachment.id });
      } else if (typeof value === 'object' && 'user' in value) {
        (resolved.users as Json)[value.user.id] = value.user;
        const member = guildId ? this.state.memberJson(guildId, value.user.id) : undefined;
        if (member) {
          const { user: _u, ...rest } = member;
          (resolved.members as Json)[value.user.id] = rest;
        }
        leafOptions.push({ name, type: 6, value: value.user.id });
      } else {
        const type = declared ?? (typeof value === 'boolean' ? 5 : typeof value === 'number' ? (Number.isInteger(value) ? 4 : 10) : 3);
        // Discord sends the focused option's value as typed: a string, whatever the option's type.
        leafOptions.push(name === focused ? { name, type, value: String(value), focused: true } : { name, type, value });
      }
    }
    let options = leafOptions;
    for (const level of [...path].reverse()) options = [{ name: level.name, type: level.type, options }];
    const data: Json = { id: registered?.id ?? snowflake(), name: input.name, type: 1, options };
    if (guildId) data.guild_id = guildId;
    const res = Object.fromEntries(Object.entries(resolved).filter(([, v]) => Object.keys(v as Json).length > 0));
    if (Object.keys(res).length) data.resolved = res;
    return data;
  }

  /** Clicks a button on a message the bot posted. */
  clickButton(input: InteractionBase & { message: FakeMessage; customId: string }): SentInteraction {
    const found = input.message.components.some((row) => ((row.components as Json[]) ?? []).some((c) => c.custom_id === input.customId));
    if (!found) throw new Error(`fake discord: message ${input.message.id} has no component "${input.customId}"`);
    const channel = this.state.channels.get(input.message.channelId)!;
    return this.interact(3, { custom_id: input.customId, component_type: 2 }, channel, input, input.message);
  }

  /** Submits the modal the bot opened in answer to `opened`, with text inputs set to `values`. */
  submitModal(input: InteractionBase & { opened: SentInteraction; values: Record<string, string> }): SentInteraction {
    const modal = input.opened.record.modal;
    if (!modal) throw new Error(`fake discord: interaction ${input.opened.id} opened no modal`);
    const components = ((modal.components as Json[]) ?? []).map((c) => {
      if (c.type === 18) {
        const inner = c.component as Json;
        return { type: 18, id: c.id ?? 1, component: { type: inner.type, id: inner.id ?? 2, custom_id: inner.custom_id, value: input.values[String(inner.custom_id)] ?? inner.value ?? '' } };
      }
      return { type: 1, id: c.id ?? 1, components: ((c.components as Json[]) ?? []).map((inner) => ({ type: inner.type, id: inner.id ?? 2, custom_id: inner.custom_id, value: input.values[String(inner.custom_id)] ?? inner.value ?? '' })) };
    });
    const channel = this.state.channels.get(input.opened.record.channelId)!;
    const source = input.opened.record.sourceMessageId ? this.state.messages.get(input.opened.record.sourceMessageId) : undefined;
    return this.interact(5, { custom_id: modal.custom_id, components }, channel, input, source);
  }

  /** A member reacts to a message; the bot hears MESSAGE_REACTION_ADD if it asked for reaction intents. */
  addReaction(input: { message: FakeMessage; user: FakeUser; emoji?: string }): void {
    this.rest.react(input.message, input.user.id, input.emoji ?? '🔁');
  }

  /** Drops the gateway connections; with the default 4000 clients resume, with 1000 they identify anew. */
  disconnect(code = 4000): void {
    this.gateway.disconnect(code);
  }

  /** Ends an interaction token now, as if its 15 minutes were over. */
  expireToken(interactionId: string): void {
    const interaction = this.state.interactions.get(interactionId);
    if (interaction) interaction.expired = true;
  }

  /** The next `times` requests matching `route` get a 429 with Discord's headers and body. */
  rateLimit(rule: Partial<RateLimitRule> & Pick<RateLimitRule, 'route'>): void {
    this.rest.rules.push({ times: 1, retryAfter: 0.25, global: false, scope: rule.global ? 'global' : 'user', ...rule });
  }

  private interact(type: number, data: Json, channel: FakeChannel, input: InteractionBase, message?: FakeMessage): SentInteraction {
    const guild = channel.guild_id ? this.state.guilds.get(channel.guild_id) : undefined;
    const record = this.state.newInteraction({
      type, channelId: channel.id, userId: input.user.id, ...(guild ? { guildId: guild.id } : {}),
      ...(message ? { sourceMessageId: message.id } : {}), ...(input.ageMs ? { ageMs: input.ageMs } : {}),
    });
    const payload: Json = {
      id: record.id, application_id: record.applicationId, type, data, channel, channel_id: channel.id, token: record.token, version: 1,
      app_permissions: BOT_PERMISSIONS, locale: input.locale ?? 'en-US', entitlements: [],
      attachment_size_limit: input.attachmentSizeLimit ?? guild?.attachmentSizeLimit ?? 10 * 1024 * 1024,
      authorizing_integration_owners: guild ? { 0: guild.id } : { 1: input.user.id }, context: guild ? 0 : 1,
    };
    if (guild) {
      const member = this.state.memberJson(guild.id, input.user.id);
      if (!member) throw new Error(`fake discord: ${input.user.username} is not a member of ${guild.name}`);
      payload.guild_id = guild.id;
      payload.guild = { id: guild.id, locale: 'en-US', features: [] };
      payload.guild_locale = 'en-US';
      payload.member = { ...member, permissions: input.permissions ?? member.permissions };
    } else {
      payload.user = input.user;
    }
    if (message) payload.message = this.state.messageJson(message);
    record.payload = payload;
    const send = () => {
      if (!record.dispatchedAt) record.dispatchedAt = Date.now();
      this.gateway.dispatch('INTERACTION_CREATE', payload);
    };
    send();
    return {
      id: record.id, token: record.token, payload, record,
      callback: (timeoutMs = 5000) => this.waitFor(() => record.callback, timeoutMs, `a callback for interaction ${record.id}`),
      original: () => (record.originalMessageId ? this.state.messages.get(record.originalMessageId) : undefined),
      followUps: () => [...this.state.messages.values()].filter((m) => m.interactionMetadata?.id === record.id && m.id !== record.originalMessageId),
      redeliver: send,
    };
  }

  // -----------------------------------------------------------------------------------------------
  // Reading what the bot did

  messages(channelId?: string, opts: { includeDeleted?: boolean } = {}): FakeMessage[] {
    return [...this.state.messages.values()].filter((m) => (!channelId || m.channelId === channelId) && (opts.includeDeleted || !m.deleted));
  }

  message(id: string): FakeMessage | undefined {
    return this.state.messages.get(id);
  }

  requests(filter: (entry: RestLogEntry) => boolean = () => true): RestLogEntry[] {
    return this.rest.log.filter(filter);
  }

  counters(): GatewayCounters & { rest: Record<string, number>; statuses: Record<string, number>; lateOrDuplicateCallbacks: number } {
    const rest: Record<string, number> = {};
    const statuses: Record<string, number> = {};
    for (const entry of this.rest.log) {
      rest[entry.route] = (rest[entry.route] ?? 0) + 1;
      statuses[entry.status] = (statuses[entry.status] ?? 0) + 1;
    }
    const rejected = [...this.state.interactions.values()].reduce((n, i) => n + i.rejectedCallbacks, 0);
    return { ...this.gateway.counters, rest, statuses, lateOrDuplicateCallbacks: rejected };
  }

  async waitFor<T>(check: () => T | undefined | null | false, timeoutMs = 10_000, what = 'a condition'): Promise<T> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const value = check();
      if (value) return value;
      if (Date.now() > deadline) throw new Error(`fake discord: timed out after ${timeoutMs} ms waiting for ${what}`);
      await new Promise((r) => setTimeout(r, 20));
    }
  }

  /** Waits until a client has identified (or resumed) and holds a live connection. */
  async connected(timeoutMs = 20_000): Promise<void> {
    await this.waitFor(() => this.gateway.liveSessions() > 0, timeoutMs, 'a gateway connection');
  }
}
