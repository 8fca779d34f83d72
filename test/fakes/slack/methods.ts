import { createHash } from 'node:crypto';
import { blockProblems, viewProblems } from './blocks.ts';
import { FakeWorkspace, SlackError, type FakeFile, type FakeMessage, type FakeView } from './model.ts';

/**
 * The Web API methods the app calls, answered as Slack answers them: `{ok:true, …}` or
 * `{ok:false, error}` (HTTP 200), shapes after java-slack-sdk's json-logs samples.
 */
export interface MethodContext {
  ws: FakeWorkspace;
  baseUrl: string;
}

type Args = Record<string, unknown>;
type Method = (ctx: MethodContext, args: Args) => Record<string, unknown>;

function openModal(ws: FakeWorkspace, args: Args) {
  const view = checkView(args.view, 'modal');
  const { user } = ws.exchangeTrigger(args.trigger_id);
  const id = ws.id('V');
  const stored: FakeView = { id, type: 'modal', user, view, hash: hashOf(view), rootViewId: id, previousViewId: null, updates: 0 };
  ws.views.set(id, stored);
  return { view: publicView(ws, stored) };
}

/** Scopes each method needs; a token without them gets `missing_scope` with `needed`. */
export const methodScopes: Record<string, string | undefined> = {
  'auth.test': undefined,
  'chat.postMessage': 'chat:write',
  'chat.update': 'chat:write',
  'chat.delete': 'chat:write',
  'chat.postEphemeral': 'chat:write',
  'views.open': undefined,
  'views.update': undefined,
  'views.push': undefined,
  'views.publish': undefined,
  'users.info': 'users:read',
  'conversations.info': 'channels:read',
  'reactions.add': 'reactions:write',
  'files.getUploadURLExternal': 'files:write',
  'files.completeUploadExternal': 'files:write',
  'files.info': 'files:read',
  'files.delete': 'files:write',
};

function str(args: Args, key: string, required = true): string {
  const v = args[key];
  if (v === undefined || v === null || v === '') {
    if (required) throw new SlackError('invalid_arguments', { response_metadata: { messages: [`[ERROR] missing required field: ${key}`] } });
    return '';
  }
  return String(v);
}

function bool(v: unknown): boolean {
  return v === true || v === 'true' || v === '1' || v === 1;
}

export function fileUrls(ws: FakeWorkspace, baseUrl: string, f: FakeFile) {
  const name = encodeURIComponent(f.name);
  return {
    url_private: `${baseUrl}/files-pri/${ws.teamId}-${f.id}/${name}`,
    url_private_download: `${baseUrl}/files-pri/${ws.teamId}-${f.id}/download/${name}`,
    permalink: `${baseUrl}/files/${f.user}/${f.id}/${name}`,
  };
}

/** A file object as files.info, message payloads and file_input submissions carry it. */
export function publicFile(ws: FakeWorkspace, baseUrl: string, f: FakeFile): Record<string, unknown> {
  const now = ws.now();
  const visible = f.shares.filter((s) => s.visibleAt <= now);
  const shares: Record<string, Record<string, { ts: string; thread_ts?: string; reply_count: number }[]>> = {};
  for (const s of visible) {
    const kind = ws.channels.get(s.channel)?.isPrivate ? 'private' : 'public';
    ((shares[kind] ??= {})[s.channel] ??= []).push({ ts: s.ts, reply_count: 0, ...(s.threadTs ? { thread_ts: s.threadTs } : {}) });
  }
  return {
    id: f.id, created: f.created, timestamp: f.created, name: f.name, title: f.title,
    // The malware scan may leave mimetype empty for a moment on real uploads (node-slack-sdk #2040).
    mimetype: f.completed ? f.mimetype : '', filetype: f.filetype, pretty_type: f.filetype.toUpperCase(),
    user: f.user, user_team: ws.teamId, editable: false, size: f.data?.length ?? f.declaredLength ?? 0, mode: 'hosted',
    is_external: false, is_public: visible.length > 0, public_url_shared: false, display_as_bot: false,
    ...fileUrls(ws, baseUrl, f),
    ...(f.altText ? { alt_txt: f.altText } : {}),
    channels: [...new Set(visible.map((s) => s.channel))], groups: [], ims: [],
    shares, has_rich_preview: false, file_access: 'visible',
  };
}

