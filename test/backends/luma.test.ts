import { stat } from 'node:fs/promises';
import path from 'node:path';
import LumaAI from 'lumaai';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { callbackToken } from '../../src/backends/luma/callbacks.ts';
import { ErrorCode } from '../../src/errors.ts';
import { getGeneration } from '../../src/generations.ts';
import type { Runtime } from '../../src/runtime.ts';
import { makeImage } from '../media/helpers.ts';
import { waitFor } from '../support/context.ts';
import { lumaOf, startLumaHarness, type LumaHarness } from './luma-harness.ts';

/**
 * The luma backend end to end: a "bot" runtime admits and serves HTTP (input images, callbacks), a
 * separate worker runtime runs the jobs, and the fake Luma in between records what it received. Polling
 * is slow (4 s) on purpose: the quick finishes come from callbacks crossing from the bot runtime to
 * the worker runtime over Redis.
 */
let h: LumaHarness;
let workers: Runtime;
let startImage: string;
let endImage: string;

beforeAll(async () => {
  // Limits well above the Build tier's: this file makes more than 20 creates a minute (luma-limits.test.ts covers them).
  h = await startLumaHarness({ env: { LUMA_POLL_MS: '4000', LUMA_CREATES_PER_MINUTE: '500', LUMA_CONCURRENCY: '20' }, fake: { limits: { concurrent: 20, createsPerMinute: 500 } } });
  workers = await h.startWorkers();
  [startImage, endImage] = await Promise.all([
    makeImage(h.web.bins.ffmpeg, 'testsrc2=s=640x360', path.join(h.dir, 'start.png')),
    makeImage(h.web.bins.ffmpeg, 'color=c=red:s=640x360', path.join(h.dir, 'end.png')),
  ]);
  await lumaOf(h.web).warm();
});
afterAll(async () => {
  await h?.close();
});

const created = (g: { backendHandle: string | null }) => h.fake.generation(g.backendHandle!);
const bodyOf = (g: { backendHandle: string | null }) => created(g)!.request as unknown as Record<string, unknown>;
const image = (file: string) => ({ kind: 'file', path: file });

async function expectMp4(g: Awaited<ReturnType<LumaHarness['settled']>>) {
  expect(g).toMatchObject({ state: 'delivered', submitCount: 1 });
  const info = await h.clip(g);
  expect(info).toMatchObject({ codec: 'h264', formatName: expect.stringContaining('mp4') });
  expect(info.durationS).toBeGreaterThan(4);
  return info;
}

