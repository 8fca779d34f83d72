import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDiscordHarness, buttonIds, type DiscordHarness } from '../fakes/discord/harness.ts';
import type { SentInteraction } from '../fakes/discord/index.ts';

/**
 * What Discord does to a long-running bot: 15-minute tokens that end mid-job, dropped gateway
 * connections, rate limits, and restarts that empty every cache.
 */
let h: DiscordHarness;
const MARGIN_MS = 5000;

beforeAll(async () => {
  h = await createDiscordHarness({ fake: { heartbeatIntervalMs: 1000 }, adapter: { tokenMarginMs: MARGIN_MS } });
}, 60_000);
afterAll(async () => {
  await h?.close();
});

async function job(sent: SentInteraction) {
  const status = await h.fake.waitFor(() => sent.original()?.content.includes('Queued') && sent.original(), 15_000, 'the queued reply');
  const g = await h.generationFor(status.id);
  return { status, g };
}

describe('the gateway', () => {
  it('beats and gets every heartbeat acknowledged', async () => {
    await h.fake.waitFor(() => h.fake.gateway.counters.heartbeats >= 2, 10_000, 'two heartbeats');
    const c = h.fake.counters();
    expect(c.heartbeatAcks).toBe(c.heartbeats);
    expect(c.identifies).toBe(1);
    expect(h.adapter.client.ws.ping).toBeGreaterThanOrEqual(0);
  });

  it('resumes after a disconnect during a job; events sent meanwhile are replayed and answered', async () => {
    const first = h.dream(h.ana, { prompt: 'fog rolls over a mountain pass at sunrise, drone shot #slow=4000', resolution: '540p' });
    const { g } = await job(first);
    h.fake.disconnect(4000);
    expect(h.fake.gateway.liveSessions()).toBe(0);
    const second = h.dream(h.bo, { prompt: 'a snail crosses a mossy log after rain, macro, shallow focus', resolution: '540p' });
    await h.fake.waitFor(() => h.fake.gateway.counters.resumed === 1, 10_000, 'the resume');
    const callback = await second.callback(5000);
    expect(callback.type).toBe(5);
    expect(callback.latencyMs).toBeLessThan(3000);
    const c = h.fake.counters();
    expect(c).toMatchObject({ identifies: 1, resumes: 1, resumed: 1, invalidSessions: 0 });
    expect(c.replayed).toBeGreaterThanOrEqual(1);
    const { g: g2 } = await job(second);
    expect((await h.settled(g.id)).state).toBe('delivered');
    expect((await h.settled(g2.id)).state).toBe('delivered');
    await h.clipMessage(g.id);
    await h.clipMessage(g2.id);
  }, 60_000);
});

describe('interaction tokens', () => {
  it('a job that outlives its token is still delivered, and after the 15 minutes only the bot token is used', async () => {
    // The interaction was created 15 min - 12 s ago: its token has 12 s left, the job takes about 15 s.
    const sent = h.dream(h.ana, { prompt: 'waves crash on black sand at dusk, slow pan #slow=14000', resolution: '540p' }, { ageMs: 15 * 60_000 - 12_000 });
    const expiresAt = sent.record.createdAt + 15 * 60_000;
    const { status, g } = await job(sent);
    expect((await h.settled(g.id)).state).toBe('delivered');
    const clip = await h.clipMessage(g.id);
    await h.fake.waitFor(() => status.content.includes('Done'), 10_000, 'the done edit');
    expect(Date.now()).toBeGreaterThan(expiresAt);
    const viaToken = h.fake.requests((r) => r.interactionId === sent.id && r.route.startsWith('PATCH /webhooks'));
    expect(viaToken.every((r) => r.status === 200 && r.at < expiresAt)).toBe(true);
    expect(h.fake.requests((r) => r.interactionId === sent.id && r.status === 401)).toHaveLength(0);
    const late = status.history.filter((e) => e.at >= expiresAt - MARGIN_MS);
    expect(late.length).toBeGreaterThan(0);
    expect(late.every((e) => e.via === 'bot')).toBe(true);
    expect(h.fake.requests((r) => r.route === 'POST /channels/:channel/messages' && r.path.includes(clip.channelId))[0]!.auth).toBe('bot');
  }, 60_000);

  it('a token Discord refuses (50027) is tried once, then the bot token takes over', async () => {
    const sent = h.dream(h.bo, { prompt: 'a candle flickers in a dark attic, dust in the light #slow=6500', resolution: '540p' });
    const { status, g } = await job(sent);
    h.fake.expireToken(sent.id);
    expect((await h.settled(g.id)).state).toBe('delivered');
    await h.fake.waitFor(() => status.content.includes('Done'), 10_000, 'the done edit');
    const refused = h.fake.requests((r) => r.interactionId === sent.id && r.status === 401);
    expect(refused).toHaveLength(1);
    expect(status.history.filter((e) => e.at > refused[0]!.at).every((e) => e.via === 'bot')).toBe(true);
    expect(status.history.some((e) => e.via === 'bot' && /Rendering/.test(e.content))).toBe(true);
  }, 60_000);
});