export function publicMessage(ws: FakeWorkspace, baseUrl: string, m: FakeMessage): Record<string, unknown> {
  const replies = m.threadTs === undefined ? ws.thread(m.channel, m.ts) : [];
  return {
    type: 'message', ts: m.ts, user: m.user, text: m.text, team: ws.teamId,
    ...(m.botId ? { bot_id: m.botId, app_id: ws.appId } : {}),
    ...(m.subtype ? { subtype: m.subtype } : {}),
    ...(m.blocks ? { blocks: m.blocks } : {}),
    ...(m.threadTs ? { thread_ts: m.threadTs } : {}),
    ...(replies.length ? { thread_ts: m.ts, reply_count: replies.length } : {}),
    ...(m.files?.length ? { files: m.files.map((id) => ws.files.get(id)).filter((f): f is FakeFile => !!f && !f.deleted).map((f) => publicFile(ws, baseUrl, f)), upload: false } : {}),
    ...(m.reactions.length ? { reactions: m.reactions.map((r) => ({ name: r.name, users: r.users, count: r.users.length })) } : {}),
    ...(m.edits ? { edited: { user: m.user, ts: m.ts } } : {}),
  };
}

function publicView(ws: FakeWorkspace, v: FakeView): Record<string, unknown> {
  return {
    id: v.id, team_id: ws.teamId, app_id: ws.appId, bot_id: ws.botId, app_installed_team_id: ws.teamId,
    type: v.type, blocks: v.view.blocks ?? [], private_metadata: v.view.private_metadata ?? '', callback_id: v.view.callback_id ?? '',
    title: v.view.title ?? null, submit: v.view.submit ?? null, close: v.view.close ?? null, external_id: v.view.external_id ?? '',
    state: { values: {} }, hash: v.hash, clear_on_close: bool(v.view.clear_on_close), notify_on_close: bool(v.view.notify_on_close),
    root_view_id: v.rootViewId, previous_view_id: v.previousViewId,
  };
}

/** Can the bot post here? Members can; public channels also with chat:write.public. */
function postable(ws: FakeWorkspace, channelId: string) {
  const channel = ws.channel(channelId);
  if (!channel.botIsMember && (channel.isPrivate || !ws.scopes.has('chat:write.public'))) {
    throw new SlackError(channel.isPrivate ? 'channel_not_found' : 'not_in_channel');
  }
  return channel;
}

function messageContent(args: Args): { text: string; blocks?: unknown[] } {
  const text = typeof args.text === 'string' ? args.text : '';
  const blocks = args.blocks as unknown[] | undefined;
  if (!text && !(Array.isArray(blocks) && blocks.length) && !args.attachments) throw new SlackError('no_text');
  if (blocks !== undefined) {
    const problems = blockProblems(blocks, 'message');
    if (problems.length) throw new SlackError('invalid_blocks', { response_metadata: { messages: problems.map((p) => `[ERROR] ${p}`) } });
  }
  if ([...text].length > 40_000) throw new SlackError('msg_too_long');
  return { text, ...(Array.isArray(blocks) ? { blocks } : {}) };
}

function hashOf(view: unknown): string {
  return `${Math.floor(Date.now() / 1000)}.${createHash('sha1').update(JSON.stringify(view)).digest('hex').slice(0, 8)}`;
}

function checkView(view: unknown, surface: 'modal' | 'home'): Record<string, unknown> {
  if (!view || typeof view !== 'object') throw new SlackError('invalid_arguments', { response_metadata: { messages: ['[ERROR] missing required field: view'] } });
  if (JSON.stringify(view).length > 250_000) throw new SlackError('view_too_large');
  const problems = viewProblems(view, surface);
  if (problems.length) throw new SlackError('invalid_arguments', { response_metadata: { messages: problems.map((p) => `[ERROR] ${p}`) } });
  return view as Record<string, unknown>;
}

