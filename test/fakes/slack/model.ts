import { randomBytes } from 'node:crypto';

/**
 * The in-memory Slack the fake Web API serves: a workspace with users, channels, messages (threads
 * are messages with a `threadTs`), files, modal and Home views, triggers and response URLs. Tests read it
 * directly (`channelMessages`, `thread`, `calls`) to see what the app really posted. The server holds one
 * or more of them (multi-workspace OAuth tests) and routes each call by its bot token.
 */

export interface FakeUser {
  id: string;
  name: string;
  realName?: string;
  isAdmin?: boolean;
  isOwner?: boolean;
  isPrimaryOwner?: boolean;
  isBot?: boolean;
  teamId?: string;
}

export interface FakeChannel {
  id: string;
  name: string;
  isPrivate?: boolean;
  /** Whether the bot was invited. Public channels still accept posts with chat:write.public. */
  botIsMember?: boolean;
}

export interface FakeFile {
  id: string;
  name: string;
  title: string;
  mimetype: string;
  filetype: string;
  user: string;
  created: number;
  data: Buffer | null;
  /** The length files.getUploadURLExternal was told. */
  declaredLength?: number;
  altText?: string;
  completed: boolean;
  /** Where the file was shared, and from when files.info may show it (shares fill in asynchronously). */
  shares: { channel: string; ts: string; threadTs?: string; visibleAt: number }[];
  deleted?: boolean;
}

export interface FakeReaction {
  name: string;
  users: string[];
}

export interface FakeMessage {
  channel: string;
  ts: string;
  user: string;
  botId?: string;
  text: string;
  blocks?: unknown[];
  threadTs?: string;
  files?: string[];
  reactions: FakeReaction[];
  edits: number;
  deleted?: boolean;
  subtype?: string;
}

export interface FakeEphemeral {
  channel: string;
  user: string;
  text: string;
  blocks?: unknown[];
  threadTs?: string;
  messageTs: string;
}

export interface FakeView {
  id: string;
  type: 'modal' | 'home';
  user: string;
  view: Record<string, unknown>;
  hash: string;
  rootViewId: string;
  previousViewId: string | null;
  /** How many times views.update / views.publish replaced it. */
  updates: number;
}

export interface ApiCall {
  method: string;
  args: Record<string, unknown>;
  token: string | undefined;
  at: number;
  ok: boolean;
  error?: string;
  /** What an ok call answered. */
  result?: Record<string, unknown>;
}

export interface Fault {
  error: string;
  /** 429 sends Retry-After; anything else is an HTTP status with an ok:false body. 200 by default. */
  status?: number;
  retryAfter?: number;
  times: number;
}

export interface ResponseUrlPost {
  id: string;
  body: Record<string, unknown>;
  at: number;
}

export interface FakeSlackOptions {
  teamId?: string;
  teamDomain?: string;
  enterpriseId?: string;
  botToken?: string;
  botUserId?: string;
  botId?: string;
  appId?: string;
  signingSecret?: string;
  scopes?: string[];
  /** Milliseconds before a completed upload's share shows in files.info (node-slack-sdk #1865). */
  shareDelayMs?: number;
  now?: () => number;
  /**
   * Whether the app is already installed here with `botToken` (single-workspace mode; the default). False:
   * no token works until an OAuth install (oauth.v2.access) issues one.
   */
  installed?: boolean;
  /** Goes into every id this workspace mints (F…, C…, V…), so ids of two workspaces never collide. Default "0". */
  idTag?: string;
}

export const DEFAULT_SCOPES = [
  'app_mentions:read', 'chat:write', 'chat:write.public', 'commands', 'files:read', 'files:write',
  'reactions:read', 'reactions:write', 'users:read', 'channels:read', 'groups:read',
];

const TRIGGER_TTL_MS = 3000;
const RESPONSE_URL_USES = 5;
const RESPONSE_URL_TTL_MS = 30 * 60 * 1000;

export class SlackError extends Error {
  constructor(readonly error: string, readonly extra: Record<string, unknown> = {}) {
    super(error);
  }
}

export class FakeWorkspace {
  readonly teamId: string;
  readonly teamDomain: string;
  readonly enterpriseId: string | undefined;
  /** The bot token of the current installation ("" while the app is not installed here). */
  botToken: string;
  /** Every bot token the Web API accepts for this workspace (an org-wide install's token is in each of its workspaces). */
  readonly tokens = new Set<string>();
  /** The app is installed org-wide (on the enterprise), not on this workspace alone. */
  enterpriseInstall = false;
  readonly botUserId: string;
  readonly botId: string;
  readonly appId: string;
  readonly signingSecret: string;
  scopes: Set<string>;
  shareDelayMs: number;
  now: () => number;

