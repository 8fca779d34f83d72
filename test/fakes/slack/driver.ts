import { createHmac, randomBytes } from 'node:crypto';
import { publicFile, publicMessage } from './methods.ts';
import type { FakeFile, FakeMessage, FakeWorkspace } from './model.ts';
import type { FakeSlackServer } from './server.ts';
import { newEnvelopeId, type EnvelopeType, type SocketAck } from './socket-mode.ts';

/**
 * Sends what Slack sends to an app's request URL, signed with the signing secret the way Slack signs
 * (v0=HMAC-SHA256 of `v0:<ts>:<raw body>`, platform-slack.md §9): slash commands (form), interactivity
 * (`payload=<json>`), Events API envelopes (JSON, with event_id and the retry headers). Trigger ids and
 * response URLs are minted in the fake, so views.open and respond() work against it.
 */
export interface SendOptions {
  /** Unix seconds; defaults to now. Older than 5 minutes must be refused. */
  timestamp?: number;
  /** Replaces the computed signature (forgery tests). */
  signature?: string;
  retryNum?: number;
  retryReason?: string;
  /** Socket Mode: reuse this envelope id (a redelivery of the same envelope). */
  envelopeId?: string;
}

export interface SlackResponse {
  status: number;
  text: string;
  json: Record<string, unknown> | null;
  ms: number;
  /** Socket Mode: the envelope's id and the app's ack of it (absent when none came). */
  envelopeId?: string;
  ack?: SocketAck;
}

export interface SentEvent extends SlackResponse {
  eventId: string;
}

export function signSlackRequest(secret: string, body: string, timestamp = Math.floor(Date.now() / 1000)): Record<string, string> {
  const signature = `v0=${createHmac('sha256', secret).update(`v0:${timestamp}:${body}`).digest('hex')}`;
  return { 'x-slack-request-timestamp': String(timestamp), 'x-slack-signature': signature };
}

export class SlackDriver {
  /**
   * Sends as `workspace` (default: the fake's first) would: its team, its org, its installation's kind.
   * `endpoint` 'socket': every request goes as a Socket Mode envelope instead (commands as slash_commands,
   * `payload=` forms as interactive, event envelopes as events_api) and its answer is the app's ack:
   * status 200 with the ack's payload (none when empty), or 504 when no ack came within 5 s.
   */
  constructor(private readonly fake: FakeSlackServer, private readonly endpoint: string, private readonly workspace?: FakeWorkspace) {}

  get ws(): FakeWorkspace {
    return this.workspace ?? this.fake.ws;
  }

  /** The org of an org-wide install, as interaction payloads name it (null otherwise). */
  private enterpriseObject() {
    return this.ws.enterpriseId ? { id: this.ws.enterpriseId, name: 'Org' } : null;
  }

  /** POSTs a raw body, signed unless told otherwise. */
  async post(body: string, contentType: string, options: SendOptions = {}): Promise<SlackResponse> {
    if (this.endpoint === 'socket') return this.viaSocket(body, contentType, options);
    const headers: Record<string, string> = { 'content-type': contentType, ...signSlackRequest(this.ws.signingSecret, body, options.timestamp) };
    if (options.signature !== undefined) headers['x-slack-signature'] = options.signature;
    if (options.retryNum !== undefined) headers['x-slack-retry-num'] = String(options.retryNum);
    if (options.retryReason !== undefined) headers['x-slack-retry-reason'] = options.retryReason;
    const started = performance.now();
    const res = await fetch(this.endpoint, { method: 'POST', headers, body });
    const text = await res.text();
    const ms = performance.now() - started;
    let json: Record<string, unknown> | null = null;
    try {
      json = text ? (JSON.parse(text) as Record<string, unknown>) : null;
    } catch {
      json = null;
    }
    return { status: res.status, text, json, ms };
  }

  /** The same request as a Socket Mode envelope; the ack is the answer. */
  private async viaSocket(body: string, contentType: string, options: SendOptions): Promise<SlackResponse> {
    let type: EnvelopeType;
    let payload: Record<string, unknown>;
    if (contentType.startsWith('application/json')) {
      type = 'events_api';
      payload = JSON.parse(body) as Record<string, unknown>;
    } else {
      const form = new URLSearchParams(body);
      const interactive = form.get('payload');
      type = interactive !== null ? 'interactive' : 'slash_commands';
      payload = interactive !== null ? (JSON.parse(interactive) as Record<string, unknown>) : Object.fromEntries(form);
    }
    const started = performance.now();
    const envelopeId = options.envelopeId ?? newEnvelopeId();
    const ack = await this.fake.socket.push(type, payload, {
      envelopeId,
      ...(options.retryNum !== undefined ? { retryAttempt: options.retryNum } : {}),
      ...(options.retryReason !== undefined ? { retryReason: options.retryReason } : {}),
    });
    const ms = ack?.ms ?? performance.now() - started;
    if (!ack) return { status: 504, text: '', json: null, ms, envelopeId };
    const answer = ack.payload && typeof ack.payload === 'object' && Object.keys(ack.payload).length ? (ack.payload as Record<string, unknown>) : null;
    return { status: 200, text: answer ? JSON.stringify(answer) : '', json: answer, ms, envelopeId, ack };
  }