describe('luma: every operation, as the fake received it, ends in a real MP4', () => {
  it('text-to-video with model, aspect, resolution, duration, camera move (a concept) and loop', async () => {
    const admitted = await h.dream({ prompt: 'a paper boat drifts on a pond', model: 'ray-flash-2', aspect: '9:16', resolution: '1080p', duration: '9s', camera: 'push_in', loop: true }, { team: 'ops-t2v' });
    expect(admitted).toMatchObject({ backend: 'luma', model: 'ray-flash-2', credits: 130 });
    const g = await h.settled(admitted.generationId);
    await expectMp4(g);
    expect(g.chargedCredits).toBe(130);
    expect(bodyOf(g)).toEqual({
      generation_type: 'video', model: 'ray-flash-2', prompt: 'a paper boat drifts on a pond', aspect_ratio: '9:16', resolution: '1080p',
      duration: '9s', loop: true, concepts: [{ key: 'push_in' }],
      callback_url: `${h.publicUrl}/callbacks/luma/${g.id}?token=${callbackToken(h.web.config.assetSecret, g.id)}`,
    });
    expect(h.fake.stats.requestsFor('POST /generations/video')).toBeGreaterThanOrEqual(1);
  });

  it('image-to-video: the start image goes as a signed, expiring URL that the fake really fetched', async () => {
    const g = await h.settled((await h.dream({ prompt: 'the pattern starts to swirl', startImage: image(startImage) }, { team: 'ops-i2v' })).generationId);
    await expectMp4(g);
    const frame0 = (bodyOf(g).keyframes as { frame0: { type: string; url: string } }).frame0;
    expect(frame0.type).toBe('image');
    expect(frame0.url).toMatch(new RegExp(`^${h.publicUrl}/assets/${g.request.startImageId}\\?exp=\\d+&sig=[A-Za-z0-9_-]{43}$`));
    expect(bodyOf(g).keyframes).not.toHaveProperty('frame1');
    const fetched = h.fake.imageFetches.find((f) => f.url === frame0.url);
    expect(fetched).toMatchObject({ ok: true, status: 200, contentType: 'image/png', bytes: (await stat(startImage)).size });
  });

  it('end image only, and start + end images', async () => {
    const [endOnly, both] = await Promise.all([
      h.dream({ prompt: 'everything turns red', endImage: image(endImage) }, { team: 'ops-keys' }),
      h.dream({ prompt: 'from pattern to red', startImage: image(startImage), endImage: image(endImage) }, { team: 'ops-keys', user: 'bo' }),
    ]);
    const [a, b] = await Promise.all([h.settled(endOnly.generationId), h.settled(both.generationId)]);
    await expectMp4(a);
    await expectMp4(b);
    expect(bodyOf(a).keyframes).toEqual({ frame1: { type: 'image', url: expect.stringContaining(`/assets/${a.request.endImageId}?`) } });
    expect(bodyOf(b).keyframes).toEqual({
      frame0: { type: 'image', url: expect.stringContaining(`/assets/${b.request.startImageId}?`) },
      frame1: { type: 'image', url: expect.stringContaining(`/assets/${b.request.endImageId}?`) },
    });
    expect(h.fake.imageFetches.filter((f) => f.generationId === b.backendHandle && f.ok)).toHaveLength(2);
  });

  it('extend, extend into an end image, and reverse extend from a start image use the parent as a generation keyframe', async () => {
    const parent = await h.settled((await h.dream({ prompt: 'a kite rises over a beach' }, { team: 'ops-extend' })).generationId);
    await expectMp4(parent);
    const parentFrame = { type: 'generation', id: parent.backendHandle };
    const [fwd, intoEnd, reverse] = await Promise.all([
      h.dream({ operation: 'extend', parentId: parent.id, prompt: 'the kite loops twice' }, { team: 'ops-extend' }),
      h.dream({ operation: 'extend', parentId: parent.id, prompt: 'and lands in red', endImage: image(endImage) }, { team: 'ops-extend', user: 'bo' }),
      h.dream({ operation: 'extend', parentId: parent.id, prompt: 'how it began', startImage: image(startImage) }, { team: 'ops-extend', user: 'cy' }),
    ]);
    const [f, e, r] = await Promise.all([h.settled(fwd.generationId), h.settled(intoEnd.generationId), h.settled(reverse.generationId)]);
    for (const g of [f, e, r]) await expectMp4(g);
    expect(f.parentId).toBe(parent.id);
    expect(bodyOf(f).keyframes).toEqual({ frame0: parentFrame });
    expect(bodyOf(e).keyframes).toEqual({ frame0: parentFrame, frame1: { type: 'image', url: expect.stringContaining('/assets/') } });
    expect(bodyOf(r).keyframes).toEqual({ frame0: { type: 'image', url: expect.stringContaining('/assets/') }, frame1: parentFrame });
    // A pure reverse extend: only the parent, at the end.
    const back = await h.settled((await h.dream({ operation: 'extend', parentId: parent.id, prompt: 'the moment before', reverse: true }, { team: 'ops-extend', user: 'di' })).generationId);
    await expectMp4(back);
    expect(bodyOf(back).keyframes).toEqual({ frame1: parentFrame });
  });

  it('upscale and add audio call the parent generation\'s own endpoints; the audio clip has sound', async () => {
    const parent = await h.settled((await h.dream({ prompt: 'a lighthouse at dusk' }, { team: 'ops-derive' })).generationId);
    const [up, audio] = await Promise.all([
      h.dream({ operation: 'upscale', parentId: parent.id }, { team: 'ops-derive' }),
      h.dream({ operation: 'add_audio', parentId: parent.id, prompt: 'waves and gulls' }, { team: 'ops-derive', user: 'bo' }),
    ]);
    expect([up.credits, audio.credits]).toEqual([20, 0]);
    const [u, a] = await Promise.all([h.settled(up.generationId), h.settled(audio.generationId)]);
    await expectMp4(u);
    expect((await expectMp4(a)).hasAudio).toBe(true);
    expect(created(u)).toMatchObject({ kind: 'upscale_video', parentId: parent.backendHandle });
    expect(bodyOf(u)).toMatchObject({ generation_type: 'upscale_video', resolution: '4k', callback_url: expect.stringContaining(`/callbacks/luma/${u.id}?`) });
    expect(created(a)).toMatchObject({ kind: 'add_audio', parentId: parent.backendHandle });
    expect(bodyOf(a)).toMatchObject({ generation_type: 'add_audio', prompt: 'waves and gulls' });
    expect(u.chargedCredits).toBe(20);
  });
});