  readonly users = new Map<string, FakeUser>();
  readonly channels = new Map<string, FakeChannel>();
  readonly messages = new Map<string, FakeMessage[]>();
  readonly files = new Map<string, FakeFile>();
  readonly views = new Map<string, FakeView>();
  readonly homes = new Map<string, FakeView>();
  readonly ephemerals: FakeEphemeral[] = [];
  readonly calls: ApiCall[] = [];
  readonly responsePosts: ResponseUrlPost[] = [];
  readonly faults = new Map<string, Fault[]>();
  private readonly triggers = new Map<string, { issuedAt: number; used: boolean; user: string }>();
  private readonly responseUrls = new Map<string, { issuedAt: number; uses: number }>();
  private lastTs = 0;
  private seq = 0;
  private readonly idTag: string;

  constructor(options: FakeSlackOptions = {}) {
    this.teamId = options.teamId ?? 'T0FAKE0001';
    this.teamDomain = options.teamDomain ?? 'dreamers';
    this.enterpriseId = options.enterpriseId;
    this.botToken = options.installed === false ? '' : (options.botToken ?? `xoxb-fake-${randomBytes(8).toString('hex')}`);
    if (this.botToken) this.tokens.add(this.botToken);
    this.idTag = options.idTag ?? '0';
    this.botUserId = options.botUserId ?? 'U0DREAMBOT';
    this.botId = options.botId ?? 'B0DREAMBOT';
    this.appId = options.appId ?? 'A0DREAMBOT';
    this.signingSecret = options.signingSecret ?? randomBytes(16).toString('hex');
    this.scopes = new Set(options.scopes ?? DEFAULT_SCOPES);
    this.shareDelayMs = options.shareDelayMs ?? 300;
    this.now = options.now ?? Date.now;
    this.users.set(this.botUserId, { id: this.botUserId, name: 'dreambot', isBot: true });
  }

  id(prefix: string): string {
    this.seq += 1;
    return `${prefix}${this.idTag}${this.seq.toString(36).toUpperCase().padStart(8, '0')}`;
  }

  /** Slack message timestamps: seconds.micros, unique and increasing within the workspace. */
  nextTs(): string {
    const micros = Math.max(this.now() * 1000, this.lastTs + 1);
    this.lastTs = micros;
    return `${Math.floor(micros / 1e6)}.${String(micros % 1e6).padStart(6, '0')}`;
  }

  addUser(user: Partial<FakeUser> & { name: string }): FakeUser {
    const full: FakeUser = { id: user.id ?? this.id('U'), teamId: this.teamId, ...user };
    this.users.set(full.id, full);
    return full;
  }

  addChannel(channel: Partial<FakeChannel> & { name: string }): FakeChannel {
    const full: FakeChannel = { id: channel.id ?? this.id('C'), botIsMember: true, ...channel };
    this.channels.set(full.id, full);
    this.messages.set(full.id, []);
    return full;
  }

  channel(idOrName: string): FakeChannel {
    const found = this.channels.get(idOrName) ?? [...this.channels.values()].find((c) => `#${c.name}` === idOrName || c.name === idOrName);
    if (!found) throw new SlackError('channel_not_found');
    return found;
  }

  user(id: string): FakeUser {
    const found = this.users.get(id);
    if (!found) throw new SlackError('user_not_found');
    return found;
  }

  /** Every live message in a channel, threads included, oldest first. */
  channelMessages(channel: string): FakeMessage[] {
    return (this.messages.get(channel) ?? []).filter((m) => !m.deleted);
  }

  /** Top-level messages only. */
  history(channel: string): FakeMessage[] {
    return this.channelMessages(channel).filter((m) => !m.threadTs || m.threadTs === m.ts);
  }

  /** The replies under a parent, oldest first (the parent itself excluded). */
  thread(channel: string, parentTs: string): FakeMessage[] {
    return this.channelMessages(channel).filter((m) => m.threadTs === parentTs && m.ts !== parentTs);
  }

  findMessage(channel: string, ts: string): FakeMessage | undefined {
    return this.messages.get(channel)?.find((m) => m.ts === ts && !m.deleted);
  }

  message(channel: string, ts: string): FakeMessage {
    const found = this.findMessage(channel, ts);
    if (!found) throw new SlackError('message_not_found');
    return found;
  }

  addMessage(input: Omit<FakeMessage, 'ts' | 'reactions' | 'edits'> & { ts?: string }): FakeMessage {
    const channel = this.channel(input.channel);
    let threadTs = input.threadTs;
    if (threadTs !== undefined) {
      const parent = this.findMessage(channel.id, threadTs);
      if (!parent) throw new SlackError('invalid_thread_ts');
      // Replying to a reply lands in the parent's thread, as in Slack.
      threadTs = parent.threadTs ?? parent.ts;
    }
    const message: FakeMessage = { ...input, channel: channel.id, ts: input.ts ?? this.nextTs(), reactions: [], edits: 0, ...(threadTs ? { threadTs } : {}) };
    this.messages.get(channel.id)!.push(message);
    return message;
  }

