import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { findDelivery } from '../../src/deliveries.ts';
import { FakeWorkspace, type FakeMessage } from '../fakes/slack/index.ts';
import { startSlackHarness, type SlackHarness, clipInThread } from '../fakes/slack/harness.ts';
import { waitFor } from '../support/context.ts';

/**
 * Socket Mode end to end: the real Bolt App and adapter with SLACK_APP_TOKEN set (and no signing secret),
 * real Redis and Postgres, preview workers; the fake Slack hands out the WebSocket URL through
 * apps.connections.open and the driver pushes envelopes down it, reading the app's acks.
 */
let h: SlackHarness;

beforeAll(async () => {
  h = await startSlackHarness({ socketMode: true });
});
afterAll(() => h?.close());

const ws = () => h.fake.ws;
const text = (m: { text: string; blocks?: unknown[] }) => FakeWorkspace.textOf(m);

const clipIn = (channel: string, thread: string) => clipInThread(ws(), channel, thread, 30_000);

async function callApi(method: string, token: string): Promise<Record<string, unknown>> {
  const res = await fetch(`${h.fake.apiUrl}${method}`, { method: 'POST', headers: { authorization: `Bearer ${token}`, 'content-type': 'application/x-www-form-urlencoded' }, body: '' });
  return (await res.json()) as Record<string, unknown>;
}

describe('slack: Socket Mode', () => {
  it('connects with the app-level token only, and takes no HTTP route', async () => {
    expect(h.fake.socket.connections).toBe(1);
    const opened = ws().callsTo('apps.connections.open');
    expect(opened).toHaveLength(1);
    expect(opened[0]).toMatchObject({ ok: true, token: h.fake.socket.appToken });
    // The fake itself refuses the wrong kind of token, as Slack does.
    expect(await callApi('apps.connections.open', ws().botToken)).toMatchObject({ ok: false, error: 'not_allowed_token_type' });
    expect(await callApi('apps.connections.open', 'xapp-1-A0DREAMBOT-0-nope')).toMatchObject({ ok: false, error: 'invalid_auth' });
    // No request URL in Socket Mode.
    expect((await fetch(`${h.url}/slack/events`, { method: 'POST', body: '{}', headers: { 'content-type': 'application/json' } })).status).toBe(404);
  });

  it('/dream over the socket: the envelope is acked at once, the job message is posted and the clip threaded under it', async () => {
    const res = await h.driver.command('/dream', 'a red fox in snow --res 540p', 'U0BO', 'C0GENERAL');
    expect(res.status).toBe(200);
    expect(res.ack?.envelopeId).toBe(res.envelopeId);
    expect(res.ms).toBeLessThan(3000);
    expect(res.text).toBe('');

    const job = await waitFor(async () => ws().channelMessages('C0GENERAL').find((m) => m.user === ws().botUserId && text(m).includes('a red fox in snow')), 15_000, 'the job message');
    expect(job.threadTs).toBeUndefined();
    expect(text(job)).toMatch(/<@U0BO>/);
    const { file, card } = await clipIn('C0GENERAL', job.ts);
    expect(ws().files.get(file.files![0]!)).toMatchObject({ mimetype: 'video/mp4', completed: true, user: ws().botUserId });
    const g = await waitFor(async () => (await h.generations()).find((x) => x.request.prompt === 'a red fox in snow'), 5000, 'the generation');
    expect(g.replyTo).toMatchObject({ platform: 'slack', channelId: 'C0GENERAL', userId: 'U0BO' });
    expect(await h.settled(g.id)).toMatchObject({ state: 'delivered', chargedCredits: 1 });
    expect(await findDelivery(h.rt.db, g.id, 'slack', 'clip')).toMatchObject({ channelId: 'C0GENERAL', messageId: `C0GENERAL:${card.ts}` });
    expect(ws().responsePosts).toEqual([]);
  });

  it('🔁 as an events_api envelope re-rolls once; the same envelope redelivered with retry_attempt 1 makes no second job', async () => {
    const g = (await h.generations()).find((x) => x.request.prompt === 'a red fox in snow')!;
    const file = await waitFor(() => findDelivery(h.rt.db, g.id, 'slack', 'file_message'), 10_000, 'the file message ts');
    const fileTs = file.messageId!.split(':').at(-1)!;

    const sent = await h.driver.react('U0CY', 'C0GENERAL', fileTs, 'repeat');
    expect(sent.status).toBe(200);
    expect(sent.ack?.envelopeId).toBe(sent.envelopeId);
    const replay = { type: 'reaction_added', user: 'U0CY', reaction: 'repeat', item_user: ws().botUserId, item: { type: 'message', channel: 'C0GENERAL', ts: fileTs } };
    const again = await h.driver.event(replay, { eventId: sent.eventId, envelopeId: sent.envelopeId!, retryNum: 1, retryReason: 'timeout' });
    expect(again.status).toBe(200);
    expect(again.ack?.envelopeId).toBe(sent.envelopeId);
    expect(h.fake.socket.sent.filter((e) => e.envelope_id === sent.envelopeId).map((e) => e.retry_attempt)).toEqual([0, 1]);

    const child = await waitFor(async () => (await h.generations()).find((x) => x.parentId === g.id), 15_000, 'the re-roll');
    expect(child.replyTo).toMatchObject({ userId: 'U0CY' });
    expect((await h.settled(child.id)).state).toBe('delivered');
    await h.adapter.idle();
    expect((await h.generations()).filter((x) => x.parentId === g.id)).toHaveLength(1);
  });

  it('a `disconnect` from Slack: the app opens a new connection and keeps serving', async () => {
    h.fake.socket.disconnect('refresh_requested');
    await h.fake.socket.connected(2);
    expect(ws().callsTo('apps.connections.open').filter((c) => c.ok && c.token === h.fake.socket.appToken)).toHaveLength(2);
    const before = (await h.generations()).length;
    const res = await h.driver.command('/dream', 'a cat --ar 5:4', 'U0CY', 'C0GENERAL');
    expect(res.status).toBe(200);
    const note = await waitFor(async () => ws().ephemeralsFor('U0CY').find((e) => /--ar 5:4/.test(e.text)), 10_000, 'an ephemeral');
    expect(note.text).toMatch(/Nothing was charged/);
    expect((await h.generations()).length).toBe(before);
  });
});