export const methods: Record<string, Method> = {
  'auth.test': ({ ws, baseUrl }) => ({
    url: `${baseUrl}/`, team: ws.teamDomain, user: 'dreambot', team_id: ws.teamId, user_id: ws.botUserId, bot_id: ws.botId,
    is_enterprise_install: ws.enterpriseInstall, ...(ws.enterpriseId ? { enterprise_id: ws.enterpriseId } : {}),
  }),

  'chat.postMessage': ({ ws, baseUrl }, args) => {
    const channel = postable(ws, str(args, 'channel'));
    const content = messageContent(args);
    const threadTs = args.thread_ts ? String(args.thread_ts) : undefined;
    const m = ws.addMessage({ channel: channel.id, user: ws.botUserId, botId: ws.botId, ...content, ...(threadTs ? { threadTs } : {}) });
    return { channel: channel.id, ts: m.ts, message: publicMessage(ws, baseUrl, m) };
  },

  'chat.update': ({ ws, baseUrl }, args) => {
    const channel = ws.channel(str(args, 'channel'));
    const m = ws.message(channel.id, str(args, 'ts'));
    if (m.user !== ws.botUserId) throw new SlackError('cant_update_message');
    const content = messageContent(args);
    m.text = content.text;
    if (content.blocks) m.blocks = content.blocks;
    else if (args.blocks === undefined) delete m.blocks;
    m.edits += 1;
    return { channel: channel.id, ts: m.ts, text: m.text, message: publicMessage(ws, baseUrl, m) };
  },

  'chat.delete': ({ ws }, args) => {
    const channel = ws.channel(str(args, 'channel'));
    const m = ws.message(channel.id, str(args, 'ts'));
    if (m.user !== ws.botUserId) throw new SlackError('cant_delete_message');
    m.deleted = true;
    return { channel: channel.id, ts: m.ts };
  },

  'chat.postEphemeral': ({ ws }, args) => {
    const channel = postable(ws, str(args, 'channel'));
    const user = ws.user(str(args, 'user'));
    const content = messageContent(args);
    const messageTs = ws.nextTs();
    ws.ephemerals.push({ channel: channel.id, user: user.id, ...content, messageTs, ...(args.thread_ts ? { threadTs: String(args.thread_ts) } : {}) });
    return { message_ts: messageTs };
  },

  // views.push opens on top of the member's current modal; this fake keeps no view stack, so both
  // methods spend the trigger and store a new modal the same way.
  'views.open': ({ ws }, args) => openModal(ws, args),
  'views.push': ({ ws }, args) => openModal(ws, args),

  'views.update': ({ ws }, args) => {
    const view = checkView(args.view, 'modal');
    const id = args.view_id ? String(args.view_id) : [...ws.views.values()].find((v) => v.view.external_id && v.view.external_id === args.external_id)?.id;
    const stored = id ? ws.views.get(id) : undefined;
    if (!stored) throw new SlackError('not_found');
    if (args.hash && args.hash !== stored.hash) throw new SlackError('hash_conflict');
    stored.view = view;
    stored.hash = hashOf(view);
    stored.updates += 1;
    return { view: publicView(ws, stored) };
  },

  'views.publish': ({ ws }, args) => {
    const view = checkView(args.view, 'home');
    const user = ws.user(str(args, 'user_id'));
    const existing = ws.homes.get(user.id);
    if (existing && args.hash && args.hash !== existing.hash) throw new SlackError('hash_conflict');
    const id = existing?.id ?? ws.id('V');
    const stored: FakeView = { id, type: 'home', user: user.id, view, hash: hashOf(view), rootViewId: id, previousViewId: null, updates: (existing?.updates ?? -1) + 1 };
    ws.homes.set(user.id, stored);
    ws.views.set(id, stored);
    return { view: publicView(ws, stored) };
  },

  'users.info': ({ ws }, args) => {
    const u = ws.user(str(args, 'user'));
    const profile = { real_name: u.realName ?? u.name, display_name: u.name, team: u.teamId ?? ws.teamId };
    return {
      user: {
        id: u.id, team_id: u.teamId ?? ws.teamId, name: u.name, real_name: u.realName ?? u.name, deleted: false,
        is_admin: !!u.isAdmin, is_owner: !!u.isOwner, is_primary_owner: !!u.isPrimaryOwner, is_restricted: false,
        is_ultra_restricted: false, is_bot: !!u.isBot, is_app_user: false, tz: 'Europe/Paris', profile,
      },
    };
  },

  'conversations.info': ({ ws }, args) => {
    const c = ws.channel(str(args, 'channel'));
    if (c.isPrivate && !c.botIsMember) throw new SlackError('channel_not_found');
    return {
      channel: {
        id: c.id, name: c.name, is_channel: !c.isPrivate, is_group: !!c.isPrivate, is_im: false, is_private: !!c.isPrivate,
        is_member: !!c.botIsMember, is_archived: false, created: 1700000000, context_team_id: ws.teamId,
      },
    };
  },

  'reactions.add': ({ ws }, args) => {
    const channel = ws.channel(str(args, 'channel'));
    ws.react(ws.botUserId, channel.id, str(args, 'timestamp'), str(args, 'name').replace(/:/g, ''));
    return {};
  },

  'files.getUploadURLExternal': ({ ws, baseUrl }, args) => {
    const filename = str(args, 'filename');
    const length = Number(str(args, 'length'));
    if (!Number.isInteger(length) || length <= 0) throw new SlackError('invalid_arguments', { response_metadata: { messages: ['[ERROR] length must be a positive integer'] } });
    const id = ws.id('F');
    const ext = filename.split('.').pop()?.toLowerCase() ?? 'binary';
    const mimetype = ({ mp4: 'video/mp4', png: 'image/png', jpg: 'image/jpeg', jpeg: 'image/jpeg', webp: 'image/webp', gif: 'image/gif' } as Record<string, string>)[ext] ?? 'application/octet-stream';
    ws.files.set(id, {
      id, name: filename, title: filename, mimetype, filetype: ext, user: ws.botUserId, created: Math.floor(ws.now() / 1000),
      data: null, declaredLength: length, completed: false, shares: [], ...(args.alt_text ? { altText: String(args.alt_text) } : {}),
    });
    return { upload_url: `${baseUrl}/upload/v1/${id}`, file_id: id };
  },

  'files.completeUploadExternal': ({ ws }, args) => {
    const list = args.files;
    if (!Array.isArray(list) || list.length === 0) throw new SlackError('invalid_arguments', { response_metadata: { messages: ['[ERROR] missing required field: files'] } });
    const files = list.map((entry) => {
      const f = ws.files.get(String((entry as { id?: unknown }).id));
      if (!f || f.deleted) throw new SlackError('file_not_found');
      if (!f.data) throw new SlackError('file_upload_not_complete');
      return { f, title: (entry as { title?: unknown }).title };
    });
    const channelId = args.channel_id ? String(args.channel_id) : args.channels ? String(args.channels).split(',')[0] : undefined;
    let channel: string | undefined;
    let threadTs = args.thread_ts ? String(args.thread_ts) : undefined;
    if (channelId) {
      channel = postable(ws, channelId).id;
      if (threadTs && !ws.findMessage(channel, threadTs)) throw new SlackError('invalid_thread_ts');
    } else threadTs = undefined;
    for (const { f, title } of files) {
      if (f.completed) throw new SlackError('file_already_completed');
      f.completed = true;
      if (typeof title === 'string' && title) f.title = title;
    }
    if (channel) {
      const blocks = args.blocks as unknown[] | undefined;
      const m = ws.addMessage({
        channel, user: ws.botUserId, botId: ws.botId, text: typeof args.initial_comment === 'string' ? args.initial_comment : '',
        files: files.map(({ f }) => f.id), ...(Array.isArray(blocks) ? { blocks } : {}), ...(threadTs ? { threadTs } : {}),
      });
      for (const { f } of files) f.shares.push({ channel, ts: m.ts, visibleAt: ws.now() + ws.shareDelayMs, ...(m.threadTs ? { threadTs: m.threadTs } : {}) });
    }
    return { files: files.map(({ f }) => ({ id: f.id, title: f.title })) };
  },

  'files.info': ({ ws, baseUrl }, args) => {
    const f = ws.files.get(str(args, 'file'));
    if (!f || f.deleted) throw new SlackError('file_not_found');
    return { file: publicFile(ws, baseUrl, f), comments: [], response_metadata: { next_cursor: '' } };
  },

  'files.delete': ({ ws }, args) => {
    const f = ws.files.get(str(args, 'file'));
    if (!f || f.deleted) throw new SlackError('file_not_found');
    if (f.user !== ws.botUserId) throw new SlackError('cant_delete_file');
    f.deleted = true;
    // Slack removes a file-only message along with its file.
    for (const s of f.shares) {
      const m = ws.findMessage(s.channel, s.ts);
      if (m && m.files?.every((id) => ws.files.get(id)?.deleted) && !m.text) m.deleted = true;
    }
    return {};
  },
};