  private userObject(userId: string) {
    const u = this.ws.user(userId);
    return { id: u.id, username: u.name, name: u.name, team_id: u.teamId ?? this.ws.teamId };
  }

  private teamObject() {
    return { id: this.ws.teamId, domain: this.ws.teamDomain, ...(this.ws.enterpriseId ? { enterprise_id: this.ws.enterpriseId } : {}) };
  }

  private interactive(payload: Record<string, unknown>, options?: SendOptions): Promise<SlackResponse> {
    const body = new URLSearchParams({ payload: JSON.stringify(payload) }).toString();
    return this.post(body, 'application/x-www-form-urlencoded', options);
  }

  /** A slash command typed by `user` in `channel`. */
  command(command: string, text: string, user: string, channel: string, options: SendOptions & { triggerId?: string } = {}): Promise<SlackResponse> & { triggerId: string } {
    const c = this.ws.channel(channel);
    const triggerId = options.triggerId ?? this.ws.mintTrigger(user);
    const fields: Record<string, string> = {
      token: 'legacy-verification-token', team_id: this.ws.teamId, team_domain: this.ws.teamDomain, channel_id: c.id, channel_name: c.name,
      user_id: user, user_name: this.ws.user(user).name, command, text, api_app_id: this.ws.appId,
      is_enterprise_install: String(this.ws.enterpriseInstall), response_url: this.ws.mintResponseUrl(this.fake.url), trigger_id: triggerId,
      ...(this.ws.enterpriseId ? { enterprise_id: this.ws.enterpriseId, enterprise_name: 'Org' } : {}),
    };
    const sent = this.post(new URLSearchParams(fields).toString(), 'application/x-www-form-urlencoded', options);
    return Object.assign(sent, { triggerId });
  }

  /** The "Dream this" style message shortcut on a stored message. */
  messageShortcut(callbackId: string, user: string, channel: string, messageTs: string, options?: SendOptions): Promise<SlackResponse> {
    const m = this.ws.message(channel, messageTs);
    const c = this.ws.channel(channel);
    return this.interactive({
      type: 'message_action', token: 'legacy-verification-token', action_ts: `${Date.now() / 1000}`, callback_id: callbackId,
      trigger_id: this.ws.mintTrigger(user), response_url: this.ws.mintResponseUrl(this.fake.url), message_ts: m.ts,
      team: this.teamObject(), user: this.userObject(user), channel: { id: c.id, name: c.name },
      is_enterprise_install: this.ws.enterpriseInstall, enterprise: this.enterpriseObject(),
      message: publicMessage(this.ws, this.fake.url, m),
    }, options);
  }

  /** A click on the button `actionId` of a stored bot message. */
  clickButton(user: string, channel: string, messageTs: string, actionId: string, options?: SendOptions): Promise<SlackResponse> {
    const m = this.ws.message(channel, messageTs);
    const { block, element } = findElement(m.blocks ?? [], actionId);
    const c = this.ws.channel(channel);
    return this.interactive({
      type: 'block_actions', token: 'legacy-verification-token', api_app_id: this.ws.appId, trigger_id: this.ws.mintTrigger(user),
      team: this.teamObject(), user: this.userObject(user), enterprise: this.ws.enterpriseInstall ? this.enterpriseObject() : null, is_enterprise_install: this.ws.enterpriseInstall,
      container: { type: 'message', message_ts: m.ts, channel_id: c.id, is_ephemeral: false, ...(m.threadTs ? { thread_ts: m.threadTs } : {}) },
      channel: { id: c.id, name: c.name }, message: publicMessage(this.ws, this.fake.url, m), state: { values: {} },
      response_url: this.ws.mintResponseUrl(this.fake.url),
      actions: [{ ...element, block_id: block.block_id, action_ts: `${Date.now() / 1000}` }],
    }, options);
  }

