import { describe, expect, it } from 'vitest';
import { promptTip } from '../../adapters/discord/coach.ts';
import { dreamCommandBody } from '../../adapters/discord/commands.ts';
import { nonceFor } from '../../adapters/discord/deliver.ts';
import { attachmentProblem, buttonId, parseButtonId, parseReaction, parseRemixModalId, remixModalId } from '../../adapters/discord/parse.ts';
import * as render from '../../adapters/discord/render.ts';
import { wantsReroll } from '../../adapters/discord/verify.ts';

/** The pure parts of the Discord adapter, as tables. */
const id = '0b7f3c1e-9a2d-4c55-8e11-2f3a4b5c6d7e';
const BOT = '100000000000000001';

describe('prompt coaching', () => {
  const cases: [string, RegExp | null][] = [
    ['a cat', /short prompts/],
    ['a red fox trots through fresh snow at dawn, low tracking shot', null],
    [Array.from({ length: 210 }, () => 'word').join(' '), /210 words/],
    ['a neon sign that says "OPEN ALL NIGHT" flickers in the rain', /lettering/],
    ['a storefront with the text BAKERY above the door, morning light', /lettering/],
    ['a caterpillar slowly turns into a butterfly on a leaf, macro', /start image and an end image/],
    ['a man walks down a street and then becomes a wolf under the moon', /start image and an end image/],
  ];
  for (const [prompt, tip] of cases) {
    it(`${tip ? 'tips' : 'leaves alone'}: ${prompt.slice(0, 50)}`, () => {
      const got = promptTip(prompt);
      if (tip) expect(got).toMatch(tip);
      else expect(got).toBeNull();
    });
  }
});

describe('custom ids', () => {
  it('round-trips buttons and the modal, and stays under 100 characters', () => {
    for (const action of ['reroll', 'remix', 'extend', 'upscale', 'delete'] as const) {
      expect(buttonId(action, id).length).toBeLessThanOrEqual(100);
      expect(parseButtonId(buttonId(action, id))).toEqual({ action, generationId: id });
    }
    expect(parseRemixModalId(remixModalId(id))).toBe(id);
  });
  it('ignores what is not ours', () => {
    for (const other of ['dream:reroll:not-a-uuid', 'dream:explode:' + id, 'poll:vote:1', '']) expect(parseButtonId(other)).toBeNull();
  });
  it('keeps nonces within Discord’s 25 characters', () => {
    expect(nonceFor('d', id)).toHaveLength(25);
  });
});

describe('attachments', () => {
  const limit = 10 * 1024 * 1024;
  it.each([
    [{ name: 'a.png', contentType: 'image/png', size: 1000 }, null],
    [{ name: 'a.jpg', contentType: 'image/jpeg; charset=binary', size: 1000 }, null],
    [{ name: 'doc.pdf', contentType: 'application/pdf', size: 1000 }, /is a PDF/],
    [{ name: 'clip.mp4', contentType: 'video/mp4', size: 1000 }, /video\/mp4 file/],
    [{ name: 'huge.png', contentType: 'image/png', size: 50 * 1024 * 1024 }, /50 MB; the limit is 10 MB/],
    [{ name: 'mystery', contentType: null, size: 1000 }, null],
  ])('%o', (attachment, expected) => {
    const problem = attachmentProblem(attachment, limit);
    if (expected) expect(problem).toMatch(expected);
    else expect(problem).toBeNull();
  });
});

describe('reactions', () => {
  const base = { user_id: '200000000000000002', channel_id: '300000000000000003', message_id: '400000000000000004', guild_id: '500000000000000005', emoji: { id: null, name: '🔁' }, message_author_id: BOT, member: { user: { id: '200000000000000002', username: 'ana' } } };
  it.each([
    ['a member’s 🔁 on our message', base, true],
    ['another emoji', { ...base, emoji: { id: null, name: '👍' } }, false],
    ['a bot', { ...base, member: { user: { id: '2', username: 'b', bot: true } } }, false],
    ['ourselves', { ...base, user_id: BOT }, false],
    ['someone else’s message', { ...base, message_author_id: '600000000000000006' }, false],
    ['a DM while DMs are off', { ...base, guild_id: undefined }, false],
  ])('%s', (_name, raw, expected) => {
    expect(wantsReroll(parseReaction(raw as Record<string, unknown>)!, BOT, false)).toBe(expected);
  });
});

describe('rendering', () => {
  it('shows state, percent and an ETA from the generation row', () => {
    const now = Date.now();
    const running = render.progress({ state: 'running', progress: 0.25, startedAt: new Date(now - 10_000), estimatedCredits: 3 }, 0, now);
    expect(running.content).toMatch(/Rendering\*\* · 25% · about 30 s left/);
    expect(render.progress({ state: 'queued', progress: 0, startedAt: null, estimatedCredits: 3 }, 4, now).content).toMatch(/4 clips ahead/);
  });
  it('puts five buttons in one row, and never lets a prompt ping anyone', () => {
    const body = render.clipMessage({
      generation: { id, operation: 'generate', backend: 'luma', chargedCredits: 160, estimatedCredits: 160, request: { operation: 'generate', prompt: '@everyone look **here**', aspect: '16:9', resolution: '720p', duration: '5s', loop: false, model: 'ray-2' } },
      requesterId: '200000000000000002',
    });
    expect(body.components![0]!.components).toHaveLength(5);
    expect(body.content).not.toContain('@everyone');
    expect(body.content).toContain('\\*\\*here\\*\\*');
  });
  it('declares /dream options from commands/dream.ts', () => {
    const body = dreamCommandBody({ allowDms: false });
    expect(body.options!.map((o) => [o.name, o.type])).toEqual([
      ['prompt', 3], ['image', 11], ['end_image', 11], ['aspect', 3], ['duration', 3], ['resolution', 3], ['camera', 3], ['loop', 5], ['model', 3], ['backend', 3],
    ]);
    expect(body.contexts).toEqual([0]);
  });
});
