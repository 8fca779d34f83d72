import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memberSummary } from '../../src/admin.ts';
import { findDelivery } from '../../src/deliveries.ts';
import { ScriptedBackend } from '../fakes/scripted-backend.ts';
import { FakeWorkspace, type FakeMessage } from '../fakes/slack/index.ts';
import { startSlackHarness, type SlackHarness, clipInThread } from '../fakes/slack/harness.ts';
import { waitFor } from '../support/context.ts';

let h: SlackHarness;
const team = { platform: 'slack' as const, externalId: 'T0FAKE0001' };

beforeAll(async () => {
  h = await startSlackHarness({ backends: (defaults) => new Map([['preview', new ScriptedBackend(defaults.get('preview')!, 2)]]) });
});
afterAll(() => h?.close());

const ws = () => h.fake.ws;
const text = (m: { text: string; blocks?: unknown[] }) => FakeWorkspace.textOf(m);

const clipIn = (channel: string, thread: string) => clipInThread(ws(), channel, thread, 60_000);

async function generationFor(prompt: string) {
  return waitFor(async () => (await h.generations()).find((g) => g.request.prompt === prompt), 15_000, `a generation for "${prompt}"`);
}

/** A delivered clip made with /dream: its generation, job message and the two messages in its thread. */
async function deliveredClip(prompt: string, user = 'U0BO') {
  await h.driver.command('/dream', `${prompt} --res 540p`, user, 'C0GENERAL');
  const g = await generationFor(prompt);
  const job = await waitFor(async () => ws().history('C0GENERAL').find((m) => text(m).includes(prompt) && m.user === ws().botUserId), 15_000, 'the job message');
  const clip = await clipIn('C0GENERAL', job.ts);
  await h.settled(g.id);
  return { g, job, ...clip };
}

describe('slack: reactions and buttons', () => {
  it('🔁 on the video re-rolls it in the same thread, charged to the reactor; the bot\'s own reactions do nothing', async () => {
    const { g, job, file } = await deliveredClip('a paper boat drifts down a stream');
    await waitFor(() => findDelivery(h.rt.db, g.id, 'slack', 'file_message'), 10_000, 'the file message ts');
    const before = await memberSummary(h.rt, team, { externalId: 'U0CY' });

    const own = await h.driver.event({ type: 'reaction_added', user: ws().botUserId, reaction: 'repeat', item_user: ws().botUserId, item: { type: 'message', channel: 'C0GENERAL', ts: file.ts } });
    expect(own.status).toBe(200);
    const sent = await h.driver.react('U0CY', 'C0GENERAL', file.ts, 'repeat');
    expect(sent.status).toBe(200);
    const replay = { type: 'reaction_added', user: 'U0CY', reaction: 'repeat', item_user: ws().botUserId, item: { type: 'message', channel: 'C0GENERAL', ts: file.ts } };
    expect((await h.driver.event(replay, { eventId: sent.eventId, retryNum: 1, retryReason: 'http_error' })).status).toBe(200);

    const child = await waitFor(async () => (await h.generations()).find((x) => x.parentId === g.id), 15_000, 'the re-roll');
    expect(child.request).toMatchObject({ prompt: g.request.prompt, resolution: '540p' });
    expect(child.replyTo).toMatchObject({ userId: 'U0CY', threadId: job.ts });
    const reply = await waitFor(async () => ws().thread('C0GENERAL', job.ts).find((m) => text(m).includes('re-rolled a clip (:repeat:)')), 10_000, 'the re-roll job message');
    expect(text(reply)).toMatch(/<@U0CY>/);
    expect((await h.settled(child.id)).state).toBe('delivered');
    const after = await memberSummary(h.rt, team, { externalId: 'U0CY' });
    expect(after.memberUsed).toBe(before.memberUsed + 1);
    expect((await h.generations()).filter((x) => x.parentId === g.id)).toHaveLength(1);
  });

  it('a double click on Re-roll makes one job', async () => {
    const { g, card } = await deliveredClip('two cats play chess');
    const [a, b] = await Promise.all([
      h.driver.clickButton('U0BO', 'C0GENERAL', card.ts, 'dream_reroll'),
      h.driver.clickButton('U0BO', 'C0GENERAL', card.ts, 'dream_reroll'),
    ]);
    expect([a.status, b.status]).toEqual([200, 200]);
    await waitFor(async () => (await h.generations()).find((x) => x.parentId === g.id), 15_000, 'the re-roll');
    await new Promise((r) => setTimeout(r, 1000));
    expect((await h.generations()).filter((x) => x.parentId === g.id)).toHaveLength(1);
  });

  it('Delete by someone else is refused; by the requester it removes the clip', async () => {
    const { g, job, card, file } = await deliveredClip('a kite over a beach');
    await h.driver.clickButton('U0CY', 'C0GENERAL', card.ts, 'dream_delete');
    const no = await waitFor(async () => ws().ephemeralsFor('U0CY').find((e) => e.text.includes('can delete it')), 10_000, 'the refusal');
    expect(no.text).toMatch(/Only <@U0BO>/);
    expect(ws().findMessage('C0GENERAL', card.ts)).toBeDefined();
    await h.driver.clickButton('U0BO', 'C0GENERAL', card.ts, 'dream_delete');
    await waitFor(async () => !ws().findMessage('C0GENERAL', card.ts) && !ws().findMessage('C0GENERAL', file.ts), 10_000, 'the clip to go');
    await waitFor(async () => text(ws().message('C0GENERAL', job.ts)).includes('Deleted by <@U0BO>'), 15_000, 'the job message to say so');
    expect(g.id).toBeTruthy();
  });
});