  /** A click on a button of the App Home view published for `user`. */
  clickHomeButton(user: string, actionId: string, options?: SendOptions): Promise<SlackResponse> {
    const home = this.ws.homes.get(user);
    if (!home) throw new Error(`no Home view published for ${user}`);
    const { block, element } = findElement((home.view.blocks as unknown[]) ?? [], actionId);
    return this.interactive({
      type: 'block_actions', token: 'legacy-verification-token', api_app_id: this.ws.appId, trigger_id: this.ws.mintTrigger(user),
      team: this.teamObject(), user: this.userObject(user), enterprise: this.ws.enterpriseInstall ? this.enterpriseObject() : null, is_enterprise_install: this.ws.enterpriseInstall,
      container: { type: 'view', view_id: home.id },
      view: { id: home.id, type: 'home', blocks: home.view.blocks, private_metadata: home.view.private_metadata ?? '', callback_id: home.view.callback_id ?? '', state: { values: {} }, hash: home.hash, app_id: this.ws.appId, team_id: this.ws.teamId, bot_id: this.ws.botId },
      actions: [{ ...element, block_id: block.block_id, action_ts: `${Date.now() / 1000}` }],
    }, options);
  }

  /**
   * Submits the modal `viewId` with `values` keyed by block id: a string for text inputs and selects, a
   * boolean for a single checkbox, FakeFile[] for file inputs. Returns the app's answer (errors, update).
   */
  submitView(user: string, viewId: string, values: Record<string, string | boolean | FakeFile[] | undefined>, options?: SendOptions): Promise<SlackResponse> {
    const stored = this.ws.views.get(viewId);
    if (!stored) throw new Error(`no view ${viewId}`);
    const state: Record<string, Record<string, unknown>> = {};
    for (const raw of (stored.view.blocks as Record<string, unknown>[]) ?? []) {
      if (raw.type !== 'input') continue;
      const el = raw.element as Record<string, unknown>;
      const blockId = String(raw.block_id);
      const actionId = String(el.action_id);
      const given = blockId in values ? values[blockId] : initialOf(el);
      state[blockId] = { [actionId]: elementState(this.ws, this.fake.url, el, given) };
    }
    return this.interactive({
      type: 'view_submission', token: 'legacy-verification-token', api_app_id: this.ws.appId, trigger_id: this.ws.mintTrigger(user),
      team: this.teamObject(), user: this.userObject(user), enterprise: this.ws.enterpriseInstall ? this.enterpriseObject() : null, is_enterprise_install: this.ws.enterpriseInstall, response_urls: [],
      view: {
        id: stored.id, team_id: this.ws.teamId, type: 'modal', blocks: stored.view.blocks, private_metadata: stored.view.private_metadata ?? '',
        callback_id: stored.view.callback_id ?? '', state: { values: state }, hash: stored.hash, title: stored.view.title,
        submit: stored.view.submit ?? null, close: stored.view.close ?? null, clear_on_close: false, notify_on_close: false,
        previous_view_id: null, root_view_id: stored.rootViewId, app_id: this.ws.appId, external_id: '', app_installed_team_id: this.ws.teamId, bot_id: this.ws.botId,
      },
    }, options);
  }

  /** An Events API envelope around `event`; pass the same eventId with retryNum to replay a retry. */
  async event(event: Record<string, unknown>, options: SendOptions & { eventId?: string } = {}): Promise<SentEvent> {
    const eventId = options.eventId ?? `Ev${randomBytes(5).toString('hex').toUpperCase()}`;
    const envelope = {
      token: 'legacy-verification-token', team_id: this.ws.teamId, context_team_id: this.ws.teamId, context_enterprise_id: this.ws.enterpriseId ?? null,
      api_app_id: this.ws.appId, event: { event_ts: `${Date.now() / 1000}`, ...event }, type: 'event_callback', event_id: eventId,
      event_time: Math.floor(Date.now() / 1000), is_ext_shared_channel: false,
      event_context: `4-${randomBytes(12).toString('hex')}`,
      ...(this.ws.enterpriseId ? { enterprise_id: this.ws.enterpriseId } : {}),
      // An org-wide installation is the org's, not a workspace's: its authorization names no team.
      authorizations: [{ enterprise_id: this.ws.enterpriseId ?? null, team_id: this.ws.enterpriseInstall ? null : this.ws.teamId, user_id: this.ws.botUserId, is_bot: true, is_enterprise_install: this.ws.enterpriseInstall }],
    };
    const res = await this.post(JSON.stringify(envelope), 'application/json', options);
    return { ...res, eventId };
  }