describe('rate limits', () => {
  it('a 429 on the clip post is waited out and the clip is posted once', async () => {
    h.fake.rateLimit({ route: 'POST /channels/:channel/messages', times: 1, retryAfter: 0.3 });
    const { g } = await job(h.dream(h.ana, { prompt: 'a tram glides through a neon street in the rain, side tracking', resolution: '540p' }));
    const clip = await h.clipMessage(g.id);
    const posts = h.fake.requests((r) => r.route === 'POST /channels/:channel/messages' && r.path.includes(clip.channelId));
    expect(posts.map((p) => p.status)).toEqual([429, 200]);
    expect(h.fake.messages().filter((m) => buttonIds(m).includes(`dream:reroll:${g.id}`))).toHaveLength(1);
    expect((await h.settled(g.id)).state).toBe('delivered');
  });
});

describe('restarts', () => {
  it('the status line of a job still rendering keeps moving after the bot restarts', async () => {
    const { status, g } = await job(h.dream(h.bo, { prompt: 'a lantern drifts down a river at night #slow=12000', resolution: '540p' }));
    await h.fake.waitFor(() => /Rendering/.test(status.content), 15_000, 'a progress edit before the restart');
    await h.restart();
    const restartedAt = Date.now();
    // The new process has never seen this interaction: it adopts the line and edits it with the bot token.
    const edit = await h.fake.waitFor(() => status.history.find((e) => e.at > restartedAt && !/Done/.test(e.content)), 20_000, 'a progress edit after the restart');
    expect(edit.via).toBe('bot');
    expect((await h.settled(g.id)).state).toBe('delivered');
    await h.fake.waitFor(() => status.content.includes('Done'), 10_000, 'the done edit');
    await h.clipMessage(g.id);
  }, 60_000);

  it('🔁 on a clip the new process has never seen re-rolls it', async () => {
    const { g } = await job(h.dream(h.ana, { prompt: 'a hot air balloon rises over lavender fields at dawn', resolution: '540p' }));
    const clip = await h.clipMessage(g.id);
    await h.settled(g.id);
    const identifies = h.fake.counters().identifies;
    await h.restart();
    // The thread comes back with GUILD_CREATE; the message does not: nothing in the new process has seen it.
    const thread = h.adapter.client.channels.cache.get(clip.channelId);
    expect(thread?.isTextBased() && thread.messages.cache.has(clip.id)).toBeFalsy();
    h.fake.addReaction({ message: clip, user: h.bo });
    const notice = await h.fake.waitFor(() => h.fake.messages(clip.channelId).find((m) => m.content.includes(`<@${h.bo.id}>`) && m.id !== clip.id), 15_000, 'the re-roll notice');
    const reroll = await h.settled((await h.generationFor(notice.id)).id);
    expect(reroll).toMatchObject({ state: 'delivered', parentId: g.id });
    const rerollClip = await h.clipMessage(reroll.id);
    expect(rerollClip.channelId).toBe(clip.channelId);
    expect(h.fake.counters().identifies).toBe(identifies + 1);
  }, 60_000);
});
