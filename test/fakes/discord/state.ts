import { randomBytes } from 'node:crypto';
import { snowflake } from './snowflake.ts';

/**
 * The fake Discord's in-memory world: users, guilds, channels (text, DM, threads), messages with their
 * attachment bytes, interactions with their tokens and callbacks, application commands. Objects are kept
 * in Discord's own JSON shape (snake_case, snowflake strings) so REST and gateway hand them out as they are.
 */
export type Json = Record<string, unknown>;

export const ChannelType = { GuildText: 0, DM: 1, PublicThread: 11 } as const;
export const MessageFlag = { HasThread: 1 << 5, Ephemeral: 1 << 6, Loading: 1 << 7, IsComponentsV2: 1 << 15 } as const;
/** Permission bits (as BigInt: some are above 2^31). */
export const Permission = {
  Administrator: 1n << 3n,
  ManageGuild: 1n << 5n,
  AddReactions: 1n << 6n,
  ViewChannel: 1n << 10n,
  SendMessages: 1n << 11n,
  EmbedLinks: 1n << 14n,
  AttachFiles: 1n << 15n,
  ReadMessageHistory: 1n << 16n,
  UseApplicationCommands: 1n << 31n,
  CreatePublicThreads: 1n << 35n,
  SendMessagesInThreads: 1n << 38n,
} as const;
export const MEMBER_PERMISSIONS = (Permission.ViewChannel | Permission.SendMessages | Permission.AddReactions | Permission.ReadMessageHistory
  | Permission.AttachFiles | Permission.EmbedLinks | Permission.UseApplicationCommands | Permission.SendMessagesInThreads).toString();
export const ADMIN_PERMISSIONS = (BigInt(MEMBER_PERMISSIONS) | Permission.ManageGuild).toString();
export const BOT_PERMISSIONS = (BigInt(MEMBER_PERMISSIONS) | Permission.CreatePublicThreads).toString();

export const DEFAULT_ATTACHMENT_LIMIT = 10 * 1024 * 1024;
export const MAX_REQUEST_BYTES = 25 * 1024 * 1024;

export interface FakeUser {
  id: string;
  username: string;
  global_name: string | null;
  discriminator: string;
  avatar: null;
  bot?: boolean;
}

export interface FakeGuild {
  id: string;
  name: string;
  ownerId: string;
  /** What each interaction in this guild carries as attachment_size_limit, and what uploads may weigh. */
  attachmentSizeLimit: number;
  members: Map<string, { permissions: string; nick: string | null; joinedAt: string }>;
}

export interface FakeChannel extends Json {
  id: string;
  type: number;
  guild_id?: string;
  name?: string;
  parent_id?: string | null;
}

export interface StoredAttachment {
  id: string;
  filename: string;
  size: number;
  content_type: string;
  url: string;
  proxy_url: string;
  data: Buffer;
}

export interface FakeMessage {
  id: string;
  channelId: string;
  guildId?: string;
  type: number;
  authorId: string;
  content: string;
  embeds: Json[];
  components: Json[];
  attachments: StoredAttachment[];
  flags: number;
  nonce?: string | number;
  messageReference?: Json;
  interactionMetadata?: Json;
  webhookId?: string;
  createdAt: number;
  editedAt: number | null;
  deleted: boolean;
  threadId?: string;
  reactions: Map<string, Set<string>>;
  /** Every version of the message, oldest first, for tests that look at progress edits. */
  history: { at: number; content: string; via: 'create' | 'webhook' | 'bot' }[];
}

export interface CallbackRecord {
  type: number;
  at: number;
  /** Milliseconds from dispatch to the callback's arrival. */
  latencyMs: number;
  data: Json | undefined;
}

export interface FakeInteraction {
  id: string;
  token: string;
  type: number;
  applicationId: string;
  channelId: string;
  guildId?: string;
  userId: string;
  payload: Json;
  dispatchedAt: number;
  /** The snowflake's time: tokens last 15 minutes from it. */
  createdAt: number;
  callback?: CallbackRecord;
  rejectedCallbacks: number;
  originalMessageId?: string;
  /** For component interactions: the message the component is on. */
  sourceMessageId?: string;
  expired: boolean;
  modal?: Json;
}

export interface FakeCommand extends Json {
  id: string;
  application_id: string;
  name: string;
  type: number;
  version: string;
  guild_id?: string;
}

export class FakeState {
  readonly users = new Map<string, FakeUser>();
  readonly guilds = new Map<string, FakeGuild>();
  readonly channels = new Map<string, FakeChannel>();
  readonly messages = new Map<string, FakeMessage>();
  readonly interactions = new Map<string, FakeInteraction>();
  readonly interactionsByToken = new Map<string, FakeInteraction>();
  readonly attachments = new Map<string, StoredAttachment>();
  /** Key: '' for global commands, else the guild id. */
  readonly commands = new Map<string, FakeCommand[]>();
  readonly commandCreates = new Map<string, number>();
  readonly bot: FakeUser;

