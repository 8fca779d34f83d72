import { mkdtemp, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAsset } from '../../src/assets.ts';
import { verifyAssetSignature } from '../../src/http/signing.ts';
import { probe } from '../../src/media/probe.ts';
import { createDiscordHarness, buttonIds, testPicture, type DiscordHarness } from '../fakes/discord/harness.ts';
import type { SentInteraction } from '../fakes/discord/index.ts';

/**
 * /dream end to end: the real discord.js Client against the fake Discord, real Postgres and Redis, the
 * Runtime's workers on the preview backend. Attachment URLs point at the fake on 127.0.0.1, hence
 * ALLOW_PRIVATE_IMAGE_URLS.
 */
let h: DiscordHarness;
let dir: string;

beforeAll(async () => {
  h = await createDiscordHarness({ env: { ALLOW_PRIVATE_IMAGE_URLS: 'true', PUBLIC_BASE_URL: 'https://dreambot.example', ASSET_SIGNING_SECRET: 'discord-test-secret-0123456789' } });
  dir = await mkdtemp(path.join(os.tmpdir(), 'dreambot-discord-'));
}, 60_000);
afterAll(async () => {
  await h?.close();
});

async function statusOf(sent: SentInteraction) {
  return h.fake.waitFor(() => sent.original()?.content.includes('Queued') && sent.original(), 15_000, 'the queued reply');
}

async function countGenerations(): Promise<number> {
  const rows = await h.runtime.db.execute(sql`select count(*) as n from generations`);
  return Number(rows[0]!.n);
}

/** The ephemeral answer a refused /dream gets: a direct reply, or a follow-up after the public defer was deleted. */
async function privateAnswer(sent: SentInteraction): Promise<string> {
  const message = await h.fake.waitFor(() => {
    const direct = sent.record.callback?.type === 4 ? sent.original() : undefined;
    return direct ?? sent.followUps()[0];
  }, 15_000, 'an ephemeral answer');
  expect(message.flags & 64).toBe(64);
  if (sent.record.callback?.type === 5) expect(sent.original()?.deleted).toBe(true);
  return message.content;
}

