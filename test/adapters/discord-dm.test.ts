import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { createDiscordHarness, buttonIds, type DiscordHarness } from '../fakes/discord/harness.ts';

/** DISCORD_ALLOW_DMS (a personal team per member) and DISCORD_CLIP_IN_THREAD=false (clip as a reply). */
let h: DiscordHarness;

beforeAll(async () => {
  h = await createDiscordHarness({ adapter: { allowDms: true, clipInThread: false } });
}, 60_000);
afterAll(async () => {
  await h?.close();
});

describe('DMs and clips without threads', () => {
  it('makes a clip in a DM, billed to the member’s personal team', async () => {
    const dm = h.fake.dmChannel(h.ana);
    const sent = h.fake.sendCommand({ name: 'dream', channel: dm, user: h.ana, options: { prompt: 'a cat naps in a sunbeam on a wooden floor, slow push in', resolution: '540p' } });
    const status = await h.fake.waitFor(() => sent.original()?.content.includes('Queued') && sent.original(), 15_000);
    const g = await h.settled((await h.generationFor(status.id)).id);
    expect(g.state).toBe('delivered');
    const clip = await h.clipMessage(g.id);
    expect(clip.channelId).toBe(dm.id);
    expect(h.fake.state.channels.get(status.id)).toBeUndefined();
    const team = await h.runtime.db.execute(sql`select p.external_id from platform_accounts p where p.team_id = ${g.teamId}`);
    expect(team.map((r) => r.external_id)).toEqual([`user:${h.ana.id}`]);
  });

  it('posts the clip as a reply in the channel when threads are off', async () => {
    const sent = h.dream(h.bo, { prompt: 'a kite dances over dunes at golden hour, wide shot', resolution: '540p' });
    const status = await h.fake.waitFor(() => sent.original()?.content.includes('Queued') && sent.original(), 15_000);
    const g = await h.generationFor(status.id);
    const clip = await h.clipMessage(g.id);
    expect(clip.channelId).toBe(h.channel.id);
    expect(clip.messageReference).toMatchObject({ message_id: status.id });
    expect(buttonIds(clip)).toHaveLength(5);
    await h.fake.waitFor(() => status.content.includes('your clip is below'), 10_000);
  });

  it('a clip too large to upload with no PUBLIC_BASE_URL to link it fails openly and is not charged', async () => {
    h.fake.state.guilds.get(h.guild.id)!.attachmentSizeLimit = 5000;
    try {
      const before = (await h.available()) || 1000; // a first dream creates the team with 1000
      const sent = h.dream(h.ana, { prompt: 'a glass of water trembles on a table, macro, static', resolution: '540p' });
      const status = await h.fake.waitFor(() => sent.original()?.content.includes('Queued') && sent.original(), 15_000);
      const g = await h.settled((await h.generationFor(status.id)).id);
      expect(g).toMatchObject({ state: 'failed', chargedCredits: 0 });
      await h.fake.waitFor(() => status.content.includes("didn't work"), 10_000, 'the failure notice');
      expect(status.content).toMatch(/too large to upload.*PUBLIC_BASE_URL/);
      expect(await h.available()).toBe(before);
    } finally {
      h.fake.state.guilds.get(h.guild.id)!.attachmentSizeLimit = 10 * 1024 * 1024;
    }
  });

  it('keeps admin commands to servers', async () => {
    const sent = h.fake.sendCommand({ name: 'dream-admin', channel: h.fake.dmChannel(h.boss), user: h.boss, subcommand: 'usage' });
    const answer = await h.fake.waitFor(() => (sent.original()?.content ? sent.original() : undefined), 10_000);
    expect(answer.flags & 64).toBe(64);
    expect(answer.content).toMatch(/servers only/);
  });
});