describe('slack: delivery is at least once, and never posts twice', () => {
  it('a card post that fails is retried without uploading the clip again; a repeated delivery is a no-op', async () => {
    await h.driver.command('/dream', 'a windmill in the fog --res 540p', 'U0BO', 'C0GENERAL');
    const job = await waitFor(async () => ws().history('C0GENERAL').find((m) => text(m).includes('windmill in the fog')), 15_000, 'the job message');
    ws().failNext('chat.postMessage', { error: 'internal_error' });
    const { card } = await clipIn('C0GENERAL', job.ts);
    const g = await generationFor('a windmill in the fog');
    expect((await h.settled(g.id)).state).toBe('delivered');
    const thread = () => ws().thread('C0GENERAL', job.ts);
    expect(thread().filter((m) => m.files?.length)).toHaveLength(1);
    expect(thread().filter((m) => m.blocks?.some((b) => (b as { type?: string }).type === 'actions'))).toHaveLength(1);
    expect(ws().callsTo('chat.postMessage').some((c) => c.error === 'internal_error')).toBe(true);

    const uploads = ws().callsTo('files.getUploadURLExternal').length;
    const again = await h.adapter.deliverer.deliverClip({ generation: g, clip: null });
    expect(again).toEqual({ channelId: 'C0GENERAL', messageId: `C0GENERAL:${card.ts}` });
    expect(ws().callsTo('files.getUploadURLExternal').length).toBe(uploads);
    expect(thread().filter((m) => m.files?.length)).toHaveLength(1);
  });
});

describe('slack: retries, signatures, progress', () => {
  it('the same event delivered three times (X-Slack-Retry-Num) makes one job and one job message', async () => {
    const parent = ws().postAsUser('U0BO', 'C0GENERAL', 'thread for retries');
    const message = ws().postAsUser('U0BO', 'C0GENERAL', `<@${ws().botUserId}> a lantern festival at night --res 540p`, { threadTs: parent.ts });
    const event = { type: 'app_mention', user: 'U0BO', text: message.text, ts: message.ts, channel: 'C0GENERAL', thread_ts: parent.ts, event_ts: message.ts };
    const first = await h.driver.event(event);
    const retries = await Promise.all([
      h.driver.event(event, { eventId: first.eventId, retryNum: 1, retryReason: 'http_timeout' }),
      h.driver.event(event, { eventId: first.eventId, retryNum: 2, retryReason: 'http_timeout' }),
    ]);
    expect([first, ...retries].map((r) => r.status)).toEqual([200, 200, 200]);
    const g = await generationFor('a lantern festival at night');
    await clipIn('C0GENERAL', parent.ts);
    await h.settled(g.id);
    await waitFor(async () => ws().thread('C0GENERAL', parent.ts).some((m) => text(m).includes('✅ Done')), 15_000, 'done');
    expect((await h.generations()).filter((x) => x.request.prompt === 'a lantern festival at night')).toHaveLength(1);
    expect(ws().thread('C0GENERAL', parent.ts).filter((m) => m.user === ws().botUserId && text(m).includes('asked for a clip'))).toHaveLength(1);
  });

  it('answers Slack\'s url_verification challenge', async () => {
    const res = await h.driver.post(JSON.stringify({ token: 'x', challenge: 'c-123', type: 'url_verification' }), 'application/json');
    expect(res).toMatchObject({ status: 200, json: { challenge: 'c-123' } });
  });

  it('a forged signature or a stale timestamp gets 401 and nothing happens', async () => {
    // Let the earlier jobs' last updates and file lookups finish, so any new call would be ours.
    await h.adapter.deliverer.settle();
    for (let seen = -1; seen !== ws().calls.length;) {
      seen = ws().calls.length;
      await new Promise((r) => setTimeout(r, 1000));
    }
    const calls = ws().calls.length;
    const count = (await h.generations()).length;
    const forged = await h.driver.command('/dream', 'a forged request', 'U0BO', 'C0GENERAL', { signature: `v0=${'0'.repeat(64)}` });
    const stale = await h.driver.command('/dream', 'a replayed request', 'U0BO', 'C0GENERAL', { timestamp: Math.floor(Date.now() / 1000) - 6 * 60 });
    const unsigned = await h.driver.post('{"type":"event_callback"}', 'application/json', { signature: '' });
    const forgedEvent = await h.driver.event({ type: 'app_mention', user: 'U0BO', text: 'hi', ts: '1.000001', channel: 'C0GENERAL' }, { signature: 'v0=abc' });
    expect([forged.status, stale.status, unsigned.status, forgedEvent.status]).toEqual([401, 401, 401, 401]);
    await new Promise((r) => setTimeout(r, 500));
    expect(ws().calls.length).toBe(calls);
    expect((await h.generations()).length).toBe(count);
  });

  it('a slow job shows its progress, updated no more often than every 5 s', async () => {
    await h.driver.command('/dream', 'a slow sunrise over hills #slow=6500 --res 540p', 'U0CY', 'C0GENERAL');
    const job = await waitFor(async () => ws().history('C0GENERAL').find((m) => text(m).includes('slow sunrise')), 15_000, 'the job message');
    await waitFor(async () => /Rendering/.test(text(ws().message('C0GENERAL', job.ts))), 20_000, 'a progress update');
    await clipIn('C0GENERAL', job.ts);
    await waitFor(async () => text(ws().message('C0GENERAL', job.ts)).includes('✅ Done'), 15_000, 'done');
    const times = [ws().callsTo('chat.postMessage').find((c) => c.result?.ts === job.ts)!.at, ...ws().callsTo('chat.update').filter((c) => c.ok && c.args.ts === job.ts).map((c) => c.at)];
    expect(times.length).toBeGreaterThanOrEqual(3);
    for (let i = 1; i < times.length; i++) expect(times[i]! - times[i - 1]!).toBeGreaterThanOrEqual(4900);
  });
});
