import { webApi } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { seedWorkspace, startFakeSlack, type FakeSlackServer } from '../fakes/slack/index.ts';

/** The fake itself, through the real WebClient: it must fail where Slack fails, the way Slack fails. */
let fake: FakeSlackServer;
let client: webApi.WebClient;
let now = Date.now();
const quiet = { debug() {}, info() {}, warn() {}, error() {}, setLevel() {}, getLevel: () => webApi.LogLevel.ERROR, setName() {} };

beforeAll(async () => {
  fake = await startFakeSlack({ shareDelayMs: 500, now: () => now });
  seedWorkspace(fake.ws);
  client = new webApi.WebClient(fake.ws.botToken, { slackApiUrl: fake.apiUrl, retryConfig: { retries: 0 }, rejectRateLimitedCalls: true, logger: quiet });
});
afterAll(() => fake?.close());

const slackError = (p: Promise<unknown>) => p.then(() => null, (e: { data?: Record<string, unknown> }) => e.data ?? e);

describe('fake Slack Web API', () => {
  it('answers auth.test, and ok:false not_authed / invalid_auth for missing or wrong tokens', async () => {
    expect(await client.auth.test()).toMatchObject({ ok: true, user_id: fake.ws.botUserId, team_id: fake.ws.teamId, bot_id: fake.ws.botId });
    expect(await slackError(new webApi.WebClient(undefined, { slackApiUrl: fake.apiUrl, retryConfig: { retries: 0 } }).auth.test())).toMatchObject({ ok: false, error: 'not_authed' });
    expect(await slackError(new webApi.WebClient('xoxb-wrong', { slackApiUrl: fake.apiUrl, retryConfig: { retries: 0 } }).auth.test())).toMatchObject({ ok: false, error: 'invalid_auth' });
  });

  it('takes JSON bodies with a Bearer token, not with the token in the body', async () => {
    const post = (headers: Record<string, string>, body: unknown) => fetch(`${fake.apiUrl}chat.postMessage`, { method: 'POST', headers: { 'content-type': 'application/json; charset=utf-8', ...headers }, body: JSON.stringify(body) }).then((r) => r.json());
    expect(await post({ authorization: `Bearer ${fake.ws.botToken}` }, { channel: 'C0GENERAL', text: 'hi', blocks: [{ type: 'section', text: { type: 'mrkdwn', text: 'hi' } }] })).toMatchObject({ ok: true, channel: 'C0GENERAL' });
    expect(await post({}, { token: fake.ws.botToken, channel: 'C0GENERAL', text: 'hi' })).toMatchObject({ ok: false, error: 'not_authed' });
  });

  it('enforces scopes, channel access and Block Kit limits as Slack does', async () => {
    fake.ws.scopes.delete('users:read');
    expect(await slackError(client.users.info({ user: 'U0BO' }))).toMatchObject({ error: 'missing_scope', needed: 'users:read' });
    fake.ws.scopes.add('users:read');
    expect(await slackError(client.chat.postMessage({ channel: 'C0SECRET', text: 'x' }))).toMatchObject({ error: 'channel_not_found' });
    const long = await slackError(client.chat.postMessage({ channel: 'C0GENERAL', text: 'x', blocks: [{ type: 'actions', elements: [{ type: 'button', action_id: 'a', text: { type: 'plain_text', text: 'x'.repeat(76) } }] }] }));
    expect(long).toMatchObject({ error: 'invalid_blocks', response_metadata: { messages: [expect.stringMatching(/at most 75/)] } });
    expect(await slackError(client.chat.postMessage({ channel: 'C0GENERAL', text: 'x', thread_ts: '1.000001' }))).toMatchObject({ error: 'invalid_thread_ts' });
  });

  it('uploads with files.uploadV2 into a thread; shares show up late; url_private needs the bot token', async () => {
    const parent = await client.chat.postMessage({ channel: 'C0GENERAL', text: 'parent' });
    const res = await client.filesUploadV2({ channel_id: 'C0GENERAL', thread_ts: parent.ts!, file: Buffer.from('not really an mp4'), filename: 'clip.mp4', title: 'A clip' });
    const id = (res.files as { files: { id: string }[] }[])[0]!.files[0]!.id;
    const early = await client.files.info({ file: id });
    expect(early.file?.shares).toEqual({});
    now += 600;
    const late = await client.files.info({ file: id });
    const share = (late.file?.shares as { public: Record<string, { ts: string; thread_ts: string }[]> }).public.C0GENERAL![0]!;
    expect(share.thread_ts).toBe(parent.ts);
    expect(fake.ws.thread('C0GENERAL', parent.ts!).map((m) => m.files)).toEqual([[id]]);

    const url = late.file!.url_private_download!;
    const anonymous = await fetch(url);
    expect(anonymous.status).toBe(200);
    expect(anonymous.headers.get('content-type')).toMatch(/text\/html/);
    const authed = await fetch(url, { headers: { authorization: `Bearer ${fake.ws.botToken}` } });
    expect(authed.headers.get('content-type')).toBe('video/mp4');
    expect(await authed.text()).toBe('not really an mp4');
  });

  it('sends 429 with Retry-After when told to', async () => {
    fake.ws.failNext('chat.postMessage', { error: 'ratelimited', status: 429, retryAfter: 7 });
    const error = await client.chat.postMessage({ channel: 'C0GENERAL', text: 'x' }).catch((e: unknown) => e);
    expect(error).toMatchObject({ code: 'slack_webapi_rate_limited_error', retryAfter: 7 });
  });

  it('lets a trigger_id open one view, within 3 s, once', async () => {
    const view = { type: 'modal' as const, title: { type: 'plain_text' as const, text: 'Hi' }, blocks: [] };
    const trigger = fake.ws.mintTrigger('U0BO');
    expect(await client.views.open({ trigger_id: trigger, view })).toMatchObject({ ok: true });
    expect(await slackError(client.views.open({ trigger_id: trigger, view }))).toMatchObject({ error: 'exchanged_trigger_id' });
    const old = fake.ws.mintTrigger('U0BO');
    now += 3500;
    expect(await slackError(client.views.open({ trigger_id: old, view }))).toMatchObject({ error: 'expired_trigger_id' });
    expect(await slackError(client.views.open({ trigger_id: fake.ws.mintTrigger('U0BO'), view: { ...view, title: { type: 'plain_text', text: 'x'.repeat(25) } } }))).toMatchObject({ error: 'invalid_arguments' });
  });

  it('takes a response_url 5 times, then answers 404 used_url', async () => {
    const url = fake.ws.mintResponseUrl(fake.url);
    const statuses: number[] = [];
    for (let i = 0; i < 6; i++) statuses.push((await fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ text: `${i}` }) })).status);
    expect(statuses).toEqual([200, 200, 200, 200, 200, 404]);
  });
});
