import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ACTIONS } from '../../adapters/slack/render.ts';
import { findDelivery } from '../../src/deliveries.ts';
import { readAsset } from '../../src/assets.ts';
import { runFfmpeg } from '../../src/media/ffmpeg.ts';
import { FakeWorkspace, type FakeFile, type FakeMessage } from '../fakes/slack/index.ts';
import { startSlackHarness, type SlackHarness, clipInThread } from '../fakes/slack/harness.ts';
import { waitFor } from '../support/context.ts';

let h: SlackHarness;
let red: Buffer;
let blue: Buffer;
let dir: string;

async function png(color: string): Promise<Buffer> {
  const out = path.join(dir, `${color}.png`);
  await runFfmpeg(h.rt.bins.ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', `color=c=${color}:s=96x64`, '-frames:v', '1', out]);
  return readFile(out);
}

beforeAll(async () => {
  h = await startSlackHarness();
  dir = await mkdtemp(path.join(os.tmpdir(), 'dreambot-slack-'));
  red = await png('red');
  blue = await png('blue');
});
afterAll(async () => {
  await h?.close();
  if (dir) await rm(dir, { recursive: true, force: true });
});

const ws = () => h.fake.ws;
const text = (m: { text: string; blocks?: unknown[] }) => FakeWorkspace.textOf(m);

/** The bot's top-level job message for `user`, newest first. */
function jobMessages(channel: string, user: string): FakeMessage[] {
  return ws().channelMessages(channel).filter((m) => m.user === ws().botUserId && text(m).includes(`<@${user}>`) && text(m).includes('🎬')).reverse();
}

/** Waits for the clip (file message + card) in `thread`, returns both. */
const clipIn = (channel: string, thread: string, timeoutMs = 60_000) => clipInThread(ws(), channel, thread, timeoutMs);

function userImage(name: string, data: Buffer, user = 'U0BO'): FakeFile {
  return ws().uploadAsUser(user, { name, mimetype: 'image/png', data });
}

describe('slack: /dream', () => {
  it('acks at once, posts a job message, threads the clip under it, then the buttons; never uses response_url', async () => {
    const res = await h.driver.command('/dream', 'a lighthouse in a storm —ar 9:16 --resolution 540p --camera push_in', 'U0BO', 'C0GENERAL');
    expect(res.status).toBe(200);
    expect(res.ms).toBeLessThan(3000);
    expect(res.text).toBe('');

    const job = await waitFor(async () => jobMessages('C0GENERAL', 'U0BO')[0], 15_000, 'the job message');
    expect(job.threadTs).toBeUndefined();
    expect(text(job)).toMatch(/lighthouse in a storm/);
    expect(text(job)).toMatch(/9:16 · 5s · 540p · push in · preview/);
    expect(text(job)).toMatch(/Queued.*costs 1 credit · 999 credits left/);

    const { file, card } = await clipIn('C0GENERAL', job.ts);
    const uploaded = ws().files.get(file.files![0]!)!;
    expect(uploaded).toMatchObject({ mimetype: 'video/mp4', completed: true, user: ws().botUserId });
    const [g] = await h.generations();
    const stored = await readAsset(h.rt.db, g!.resultAssetId!);
    expect(uploaded.data!.equals(stored.data)).toBe(true);
    expect(g!.request).toMatchObject({ prompt: 'a lighthouse in a storm', aspect: '9:16', resolution: '540p', camera: 'push_in' });
    expect(g!.replyTo).toMatchObject({ platform: 'slack', channelId: 'C0GENERAL', userId: 'U0BO' });

    const actions = (card.blocks as { type: string; elements?: { action_id: string; value: string }[] }[]).find((b) => b.type === 'actions')!.elements!;
    expect(actions.map((a) => a.action_id)).toEqual([ACTIONS.reroll, ACTIONS.remix, ACTIONS.extend, ACTIONS.upscale, ACTIONS.delete]);
    expect(new Set(actions.map((a) => a.value))).toEqual(new Set([g!.id]));
    expect(card.ts > file.ts).toBe(true);

    const settled = await h.settled(g!.id);
    expect(settled).toMatchObject({ state: 'delivered', chargedCredits: 1 });
    expect(await findDelivery(h.rt.db, g!.id, 'slack', 'clip')).toMatchObject({ channelId: 'C0GENERAL', messageId: `C0GENERAL:${card.ts}` });
    // The job message ends as "done", and no two updates of it came less than 5 s apart.
    await waitFor(async () => text(ws().message('C0GENERAL', job.ts)).includes('✅ Done'), 15_000, 'the job message to say done');
    const updates = ws().callsTo('chat.update').filter((c) => c.args.ts === job.ts && c.ok).map((c) => c.at);
    const posted = ws().callsTo('chat.postMessage').find((c) => c.result?.ts === job.ts)!.at;
    [posted, ...updates].reduce((prev, at) => {
      expect(at - prev).toBeGreaterThanOrEqual(4900);
      return at;
    });
    expect(ws().responsePosts).toEqual([]);
  });

  it('refuses a bad flag privately, with what to type instead, and admits nothing', async () => {
    const before = (await h.generations()).length;
    await h.driver.command('/dream', 'a cat --ar 5:4', 'U0CY', 'C0GENERAL');
    const note = await waitFor(async () => ws().ephemeralsFor('U0CY').at(-1), 10_000, 'an ephemeral');
    expect(note.text).toMatch(/`--ar 5:4`: I don't know that aspect ratio\. Choose one of: 16:9.*Nothing was charged/);
    expect((await h.generations()).length).toBe(before);
  });

  it('/dream alone opens the modal; a submit without prompt or image is refused on the form; a full one dreams', async () => {
    const res = await h.driver.command('/dream', '', 'U0BO', 'C0GENERAL');
    expect(res.status).toBe(200);
    const view = await waitFor(async () => [...ws().views.values()].find((v) => v.user === 'U0BO' && v.view.callback_id === 'dream_modal'), 5000, 'the modal');
    const blockIds = (view.view.blocks as { block_id?: string; element?: { type: string } }[]).filter((b) => b.element).map((b) => `${b.block_id}:${b.element!.type}`);
    expect(blockIds).toEqual(expect.arrayContaining(['prompt:plain_text_input', 'image:file_input', 'end_image:file_input', 'aspect:static_select', 'duration:static_select', 'camera:static_select', 'loop:checkboxes']));

    const empty = await h.driver.submitView('U0BO', view.id, {});
    expect(empty.json).toMatchObject({ response_action: 'errors', errors: { prompt: expect.stringMatching(/Describe the clip/) } });

    const start = userImage('start.png', red);
    const ok = await h.driver.submitView('U0BO', view.id, { prompt: 'a red balloon floats up', aspect: '1:1', resolution: '540p', image: [start] });
    expect(ok.status).toBe(200);
    expect(ok.text).toBe('');
    const g = await waitFor(async () => (await h.generations()).find((x) => x.request.prompt === 'a red balloon floats up'), 15_000, 'the modal dream');
    expect(g.request).toMatchObject({ aspect: '1:1', resolution: '540p' });
    expect((await readAsset(h.rt.db, g.request.startImageId!)).data.equals(red)).toBe(true);
    const job = await waitFor(async () => jobMessages('C0GENERAL', 'U0BO').find((m) => text(m).includes('red balloon')), 10_000, 'its job message');
    await clipIn('C0GENERAL', job.ts);
  });

  it('"Dream this" on a message with two images makes a keyframed clip in that message\'s thread', async () => {
    const a = userImage('first.png', red);
    const b = userImage('second.png', blue);
    const source = ws().postAsUser('U0BO', 'C0GENERAL', 'the sky turns from red to blue &amp; back', { files: [a, b] });
    const res = await h.driver.messageShortcut('dream_from_message', 'U0CY', 'C0GENERAL', source.ts);
    expect(res.status).toBe(200);
    const view = await waitFor(async () => [...ws().views.values()].find((v) => v.user === 'U0CY' && v.view.callback_id === 'dream_modal'), 5000, 'the prefilled modal');
    const prompt = (view.view.blocks as { block_id?: string; element?: { initial_value?: string } }[]).find((x) => x.block_id === 'prompt')!.element!.initial_value;
    expect(prompt).toBe('the sky turns from red to blue & back');
    expect(text({ text: '', blocks: view.view.blocks as unknown[] })).toMatch(/first\.png\* \(start\) and \*second\.png\* \(end\)/);

    await h.driver.submitView('U0CY', view.id, { resolution: '540p' });
    const g = await waitFor(async () => (await h.generations()).find((x) => x.request.prompt === 'the sky turns from red to blue & back'), 15_000, 'the shortcut dream');
    expect((await readAsset(h.rt.db, g.request.startImageId!)).data.equals(red)).toBe(true);
    expect((await readAsset(h.rt.db, g.request.endImageId!)).data.equals(blue)).toBe(true);
    expect(g.replyTo).toMatchObject({ userId: 'U0CY', threadId: source.ts });
    const job = await waitFor(async () => ws().thread('C0GENERAL', source.ts).find((m) => text(m).includes('🎬')), 10_000, 'the job message in the thread');
    expect(job.threadTs).toBe(source.ts);
    await clipIn('C0GENERAL', source.ts);
    expect((await h.settled(g.id)).state).toBe('delivered');
  });

  it('an @mention in a thread, with an image, answers in that thread', async () => {
    const parent = ws().postAsUser('U0CY', 'C0GENERAL', 'ideas for the launch video?');
    const img = userImage('fox.png', blue, 'U0CY');
    const { sent, message } = await h.driver.mention('U0CY', 'C0GENERAL', 'a fox jumps over the moon --res 540p --duration 5', { threadTs: parent.ts, files: [img] });
    expect(sent.status).toBe(200);
    const g = await waitFor(async () => (await h.generations()).find((x) => x.request.prompt === 'a fox jumps over the moon'), 15_000, 'the mention dream');
    expect(g.request).toMatchObject({ resolution: '540p', duration: '5s' });
    expect(g.request.startImageId).toBeDefined();
    expect(g.replyTo).toMatchObject({ threadId: parent.ts });
    const job = await waitFor(async () => ws().thread('C0GENERAL', parent.ts).find((m) => m.user === ws().botUserId && text(m).includes('🎬')), 10_000, 'the job reply');
    expect(text(job)).toMatch(/<@U0CY>/);
    const { card } = await clipIn('C0GENERAL', parent.ts);
    expect(card.threadTs).toBe(parent.ts);
    expect(ws().message('C0GENERAL', message.ts).reactions).toEqual([{ name: 'clapper', users: [ws().botUserId] }]);
  });

  it('an image Slack serves as its HTML sign-in page (no files:read) is caught and explained; nothing is admitted', async () => {
    const before = (await h.generations()).length;
    ws().scopes.delete('files:read');
    try {
      const img = userImage('cat.png', red, 'U0CY');
      await h.driver.mention('U0CY', 'C0GENERAL', 'animate my cat', { files: [img] });
      const note = await waitFor(async () => ws().ephemeralsFor('U0CY').find((e) => /sign-in page/.test(e.text)), 10_000, 'the explanation');
      expect(note.text).toMatch(/files:read.*Nothing was charged/);
    } finally {
      ws().scopes.add('files:read');
    }
    expect((await h.generations()).length).toBe(before);
  });

  it('a channel the bot is not in: the member is told how to fix it, and nothing is charged', async () => {
    const before = (await h.generations()).length;
    await h.driver.command('/dream', 'a quiet secret garden', 'U0BO', 'C0SECRET');
    // chat.postEphemeral can't reach that channel either, so the note goes through the response_url.
    const note = await waitFor(async () => ws().responsePosts.at(-1), 10_000, 'a response_url note');
    expect(note.body).toMatchObject({ response_type: 'ephemeral', text: expect.stringMatching(/Invite me first.*Nothing was charged/) });
    const after = await h.generations();
    if (after.length > before) expect(after[0]).toMatchObject({ state: 'cancelled', chargedCredits: 0 });
  });
});
