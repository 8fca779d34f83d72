import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Generation } from '../../src/generations.ts';
import { createDiscordHarness, buttonIds, type DiscordHarness } from '../fakes/discord/harness.ts';
import type { FakeMessage, FakeUser, SentInteraction } from '../fakes/discord/index.ts';

/**
 * The buttons under a clip, the remix modal and 🔁: each makes an ordinary request through admission,
 * charged to whoever clicked or reacted and linked to its parent clip.
 */
let h: DiscordHarness;
let parent: Generation;
let parentClip: FakeMessage;

beforeAll(async () => {
  h = await createDiscordHarness();
  const sent = h.dream(h.ana, { prompt: 'a paper boat drifts down a rainy street gutter, low angle', resolution: '540p' });
  const status = await h.fake.waitFor(() => sent.original()?.content.includes('Queued') && sent.original(), 15_000);
  parent = await h.settled((await h.generationFor(status.id)).id);
  parentClip = await h.clipMessage(parent.id);
}, 90_000);
afterAll(async () => {
  await h?.close();
});

function click(user: FakeUser, action: string, message = parentClip): SentInteraction {
  return h.fake.clickButton({ message, customId: buttonIds(message).find((id) => id.startsWith(`dream:${action}:`))!, user });
}

async function memberUsage(user: FakeUser): Promise<number> {
  const rows = await h.runtime.db.execute(sql`
    select coalesce(sum(u.used), 0) as used from member_usage u join members m on m.id = u.member_id
    where m.platform = 'discord' and m.external_id = ${user.id}`);
  return Number(rows[0]!.used);
}

async function requester(g: Generation): Promise<string> {
  const rows = await h.runtime.db.execute(sql`select external_id from members where id = ${g.memberId}`);
  return String(rows[0]!.external_id);
}

/** A job started from a button or the modal: its status reply in the thread, its generation, its clip. */
async function followJob(sent: SentInteraction) {
  const status = await h.fake.waitFor(() => sent.original()?.content.includes('queued') && sent.original(), 15_000, 'the queued reply');
  const g = await h.generationFor(status.id);
  const clip = await h.clipMessage(g.id);
  return { status, g: await h.settled(g.id), clip };
}

async function privateAnswer(sent: SentInteraction): Promise<FakeMessage> {
  // A direct ephemeral reply, an ephemeral defer edited, or a follow-up after a public defer was deleted.
  const message = await h.fake.waitFor(() => {
    const original = sent.original();
    if (original && !original.deleted && original.flags & 64 && !(original.flags & 128) && original.content) return original;
    return sent.followUps()[0];
  }, 15_000, 'an ephemeral answer');
  expect(message.flags & 64).toBe(64);
  return message;
}