  /**
   * `user` posts `text` mentioning the bot (optionally with files, optionally in a thread); the message is
   * stored in the fake and the app_mention event sent. Returns the message and the event's response.
   */
  async mention(user: string, channel: string, text: string, options: SendOptions & { threadTs?: string; files?: FakeFile[]; eventId?: string } = {}): Promise<{ message: FakeMessage; sent: SentEvent }> {
    const full = text.includes(`<@${this.ws.botUserId}>`) ? text : `<@${this.ws.botUserId}> ${text}`;
    const message = this.ws.postAsUser(user, channel, full, options);
    const stored = publicMessage(this.ws, this.fake.url, message);
    const sent = await this.event({
      type: 'app_mention', user, text: full, ts: message.ts, channel: message.channel, event_ts: message.ts,
      ...(message.threadTs ? { thread_ts: message.threadTs } : {}), ...(stored.files ? { files: stored.files } : {}),
    }, options);
    return { message, sent };
  }

  /** `user` reacts to a stored message; the reaction is added in the fake and reaction_added sent. */
  async react(user: string, channel: string, ts: string, name: string, options: SendOptions & { eventId?: string } = {}): Promise<SentEvent> {
    const message = this.ws.react(user, channel, ts, name);
    return this.event({ type: 'reaction_added', user, reaction: name, item_user: message.user, item: { type: 'message', channel, ts }, event_ts: `${Date.now() / 1000}` }, options);
  }

  /** Slack tells the app it was uninstalled (call `fake.oauth.uninstall` first: the tokens stop working as this is sent). */
  appUninstalled(options?: SendOptions): Promise<SentEvent> {
    return this.event({ type: 'app_uninstalled' }, options);
  }

  /** Slack tells the app tokens were revoked: bot tokens are listed by bot user id. */
  tokensRevoked(tokens: { oauth?: string[]; bot?: string[] }, options?: SendOptions): Promise<SentEvent> {
    return this.event({ type: 'tokens_revoked', tokens }, options);
  }

  homeOpened(user: string, options?: SendOptions): Promise<SentEvent> {
    return this.event({ type: 'app_home_opened', user, channel: `D${user.slice(1)}`, tab: 'home', event_ts: `${Date.now() / 1000}` }, options);
  }

  /** A file object as an event or a file_input carries it. */
  filePayload(file: FakeFile): Record<string, unknown> {
    return publicFile(this.ws, this.fake.url, file);
  }
}

function findElement(blocks: unknown[], actionId: string): { block: Record<string, unknown>; element: Record<string, unknown> } {
  for (const raw of blocks) {
    const block = raw as Record<string, unknown>;
    const candidates = [...((block.elements as unknown[]) ?? []), ...(block.accessory ? [block.accessory] : [])] as Record<string, unknown>[];
    const element = candidates.find((e) => e.action_id === actionId);
    if (element) return { block, element };
  }
  throw new Error(`no element with action_id ${actionId}`);
}

function initialOf(el: Record<string, unknown>): string | boolean | undefined {
  if (el.type === 'plain_text_input' || el.type === 'number_input') return el.initial_value as string | undefined;
  if (el.type === 'static_select') return (el.initial_option as { value?: string } | undefined)?.value;
  if (el.type === 'checkboxes') return Array.isArray(el.initial_options) && el.initial_options.length > 0;
  return undefined;
}

function elementState(ws: FakeWorkspace, baseUrl: string, el: Record<string, unknown>, given: string | boolean | FakeFile[] | undefined): Record<string, unknown> {
  switch (el.type) {
    case 'plain_text_input':
      return { type: 'plain_text_input', value: typeof given === 'string' && given !== '' ? given : null };
    case 'number_input':
      return { type: 'number_input', value: typeof given === 'string' && given !== '' ? given : null };
    case 'static_select': {
      const option = ((el.options as { value: string; text: unknown }[]) ?? []).find((o) => o.value === given);
      if (given !== undefined && !option) throw new Error(`"${String(given)}" is not an option of ${String(el.action_id)}`);
      return { type: 'static_select', selected_option: option ?? null };
    }
    case 'checkboxes': {
      const options = (el.options as unknown[]) ?? [];
      return { type: 'checkboxes', selected_options: given === true ? options.slice(0, 1) : [] };
    }
    case 'file_input':
      return { type: 'file_input', files: Array.isArray(given) ? given.map((f) => publicFile(ws, baseUrl, f)) : [] };
    default:
      return { type: String(el.type), value: given ?? null };
  }
}