describe('/dream', () => {
  it('defers at once, replies with position and cost, posts the clip in a thread with buttons', async () => {
    // The team is created (with DEFAULT_TEAM_CREDITS) by its first dream.
    const before = (await h.available()) || 1000;
    const sent = h.dream(h.ana, { prompt: 'a red fox trots through fresh snow at dawn, low tracking shot', resolution: '540p' });
    const callback = await sent.callback();
    expect(callback.type).toBe(5);
    expect(callback.latencyMs).toBeLessThan(3000);
    const status = await statusOf(sent);
    expect(status.content).toMatch(/next up|ahead of yours/);
    expect(status.content).toContain(`Costs 1 credit · ${before - 1} credits left for the team`);
    const g = await h.generationFor(status.id);
    expect(g.replyTo).toMatchObject({ platform: 'discord', channelId: h.channel.id, messageId: status.id, userId: h.ana.id, startThread: true, attachmentSizeLimit: 10 * 1024 * 1024 });
    const clip = await h.clipMessage(g.id);
    // The thread is started on the reply, so its id is the reply's id.
    expect(clip.channelId).toBe(status.id);
    expect(h.fake.state.channels.get(clip.channelId)).toMatchObject({ type: 11, parent_id: h.channel.id });
    expect(buttonIds(clip)).toEqual(['reroll', 'remix', 'extend', 'upscale', 'delete'].map((a) => `dream:${a}:${g.id}`));
    expect(clip.attachments).toHaveLength(1);
    expect(clip.attachments[0]!.content_type).toBe('video/mp4');
    expect(clip.content).toContain('a red fox trots through fresh snow');
    expect(clip.content).toMatch(/`preview` · 5s · 540p · 16:9 · 1 credit · for <@\d+>/);
    expect(clip.content).toMatch(/Preview render/);
    // The bot seeds 🔁 right after posting the clip: a separate request, so wait for it rather than race it.
    await h.fake.waitFor(() => clip.reactions.get('🔁')?.has(h.fake.bot.id), 10_000, 'the seeded 🔁 reaction');
    const settled = await h.settled(g.id);
    expect(settled).toMatchObject({ state: 'delivered', chargedCredits: 1 });
    expect(await h.available()).toBe(before - 1);
    await h.fake.waitFor(() => sent.original()?.content.includes('Done'), 10_000, 'the done edit');
    // The clip went out with the bot token, never the interaction token.
    const post = h.fake.requests((r) => r.route === 'POST /channels/:channel/messages' && r.path.includes(clip.channelId));
    expect(post[0]).toMatchObject({ auth: 'bot', status: 200 });
    const rows = await h.runtime.db.execute(sql`select kind, message_id from deliveries where generation_id = ${g.id}`);
    expect(rows.map((r) => [r.kind, r.message_id])).toEqual([['clip', clip.id]]);
  });

  it('edits progress no more often than every 5 s, with state and percent', async () => {
    const sent = h.dream(h.ana, { prompt: 'a lighthouse beam sweeps over a stormy sea at night #slow=11000', resolution: '540p' });
    const status = await statusOf(sent);
    const g = await h.generationFor(status.id);
    await h.settled(g.id);
    await h.fake.waitFor(() => sent.original()?.content.includes('Done'), 10_000, 'the done edit');
    const message = sent.original()!;
    const edits = message.history.filter((e) => e.content && !e.content.includes('Done'));
    expect(edits.some((e) => /Rendering\*\* · \d+%/.test(e.content))).toBe(true);
    for (let i = 1; i < edits.length; i++) expect(edits[i]!.at - edits[i - 1]!.at).toBeGreaterThanOrEqual(4900);
  }, 60_000);

  it('animates an attached image towards an end image', async () => {
    const png = await testPicture(h.runtime.bins.ffmpeg, 'png', 'color=c=orange:s=320x180');
    const jpg = await testPicture(h.runtime.bins.ffmpeg, 'jpg', 'color=c=navy:s=320x180');
    const sent = h.dream(h.bo, {
      prompt: 'the sun sets over the sea, slow push in', resolution: '540p',
      image: { filename: 'start.png', contentType: 'image/png', data: png },
      end_image: { filename: 'end.jpg', contentType: 'image/jpeg', data: jpg },
    });
    const status = await statusOf(sent);
    const g = await h.generationFor(status.id);
    expect(g.request.startImageId).toMatch(/^[0-9a-f-]{36}$/);
    expect(g.request.endImageId).toMatch(/^[0-9a-f-]{36}$/);
    const assets = await h.runtime.db.execute(sql`select mime from assets where id in (${g.request.startImageId!}, ${g.request.endImageId!}) order by mime`);
    expect(assets.map((a) => a.mime)).toEqual(['image/jpeg', 'image/png']);
    const clip = await h.clipMessage(g.id);
    expect(clip.attachments).toHaveLength(1);
    expect((await h.settled(g.id)).state).toBe('delivered');
  });

  it('refuses a PDF as the image at once, privately, charging nothing', async () => {
    const before = { credits: await h.available(), generations: await countGenerations() };
    const pdf = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n');
    const sent = h.dream(h.ana, { prompt: 'animate this document', image: { filename: 'doc.pdf', contentType: 'application/pdf', data: pdf } });
    expect((await sent.callback()).type).toBe(4);
    expect(await privateAnswer(sent)).toMatch(/"doc\.pdf" is a PDF.*PNG, JPEG or WebP.*nothing was charged/);
    expect(await h.available()).toBe(before.credits);
    expect(await countGenerations()).toBe(before.generations);
  });

  it('refuses a PDF that claims to be a PNG once its bytes are read, privately', async () => {
    const before = { credits: await h.available(), generations: await countGenerations() };
    const pdf = Buffer.from('%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n');
    const sent = h.dream(h.ana, { prompt: 'animate this picture', image: { filename: 'cat.png', contentType: 'image/png', data: pdf } });
    expect((await sent.callback()).type).toBe(5);
    expect(await privateAnswer(sent)).toMatch(/PDF/);
    expect(await h.available()).toBe(before.credits);
    expect(await countGenerations()).toBe(before.generations);
  });

  it('answers a bad option privately without deferring', async () => {
    const sent = h.dream(h.ana, { prompt: 'hi' });
    expect((await sent.callback()).type).toBe(4);
    expect(await privateAnswer(sent)).toMatch(/Describe the clip/);
  });

  it('coaches a vague prompt under the queued reply', async () => {
    const sent = h.dream(h.bo, { prompt: 'a cat', resolution: '540p' });
    const status = await statusOf(sent);
    expect(status.content).toMatch(/Tip: short prompts leave a lot to chance/);
    await h.settled((await h.generationFor(status.id)).id);
  });

  it('re-encodes a clip that is over the server upload limit so it fits', async () => {
    // A push-in over a noisy picture makes a clip of several hundred KB; this server takes 150 KB per file.
    const limit = 150_000;
    const busy = await testPicture(h.runtime.bins.ffmpeg, 'png', 'nullsrc=s=640x360,geq=random(1)*255:128:128');
    h.fake.state.guilds.get(h.guild.id)!.attachmentSizeLimit = limit;
    try {
      const sent = h.dream(h.ana, {
        prompt: 'static on an old television, slow push in', resolution: '720p', camera: 'push_in',
        image: { filename: 'static.png', contentType: 'image/png', data: busy },
      });
      expect(sent.payload.attachment_size_limit).toBe(limit);
      const status = await statusOf(sent);
      const g = await h.generationFor(status.id);
      const clip = await h.clipMessage(g.id);
      const file = clip.attachments[0]!;
      const rendered = await readAsset(h.runtime.db, (await h.settled(g.id)).resultAssetId!);
      expect(rendered.size).toBeGreaterThan(limit);
      expect(file.size).toBeLessThanOrEqual(limit);
      expect(clip.content).toMatch(/Re-encoded to fit/);
      const out = path.join(dir, 'fitted.mp4');
      await writeFile(out, file.data);
      const info = await probe(h.runtime.bins.ffprobe, out);
      expect(info).toMatchObject({ codec: 'h264', faststart: true });
      expect(info.durationS).toBeGreaterThan(4.5);
    } finally {
      h.fake.state.guilds.get(h.guild.id)!.attachmentSizeLimit = 10 * 1024 * 1024;
    }
  }, 60_000);

  it('posts a signed link when the clip cannot fit even re-encoded', async () => {
    h.fake.state.guilds.get(h.guild.id)!.attachmentSizeLimit = 5000;
    try {
      const sent = h.dream(h.bo, { prompt: 'a glass of water trembles on a table, macro, static', resolution: '540p' });
      const status = await statusOf(sent);
      const g = await h.generationFor(status.id);
      const clip = await h.clipMessage(g.id);
      expect(clip.attachments).toHaveLength(0);
      const link = /(https:\/\/dreambot\.example\/assets\/\S+)/.exec(clip.content)?.[1];
      expect(link).toBeTruthy();
      const url = new URL(link!);
      const settled = await h.settled(g.id);
      expect(url.pathname).toBe(`/assets/${settled.resultAssetId}`);
      expect(verifyAssetSignature(h.runtime.config.assetSecret, settled.resultAssetId!, url.searchParams.get('exp'), url.searchParams.get('sig'))).toBe(true);
      expect(settled.state).toBe('delivered');
    } finally {
      h.fake.state.guilds.get(h.guild.id)!.attachmentSizeLimit = 10 * 1024 * 1024;
    }
  });

  it('charges a duplicated INTERACTION_CREATE once and posts one clip', async () => {
    const before = await h.available();
    const sent = h.dream(h.bo, { prompt: 'paper lanterns drift up into a starry sky, slow tilt up', resolution: '540p' });
    sent.redeliver();
    const status = await statusOf(sent);
    const g = await h.generationFor(status.id);
    await h.clipMessage(g.id);
    await h.settled(g.id);
    expect(sent.record.rejectedCallbacks).toBe(1);
    const keys = await h.runtime.db.execute(sql`select count(*) as n from idempotency_keys where key = ${`discord:${sent.id}`}`);
    expect(Number(keys[0]!.n)).toBe(1);
    const clips = h.fake.messages().filter((m) => buttonIds(m).includes(`dream:reroll:${g.id}`));
    expect(clips).toHaveLength(1);
    expect(await h.available()).toBe(before - 1);
  });

  it('refuses DMs unless DISCORD_ALLOW_DMS is set', async () => {
    const sent = h.fake.sendCommand({ name: 'dream', channel: h.fake.dmChannel(h.ana), user: h.ana, options: { prompt: 'a quiet forest at dawn with mist' } });
    expect(await privateAnswer(sent)).toMatch(/only make clips in servers/);
  });
});