describe('clip buttons', () => {
  it('Re-roll: the same request again, charged to the member who clicked, posted in the same thread', async () => {
    const usedBefore = await memberUsage(h.bo);
    const sent = click(h.bo, 'reroll');
    expect((await sent.callback()).type).toBe(5);
    const { status, g, clip } = await followJob(sent);
    expect(status.channelId).toBe(parentClip.channelId);
    expect(status.history.some((e) => /Re-roll queued/.test(e.content))).toBe(true);
    expect(g).toMatchObject({ state: 'delivered', parentId: parent.id, operation: 'generate' });
    expect(g.request.prompt).toBe(parent.request.prompt);
    expect(await requester(g)).toBe(h.bo.id);
    expect(await memberUsage(h.bo)).toBe(usedBefore + 1);
    expect(clip.channelId).toBe(parentClip.channelId);
    expect(clip.content).toContain(`<@${h.bo.id}>`);
  });

  it('Remix: opens a modal prefilled with the prompt, then makes the edited clip', async () => {
    const opened = click(h.bo, 'remix');
    const callback = await opened.callback();
    expect(callback.type).toBe(9);
    const modal = opened.record.modal!;
    expect(modal.custom_id).toBe(`dream-remix:${parent.id}`);
    const input = (modal.components as { type: number; component: { custom_id: string; value: string } }[])[0]!;
    expect(input.type).toBe(18);
    expect(input.component).toMatchObject({ custom_id: 'prompt', value: parent.request.prompt });
    const submitted = h.fake.submitModal({ opened, user: h.bo, values: { prompt: 'a paper boat drifts down a snowy street gutter, low angle' } });
    const { g, clip } = await followJob(submitted);
    expect(g).toMatchObject({ state: 'delivered', parentId: parent.id });
    expect(g.request.prompt).toBe('a paper boat drifts down a snowy street gutter, low angle');
    expect(await requester(g)).toBe(h.bo.id);
    expect(clip.content).toContain('snowy street');
  });

  it('Extend: continues the clip from its last frame', async () => {
    const { g, clip } = await followJob(click(h.ana, 'extend'));
    expect(g).toMatchObject({ state: 'delivered', parentId: parent.id, operation: 'extend' });
    expect(clip.content).toMatch(/\(extend\)/);
  });

  it('Upscale: refused privately where the backend cannot upscale, nothing charged', async () => {
    const before = await h.available();
    const sent = click(h.ana, 'upscale');
    const answer = await privateAnswer(sent);
    expect(answer.content).toMatch(/upscal/i);
    expect(answer.content).toMatch(/isn't|can't|doesn't|cannot/i);
    expect(answer.content).toMatch(/Nothing was charged/i);
    expect(sent.original()?.deleted).toBe(true);
    expect(await h.available()).toBe(before);
  });

  it('Delete: refused to another member, allowed to the requester and to a server admin', async () => {
    const refused = await privateAnswer(click(h.bo, 'delete'));
    expect(refused.content).toMatch(/Only <@\d+>, who asked for this clip, or a server admin/);
    expect(h.fake.message(parentClip.id)!.deleted).toBe(false);

    const [{ clip: first }, { clip: second }] = [await followJob(click(h.bo, 'reroll')), await followJob(click(h.bo, 'reroll'))];
    const byRequester = await privateAnswer(click(h.bo, 'delete', first));
    expect(byRequester.content).toBe('Deleted the clip.');
    expect(h.fake.message(first.id)!.deleted).toBe(true);
    const byAdmin = await privateAnswer(click(h.boss, 'delete', second));
    expect(byAdmin.content).toBe('Deleted the clip.');
    expect(h.fake.message(second.id)!.deleted).toBe(true);
  });
});

describe('🔁 reactions', () => {
  it('re-roll the clip on the reactor’s credits; bots, other emoji and non-clips are ignored', async () => {
    const count = async () => Number((await h.runtime.db.execute(sql`select count(*) as n from generations`))[0]!.n);
    const robot = h.fake.addUser('otherbot', { bot: true });
    h.fake.addMember(h.guild, robot);
    const before = await count();
    h.fake.addReaction({ message: parentClip, user: robot });
    h.fake.addReaction({ message: parentClip, user: h.ana, emoji: '👍' });
    const statusMessage = h.fake.messages(h.channel.id).find((m) => m.authorId === h.fake.bot.id)!;
    h.fake.addReaction({ message: statusMessage, user: h.ana });
    await new Promise((r) => setTimeout(r, 1500));
    expect(await count()).toBe(before);

    const usedBefore = await memberUsage(h.bo);
    h.fake.addReaction({ message: parentClip, user: h.bo });
    const notice = await h.fake.waitFor(() => h.fake.messages(parentClip.channelId).find((m) => m.content.includes(`Re-roll for <@${h.bo.id}>`) || m.content.includes('Re-roll queued')), 15_000, 'the re-roll notice');
    const g = await h.settled((await h.generationFor(notice.id)).id);
    expect(g).toMatchObject({ state: 'delivered', parentId: parent.id });
    expect(await requester(g)).toBe(h.bo.id);
    expect(await memberUsage(h.bo)).toBe(usedBefore + 1);
    const clip = await h.clipMessage(g.id);
    expect(clip.channelId).toBe(parentClip.channelId);
  });
});