describe('luma: refused at admission, nothing held', () => {
  it('a camera move missing from concepts/list, a loop ending on a keyframe, an extension without a prompt', async () => {
    const parent = await h.settled((await h.dream({ prompt: 'a red fox in the snow' }, { team: 'strict' })).generationId);
    const before = await h.available('strict');
    await expect(h.dream({ prompt: 'a crane shot down', camera: 'crane_down' }, { team: 'strict' }))
      .rejects.toMatchObject({ code: ErrorCode.UnsupportedOperation, message: expect.stringMatching(/camera move crane_down.*push_in/) });
    await expect(h.dream({ operation: 'extend', parentId: parent.id, prompt: 'before', loop: true, startImage: image(startImage) }, { team: 'strict' }))
      .rejects.toMatchObject({ code: ErrorCode.InvalidRequest, kind: 'user', message: expect.stringMatching(/loop/) });
    await expect(h.dream({ operation: 'extend', parentId: parent.id }, { team: 'strict' }))
      .rejects.toMatchObject({ code: ErrorCode.PromptMissing });
    expect(await h.available('strict')).toBe(before);
  });

  it('an image request without PUBLIC_BASE_URL says what to configure', async () => {
    const bare = await h.ctx.runtime({ PUBLIC_BASE_URL: '', ASSET_SIGNING_SECRET: '' });
    const admit = (request: Record<string, unknown>) => bare.admit({
      idempotencyKey: `bare-${Math.random()}`, team: { platform: 'cli', externalId: 'bare' }, member: { externalId: 'ana' }, request: { backend: 'luma', ...request },
    });
    await admit({ prompt: 'warm up the team' });
    const before = await h.available('bare');
    await expect(admit({ prompt: 'animate it', startImage: image(startImage) }))
      .rejects.toMatchObject({ code: ErrorCode.UnsupportedOperation, kind: 'user', message: expect.stringMatching(/PUBLIC_BASE_URL/) });
    await expect(admit({ prompt: 'end on red', endImage: image(endImage) })).rejects.toMatchObject({ message: expect.stringMatching(/PUBLIC_BASE_URL/) });
    expect(await h.available('bare')).toBe(before);
  });
});