  constructor(readonly opts: { token: string; botName: string; baseUrl: () => string }) {
    this.bot = this.addUser({ username: opts.botName, bot: true });
  }

  get applicationId(): string {
    return this.bot.id;
  }

  addUser(input: { id?: string; username: string; bot?: boolean; globalName?: string }): FakeUser {
    const user: FakeUser = {
      id: input.id ?? snowflake(), username: input.username, global_name: input.globalName ?? null, discriminator: '0', avatar: null,
      ...(input.bot ? { bot: true } : {}),
    };
    this.users.set(user.id, user);
    return user;
  }

  addGuild(input: { id?: string; name: string; ownerId?: string; attachmentSizeLimit?: number }): FakeGuild {
    const id = input.id ?? snowflake();
    const guild: FakeGuild = {
      id, name: input.name, ownerId: input.ownerId ?? this.bot.id, attachmentSizeLimit: input.attachmentSizeLimit ?? DEFAULT_ATTACHMENT_LIMIT,
      members: new Map(),
    };
    this.guilds.set(id, guild);
    this.addMember(id, this.bot.id, BOT_PERMISSIONS);
    return guild;
  }

  addMember(guildId: string, userId: string, permissions = MEMBER_PERMISSIONS): void {
    this.requireGuild(guildId).members.set(userId, { permissions, nick: null, joinedAt: new Date().toISOString() });
  }

  addChannel(input: { id?: string; guildId?: string; name?: string; type?: number; recipientId?: string }): FakeChannel {
    const type = input.type ?? (input.guildId ? ChannelType.GuildText : ChannelType.DM);
    const channel: FakeChannel = { id: input.id ?? snowflake(), type, last_message_id: null };
    if (input.guildId) {
      Object.assign(channel, {
        guild_id: input.guildId, name: input.name ?? 'general', position: 0, permission_overwrites: [], parent_id: null,
        nsfw: false, topic: null, rate_limit_per_user: 0,
      });
    }
    if (type === ChannelType.DM && input.recipientId) channel.recipients = [this.users.get(input.recipientId)];
    this.channels.set(channel.id, channel);
    return channel;
  }

  requireGuild(id: string): FakeGuild {
    const guild = this.guilds.get(id);
    if (!guild) throw new Error(`fake discord: no guild ${id}`);
    return guild;
  }

  guildOfChannel(channelId: string): FakeGuild | undefined {
    const id = this.channels.get(channelId)?.guild_id;
    return id ? this.guilds.get(id) : undefined;
  }

  /** The upload limit that applies in a channel: the guild's, or the default in DMs. */
  uploadLimit(channelId: string): number {
    return this.guildOfChannel(channelId)?.attachmentSizeLimit ?? DEFAULT_ATTACHMENT_LIMIT;
  }

  storeAttachment(channelId: string, input: { filename: string; contentType: string; data: Buffer; id?: string }): StoredAttachment {
    const id = input.id ?? snowflake();
    const safeName = input.filename.replace(/[^A-Za-z0-9._-]/g, '_') || 'file';
    const url = `${this.opts.baseUrl()}/attachments/${channelId}/${id}/${safeName}`;
    const attachment: StoredAttachment = {
      id, filename: safeName, size: input.data.length, content_type: input.contentType, url, proxy_url: url, data: input.data,
    };
    this.attachments.set(id, attachment);
    return attachment;
  }

  memberJson(guildId: string, userId: string): Json | undefined {
    const member = this.guilds.get(guildId)?.members.get(userId);
    const user = this.users.get(userId);
    if (!member || !user) return undefined;
    return {
      user, nick: member.nick, roles: [], joined_at: member.joinedAt, deaf: false, mute: false, flags: 0, pending: false,
      permissions: member.permissions, avatar: null, premium_since: null, communication_disabled_until: null,
    };
  }

  /** The object GUILD_CREATE carries; `Guild._patch` in discord.js is the reference for its fields. */
  guildCreatePayload(guildId: string): Json {
    const guild = this.requireGuild(guildId);
    const channels = [...this.channels.values()].filter((c) => c.guild_id === guildId && c.type !== ChannelType.PublicThread);
    const threads = [...this.channels.values()].filter((c) => c.guild_id === guildId && c.type === ChannelType.PublicThread);
    return {
      id: guild.id, name: guild.name, icon: null, splash: null, discovery_splash: null, owner_id: guild.ownerId,
      afk_channel_id: null, afk_timeout: 300, verification_level: 0, default_message_notifications: 0, explicit_content_filter: 0,
      roles: [{
        id: guild.id, name: '@everyone', color: 0, colors: { primary_color: 0, secondary_color: null, tertiary_color: null }, hoist: false,
        icon: null, unicode_emoji: null, position: 0, permissions: MEMBER_PERMISSIONS, managed: false, mentionable: false, flags: 0,
      }],
      emojis: [], stickers: [], features: [], mfa_level: 0, application_id: null, system_channel_id: null, system_channel_flags: 0,
      rules_channel_id: null, vanity_url_code: null, description: null, banner: null, premium_tier: 0, premium_subscription_count: 0,
      preferred_locale: 'en-US', public_updates_channel_id: null, nsfw_level: 0, premium_progress_bar_enabled: false,
      safety_alerts_channel_id: null, max_video_channel_users: 25, max_stage_video_channel_users: 50,
      joined_at: new Date().toISOString(), large: false, unavailable: false, member_count: guild.members.size,
      voice_states: [], members: [this.memberJson(guild.id, this.bot.id)], channels, threads, presences: [],
      stage_instances: [], guild_scheduled_events: [], soundboard_sounds: [],
    };
  }