  /** A member posts a message (optionally with files they uploaded), as Slack would store it. */
  postAsUser(user: string, channel: string, text: string, options: { threadTs?: string; files?: FakeFile[] } = {}): FakeMessage {
    const files = options.files?.map((f) => f.id);
    const message = this.addMessage({
      channel, user, text,
      ...(options.threadTs ? { threadTs: options.threadTs } : {}),
      ...(files?.length ? { files } : {}),
    });
    for (const f of options.files ?? []) f.shares.push({ channel: message.channel, ts: message.ts, visibleAt: this.now(), ...(message.threadTs ? { threadTs: message.threadTs } : {}) });
    return message;
  }

  /** A member uploads a file (before sharing it in a message). */
  uploadAsUser(user: string, file: { name: string; mimetype: string; data: Buffer; title?: string }): FakeFile {
    const f: FakeFile = {
      id: this.id('F'), name: file.name, title: file.title ?? file.name, mimetype: file.mimetype,
      filetype: file.name.split('.').pop()?.toLowerCase() ?? 'binary', user, created: Math.floor(this.now() / 1000),
      data: file.data, completed: true, shares: [],
    };
    this.files.set(f.id, f);
    return f;
  }

  react(user: string, channel: string, ts: string, name: string): FakeMessage {
    const message = this.message(channel, ts);
    const existing = message.reactions.find((r) => r.name === name);
    if (existing?.users.includes(user)) throw new SlackError('already_reacted');
    if (existing) existing.users.push(user);
    else message.reactions.push({ name, users: [user] });
    return message;
  }

  mintTrigger(user: string): string {
    const id = `${Math.floor(this.now() / 1000)}.${Math.floor(Math.random() * 1e12)}.${randomBytes(16).toString('hex')}`;
    this.triggers.set(id, { issuedAt: this.now(), used: false, user });
    return id;
  }

  /** A trigger works once, within 3 s (api.slack.com/docs/triggers). */
  exchangeTrigger(id: unknown): { user: string } {
    const trigger = typeof id === 'string' ? this.triggers.get(id) : undefined;
    if (!trigger) throw new SlackError('invalid_trigger_id');
    if (trigger.used) throw new SlackError('exchanged_trigger_id');
    if (this.now() - trigger.issuedAt > TRIGGER_TTL_MS) throw new SlackError('expired_trigger_id');
    trigger.used = true;
    return { user: trigger.user };
  }

  mintResponseUrl(baseUrl: string): string {
    const id = randomBytes(12).toString('hex');
    this.responseUrls.set(id, { issuedAt: this.now(), uses: 0 });
    return `${baseUrl}/response/${id}`;
  }

  hasResponseUrl(id: string): boolean {
    return this.responseUrls.has(id);
  }

  /** At most 5 uses within 30 minutes; then 404 like Slack. */
  useResponseUrl(id: string, body: Record<string, unknown>): 'ok' | 'used_url' | 'expired_url' | 'not_found' {
    const entry = this.responseUrls.get(id);
    if (!entry) return 'not_found';
    if (this.now() - entry.issuedAt > RESPONSE_URL_TTL_MS) return 'expired_url';
    if (entry.uses >= RESPONSE_URL_USES) return 'used_url';
    entry.uses += 1;
    this.responsePosts.push({ id, body, at: this.now() });
    return 'ok';
  }

  /** The next `times` calls to `method` fail with `error` (and 429 + Retry-After when `status` is 429). */
  failNext(method: string, fault: Omit<Fault, 'times'> & { times?: number }): void {
    const list = this.faults.get(method) ?? [];
    list.push({ times: 1, ...fault });
    this.faults.set(method, list);
  }

  takeFault(method: string): Fault | undefined {
    const list = this.faults.get(method);
    const fault = list?.[0];
    if (!fault) return undefined;
    fault.times -= 1;
    if (fault.times <= 0) list!.shift();
    return fault;
  }

  callsTo(method: string): ApiCall[] {
    return this.calls.filter((c) => c.method === method);
  }

  ephemeralsFor(user: string): FakeEphemeral[] {
    return this.ephemerals.filter((e) => e.user === user);
  }

  /** The visible text of a message: its text plus the text of its blocks. */
  static textOf(message: { text: string; blocks?: unknown[] }): string {
    const parts = [message.text];
    const walk = (node: unknown): void => {
      if (Array.isArray(node)) return node.forEach(walk);
      if (node && typeof node === 'object') {
        const n = node as Record<string, unknown>;
        if (typeof n.text === 'string') parts.push(n.text);
        for (const [k, v] of Object.entries(n)) if (k !== 'text' || typeof v !== 'string') walk(v);
      }
    };
    walk(message.blocks ?? []);
    return parts.join('\n');
  }
}