describe('luma: failures release the hold and say why', () => {
  const cases: [string, string, RegExp][] = [
    ['blacklisted', ErrorCode.ContentRefused, /content rules \("Contains blacklisted words"\)/],
    ['frames', ErrorCode.ContentRefused, /content rules \("Frame moderation failed"\)/],
    ['moderation', ErrorCode.ContentRefused, /content rules \("Advanced prompt moderation failed"\)/],
    ['input', ErrorCode.ImageFetchFailed, /couldn't download the input image.*PUBLIC_BASE_URL/],
    ['prompt', ErrorCode.InvalidRequest, /Rephrase/],
  ];
  it('moderation, unreadable input frames and prompt processing: clear messages, credits back', async () => {
    const admitted = await Promise.all(cases.map(([marker], i) => h.dream({ prompt: `a scene that fails [fake:fail=${marker}]` }, { team: 'failing', user: `m${i}` })));
    const ended = await Promise.all(admitted.map((a) => h.settled(a.generationId)));
    ended.forEach((g, i) => {
      const [, code, message] = cases[i]!;
      expect(g).toMatchObject({ state: 'failed', errorCode: code, chargedCredits: 0, attempts: 1 });
      expect(g.errorMessage).toMatch(message);
    });
    expect(await Promise.all(ended.map((g) => h.holdState(g.id)))).toEqual(cases.map(() => 'released'));
    expect(await h.available('failing')).toBe(1000);
  });

  it('a transient failure ("Job failed") is replaced by one fresh generation, delivered and charged once', async () => {
    const createsBefore = h.fake.stats.creates;
    h.fake.faults.failNext('job');
    const g = await h.settled((await h.dream({ prompt: 'a windmill turns slowly', resolution: '540p' }, { team: 'retry' })).generationId);
    await expectMp4(g);
    expect(h.fake.stats.creates - createsBefore).toBe(2);
    expect(created(g)).toMatchObject({ state: 'failed', failureReason: 'Job failed' });
    expect(g.resultMeta).toMatchObject({ replaces: g.backendHandle, lumaId: expect.not.stringMatching(g.backendHandle!) });
    expect(await h.captures(g.id)).toBe(1);
    expect(g.chargedCredits).toBe(90);
  });

  it('a revoked key (401) fails permanently, is not retried, and releases the hold', async () => {
    const key = h.fake.apiKey;
    h.fake.acceptKey('some-other-key');
    try {
      const admitted = await h.dream({ prompt: 'a quiet street at night' }, { team: 'revoked' });
      const g = await h.settled(admitted.generationId);
      expect(g).toMatchObject({ state: 'failed', errorCode: ErrorCode.BackendUnavailable, attempts: 1, chargedCredits: 0, backendHandle: null });
      expect(await h.holdState(g.id)).toBe('released');
      expect(await h.available('revoked')).toBe(1000);
      // The operator sees it on every process's /readyz (reported, not fatal: other backends still work).
      const ready = await (await fetch(`${h.publicUrl}/readyz`)).json() as { ok: boolean; degraded: boolean; backends: Record<string, string> };
      expect(ready).toMatchObject({ ok: true, degraded: true });
      expect(ready.backends.luma).toMatch(/rejected the API key.*LUMA_API_KEY/);
    } finally {
      h.fake.acceptKey(key);
    }
  });

  it('the fake itself: unreadable image keyframes fail as Luma says; validation, auth, list, delete, the legacy path', async () => {
    const client = new LumaAI({ authToken: h.fake.apiKey, baseURL: h.fake.url, maxRetries: 0 });
    const g = await client.generations.create({ model: 'ray-2', keyframes: { frame0: { type: 'image', url: `${h.publicUrl}/assets/00000000-0000-0000-0000-000000000000?exp=1&sig=x` } } });
    const failed = await waitFor(async () => {
      const now = await client.generations.get(g.id!);
      return now.state === 'failed' ? now : null;
    }, 10_000, 'the generation to fail');
    expect(failed.failure_reason).toBe('Failed to read user input frames');
    await expect(client.generations.create({ model: 'ray-2', prompt: 'hi' })).rejects.toMatchObject({ status: 400, error: { detail: expect.stringMatching(/3 and 5000/) } });
    await expect(client.generations.create({ model: 'ray-2', keyframes: {} })).rejects.toMatchObject({ status: 400, error: { detail: 'No keyframes provided' } });
    await expect(client.generations.create({ model: 'ray-2', prompt: 'go on', keyframes: { frame0: { type: 'generation', id: g.id! } } }))
      .rejects.toMatchObject({ status: 400, error: { detail: expect.stringMatching(/not completed/) } });
    await expect(new LumaAI({ authToken: 'nope', baseURL: h.fake.url, maxRetries: 0 }).credits.get()).rejects.toMatchObject({ status: 401 });
    expect((await client.credits.get()).credit_balance).toBeGreaterThan(0);
    // The older path the docs' curl examples use, answered the same way.
    const legacy = await fetch(`${h.fake.url}/generations`, { method: 'POST', headers: { authorization: `Bearer ${h.fake.apiKey}`, 'content-type': 'application/json' }, body: JSON.stringify({ model: 'ray-2', prompt: 'an owl blinks' }) });
    expect(legacy.status).toBe(201);
    const [first, second] = await Promise.all([client.generations.list({ limit: 1, offset: 0 }), client.generations.list({ limit: 1, offset: 1 })]);
    expect(first).toMatchObject({ count: 1, has_more: true, limit: 1, offset: 0 });
    expect(first.generations[0]!.id).toBe((await legacy.json() as { id: string }).id);
    expect(second.generations[0]!.id).not.toBe(first.generations[0]!.id);
    await client.generations.delete(g.id!);
    await expect(client.generations.get(g.id!)).rejects.toMatchObject({ status: 404 });
  });
});

describe('luma: callbacks and polling', () => {
  it('a callback posted to the bot process wakes the worker process (Redis), long before the next poll', async () => {
    const g = await h.settled((await h.dream({ prompt: 'a hot air balloon lifts off' }, { team: 'callbacks' })).generationId);
    await expectMp4(g);
    const record = created(g)!;
    // Polling every 4 s would first see it completed ~3 s after it completed; the callback makes it at once.
    expect(record.completedSeenAt! - record.completedAt!).toBeLessThan(1500);
    expect(h.fake.stats.callbacks.delivered).toBeGreaterThan(0);
  });

  it('duplicate callbacks racing the poller: processed once, downloaded once, captured once', async () => {
    // Every state is posted 4 times, and completion lands about when the 4 s poll comes round again.
    h.fake.faults.callbackRepeats = 4;
    h.fake.faults.slowNext(3900);
    try {
      const g = await h.settled((await h.dream({ prompt: 'fireworks over a harbour' }, { team: 'callbacks' })).generationId);
      await expectMp4(g);
      expect(h.fake.stats.downloads.get(g.backendHandle!)).toBe(1);
      expect(await h.captures(g.id)).toBe(1);
      expect(g.attempts).toBe(1);
    } finally {
      h.fake.faults.callbackRepeats = 1;
    }
  });

  it('callbacks with a bad token or an id that is not ours are ignored', async () => {
    const id = '5b0c3f7e-1d2a-4c3b-8e9f-000000000001';
    const post = (url: string) => fetch(url, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ id, state: 'completed' }) }).then((r) => r.status);
    expect(await post(`${h.publicUrl}/callbacks/luma/${id}?token=${'A'.repeat(43)}`)).toBe(403);
    expect(await post(`${h.publicUrl}/callbacks/luma/${id}`)).toBe(403);
    expect(await post(`${h.publicUrl}/callbacks/luma/not-a-uuid?token=x`)).toBe(404);
    expect(await post(`${h.publicUrl}/callbacks/luma/${id}?token=${callbackToken(h.web.config.assetSecret, id)}`)).toBe(200);
    expect(await getGeneration(h.web.db, id)).toBeNull();
  });

  it('with every callback lost, polling alone still finishes the job', async () => {
    h.fake.faults.dropCallbacks(1);
    const g = await h.settled((await h.dream({ prompt: 'a snail crosses a leaf' }, { team: 'callbacks' })).generationId);
    await expectMp4(g);
    const record = created(g)!;
    expect(record.completedSeenAt! - record.completedAt!).toBeGreaterThan(1000);
  });
});