  createMessage(input: {
    channelId: string; authorId?: string; content?: string; embeds?: Json[]; components?: Json[]; attachments?: StoredAttachment[];
    flags?: number; type?: number; nonce?: string | number; messageReference?: Json; interactionMetadata?: Json; webhookId?: string;
    via?: 'create' | 'webhook' | 'bot';
  }): FakeMessage {
    const channel = this.channels.get(input.channelId);
    const now = Date.now();
    const message: FakeMessage = {
      id: snowflake(now), channelId: input.channelId, ...(channel?.guild_id ? { guildId: channel.guild_id } : {}),
      type: input.type ?? (input.messageReference ? 19 : 0), authorId: input.authorId ?? this.bot.id, content: input.content ?? '',
      embeds: input.embeds ?? [], components: input.components ?? [], attachments: input.attachments ?? [], flags: input.flags ?? 0,
      ...(input.nonce !== undefined ? { nonce: input.nonce } : {}),
      ...(input.messageReference ? { messageReference: input.messageReference } : {}),
      ...(input.interactionMetadata ? { interactionMetadata: input.interactionMetadata } : {}),
      ...(input.webhookId ? { webhookId: input.webhookId } : {}),
      createdAt: now, editedAt: null, deleted: false, reactions: new Map(),
      history: [{ at: now, content: input.content ?? '', via: input.via ?? 'create' }],
    };
    this.messages.set(message.id, message);
    if (channel) {
      channel.last_message_id = message.id;
      if (typeof channel.message_count === 'number') channel.message_count += 1;
    }
    return message;
  }

  messageJson(message: FakeMessage): Json {
    const author = this.users.get(message.authorId) ?? { id: message.authorId, username: 'unknown', discriminator: '0', global_name: null, avatar: null };
    const json: Json = {
      id: message.id, type: message.type, channel_id: message.channelId, author, content: message.content,
      timestamp: new Date(message.createdAt).toISOString(),
      edited_timestamp: message.editedAt === null ? null : new Date(message.editedAt).toISOString(),
      tts: false, mention_everyone: false, mentions: [], mention_roles: [], mention_channels: [],
      attachments: message.attachments.map(({ data: _data, ...rest }) => rest),
      embeds: message.embeds, components: message.components, pinned: false, flags: message.flags,
      reactions: [...message.reactions].map(([emoji, users]) => ({
        emoji: { id: null, name: emoji }, count: users.size, count_details: { burst: 0, normal: users.size },
        me: users.has(this.bot.id), me_burst: false, burst_colors: [],
      })),
    };
    if (message.guildId) json.guild_id = message.guildId;
    if (message.nonce !== undefined) json.nonce = message.nonce;
    if (message.messageReference) json.message_reference = message.messageReference;
    if (message.interactionMetadata) json.interaction_metadata = message.interactionMetadata;
    if (message.webhookId) {
      json.webhook_id = message.webhookId;
      json.application_id = message.webhookId;
    }
    if (message.threadId) {
      const thread = this.channels.get(message.threadId);
      if (thread) json.thread = thread;
    }
    return json;
  }

  newInteraction(input: Omit<FakeInteraction, 'id' | 'token' | 'createdAt' | 'expired' | 'rejectedCallbacks' | 'applicationId' | 'payload' | 'dispatchedAt'> & { ageMs?: number }): FakeInteraction {
    const createdAt = Date.now() - (input.ageMs ?? 0);
    const id = snowflake(createdAt);
    const token = `aW50ZXJhY3Rpb246${Buffer.from(id).toString("base64url")}${randomBytes(24).toString("base64url")}`;
    const { ageMs: _age, ...rest } = input;
    const interaction: FakeInteraction = {
      ...rest, id, token, createdAt, applicationId: this.applicationId, payload: {}, dispatchedAt: 0, expired: false, rejectedCallbacks: 0,
    };
    this.interactions.set(id, interaction);
    this.interactionsByToken.set(token, interaction);
    return interaction;
  }
}