describe('luma: cancel', () => {
  it('cancelling a running job deletes the generation on Luma and releases the hold', async () => {
    h.fake.faults.slowNext(8000);
    const admitted = await h.dream({ prompt: 'a glacier calves into the sea' }, { team: 'cancel' });
    const running = await waitFor(async () => (await getGeneration(h.web.db, admitted.generationId))?.backendHandle, 20_000, 'the handle to be recorded');
    expect(await h.web.cancel(admitted.generationId)).toBe(true);
    const g = await h.settled(admitted.generationId);
    expect(g.state).toBe('cancelled');
    await waitFor(async () => h.fake.generation(running) === undefined, 10_000, 'the Luma generation to be deleted');
    expect(await h.available('cancel')).toBe(1000);
  });
});

describe('luma: crash and resume', () => {
  it('workers stopped mid-generation after the handle is recorded: a new worker resumes it, with one create and one capture', async () => {
    const createsBefore = h.fake.stats.creates;
    h.fake.faults.slowNext(3000);
    const admitted = await h.dream({ prompt: 'a slow orbit around a lighthouse', camera: 'orbit_left' }, { team: 'crashy' });
    const running = await waitFor(async () => {
      const g = await getGeneration(h.web.db, admitted.generationId);
      return g?.state === 'running' && g.backendHandle ? g : null;
    }, 20_000, 'the handle to be recorded');
    await workers.close(0);
    expect(h.fake.generation(running.backendHandle!)?.state).not.toBe('completed');
    workers = await h.startWorkers();
    const g = await h.settled(admitted.generationId);
    await expectMp4(g);
    expect(g.backendHandle).toBe(running.backendHandle);
    expect(h.fake.stats.creates - createsBefore).toBe(1);
    expect(g.attempts).toBeGreaterThanOrEqual(2);
    expect(await h.captures(g.id)).toBe(1);
  });
});
