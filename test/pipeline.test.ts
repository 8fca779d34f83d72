import { writeFile, mkdtemp, truncate } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAsset } from '../src/assets.ts';
import { ErrorCode } from '../src/errors.ts';
import { getGeneration } from '../src/generations.ts';
import { probe } from '../src/media/probe.ts';
import type { Runtime } from '../src/runtime.ts';
import { ScriptedBackend } from './fakes/scripted-backend.ts';
import { createTestContext, waitFor, type TestContext } from './support/context.ts';

let ctx: TestContext;
let rt: Runtime;
let scripted: ScriptedBackend;
let dir: string;

beforeAll(async () => {
  ctx = await createTestContext({ JOB_ATTEMPTS: '3' });
  const { Runtime } = await import('../src/runtime.ts');
  const { loadConfig } = await import('../src/config.ts');
  rt = await Runtime.create(loadConfig(ctx.env), {
    log: ctx.log,
    backends: (defaults) => {
      scripted = new ScriptedBackend(defaults.get('preview')!, 2);
      return new Map([['preview', scripted]]);
    },
  });
  await rt.startWorkers();
  dir = await mkdtemp(path.join(os.tmpdir(), 'dreambot-pipeline-'));
});
afterAll(async () => {
  await rt.close(1000);
  await ctx.cleanup();
});

let keys = 0;
function dream(request: Record<string, unknown>, team = 'pipeline', user = 'ana') {
  keys += 1;
  return rt.admit({ idempotencyKey: `pipe-${keys}`, team: { platform: 'cli', externalId: team }, member: { externalId: user }, request, replyTo: { platform: 'cli' } });
}

async function settled(id: string) {
  return waitFor(async () => {
    const g = await getGeneration(rt.db, id);
    return g && ['delivered', 'failed', 'cancelled'].includes(g.state) ? g : null;
  }, 60_000, `generation ${id} to end`);
}

async function available(team: string): Promise<number> {
  const rows = await rt.db.execute(sql`
    select a.balance from accounts a join platform_accounts p on p.team_id = a.team_id
    where p.platform = 'cli' and p.external_id = ${team} and a.kind = 'available'`);
  return rows[0] ? Number(rows[0].balance) : NaN;
}

async function countRows(table: string): Promise<number> {
  const rows = await rt.db.execute(sql`select count(*) as n from ${sql.identifier(table)}`);
  return Number(rows[0]!.n);
}

describe('pipeline: admission → dispatch → worker → delivered', () => {
  it('renders a real clip, captures once and stores it', async () => {
    const admitted = await dream({ prompt: 'a lighthouse in a storm #slow=0', aspect: '9:16', resolution: '540p', camera: 'push_in' });
    expect(admitted).toMatchObject({ duplicate: false, state: 'queued', backend: 'preview', credits: 1, creditsRemaining: 999 });
    const g = await settled(admitted.generationId);
    expect(g).toMatchObject({ state: 'delivered', chargedCredits: 1, submitCount: 1 });
    const clip = await readAsset(rt.db, g.resultAssetId!);
    const file = path.join(dir, 'out.mp4');
    await writeFile(file, clip.data);
    const info = await probe(rt.bins.ffprobe, file);
    expect(info).toMatchObject({ codec: 'h264', pixFmt: 'yuv420p', width: 540, height: 960, faststart: true });
    expect(Math.abs(info.durationS - 5)).toBeLessThanOrEqual(0.1);
    const holds = await rt.db.execute(sql`select state, captured from holds where generation_id = ${g.id}`);
    expect(holds.map((h) => [h.state, Number(h.captured)])).toEqual([['captured', 1]]);
    expect(await available('pipeline')).toBe(999);
  });

  it('a duplicate idempotency key returns the same generation and charges nothing, even concurrently', async () => {
    const request = { prompt: 'two cats play chess in a sunlit library', resolution: '540p' };
    const send = () => rt.admit({ idempotencyKey: 'discord-interaction-1234', team: { platform: 'cli', externalId: 'dupes' }, member: { externalId: 'bo' }, request, replyTo: { platform: 'cli' } });
    const results = await Promise.all([send(), send(), send(), send()]);
    expect(new Set(results.map((r) => r.generationId)).size).toBe(1);
    expect(results.filter((r) => !r.duplicate)).toHaveLength(1);
    await settled(results[0]!.generationId);
    const later = await send();
    expect(later).toMatchObject({ duplicate: true, generationId: results[0]!.generationId, state: 'delivered' });
    expect(await available('dupes')).toBe(999);
    const sameKeyOtherRequest = rt.admit({ idempotencyKey: 'discord-interaction-1234', team: { platform: 'cli', externalId: 'dupes' }, member: { externalId: 'bo' }, request: { prompt: 'something else entirely' } });
    await expect(sameKeyOtherRequest).rejects.toMatchObject({ code: ErrorCode.InvalidRequest });
  });

  it('a transient failure is retried and resumes with the recorded handle', async () => {
    const admitted = await dream({ prompt: 'waves on a rocky shore #transient=2', resolution: '540p' });
    const g = await settled(admitted.generationId);
    expect(g).toMatchObject({ state: 'delivered', chargedCredits: 1 });
    expect(scripted.submits.get(g.id)).toBe(1);
    expect(scripted.resumes.get(g.id)).toBe(3);
    expect(g.attempts).toBe(3);
  });

  it('a permanent failure is not retried, releases the hold and tells the member why', async () => {
    const before = await available('pipeline');
    const admitted = await dream({ prompt: 'something the service refuses #refuse', resolution: '540p' });
    const g = await settled(admitted.generationId);
    expect(g).toMatchObject({ state: 'failed', errorCode: ErrorCode.ContentRefused, chargedCredits: 0 });
    expect(g.errorMessage).toMatch(/refused this prompt/);
    expect(scripted.resumes.get(g.id)).toBe(1);
    const holds = await rt.db.execute(sql`select state from holds where generation_id = ${g.id}`);
    expect(holds[0]!.state).toBe('released');
    expect(await available('pipeline')).toBe(before);
  });

  it('transient failures past the attempt limit end failed and released', async () => {
    const before = await available('pipeline');
    const g = await settled((await dream({ prompt: 'never works #transient=9', resolution: '540p' })).generationId);
    expect(g.state).toBe('failed');
    expect(scripted.resumes.get(g.id)).toBe(3);
    expect(await available('pipeline')).toBe(before);
  });

  it('cancelling a running job stops it and releases its credits', async () => {
    const before = await available('pipeline');
    const admitted = await dream({ prompt: 'a very long render #slow=20000', resolution: '540p' });
    await waitFor(async () => (await getGeneration(rt.db, admitted.generationId))?.backendHandle, 20_000, 'the job to start');
    expect(await rt.cancel(admitted.generationId)).toBe(true);
    const g = await settled(admitted.generationId);
    expect(g.state).toBe('cancelled');
    expect(await available('pipeline')).toBe(before);
    await waitFor(async () => scripted.cancels.includes(g.backendHandle!), 10_000, 'backend cancel');
    expect(await rt.cancel(admitted.generationId)).toBe(false);
  });

  it('extend renders from the last frame of the parent clip, linked to it', async () => {
    const parent = await settled((await dream({ prompt: 'a paper boat drifts down a stream', resolution: '540p' })).generationId);
    const child = await settled((await dream({ prompt: 'it sails on', operation: 'extend', parentId: parent.id, resolution: '540p' })).generationId);
    expect(child).toMatchObject({ state: 'delivered', parentId: parent.id });
  });

  it('operations a backend cannot do are refused before anything is held', async () => {
    const parent = await settled((await dream({ prompt: 'a kite over a beach', resolution: '540p' })).generationId);
    const before = await available('pipeline');
    await expect(dream({ operation: 'upscale', parentId: parent.id })).rejects.toMatchObject({ code: ErrorCode.UnsupportedOperation });
    await expect(dream({ prompt: 'x y z', backend: 'luma' })).rejects.toMatchObject({ code: ErrorCode.BackendUnavailable });
    expect(await available('pipeline')).toBe(before);
  });
});

describe('bad input: a clear message, nothing held, nothing written', () => {
  const cases: [string, () => Promise<Record<string, unknown>>, string, RegExp][] = [
    ['an unknown aspect', async () => ({ prompt: 'a fox in the snow', aspect: '5:4' }), ErrorCode.InvalidRequest, /aspect ratio.*16:9/],
    ['an unknown option', async () => ({ prompt: 'a fox in the snow', fps: 60 }), ErrorCode.InvalidRequest, /Unknown option "fps"/],
    ['a 6,000-character prompt', async () => ({ prompt: 'a'.repeat(6000) }), ErrorCode.PromptTooLong, /6,000 characters; the limit is 5,000/],
    ['an empty prompt', async () => ({ prompt: '  ' }), ErrorCode.PromptMissing, /Describe the clip/],
    ['a PDF as the image', async () => {
      const file = path.join(dir, 'doc.pdf');
      await writeFile(file, '%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n');
      return { prompt: 'animate this', startImage: { kind: 'file', path: file } };
    }, ErrorCode.UnsupportedImage, /PDF/],
    ['a 50 MB image', async () => {
      const file = path.join(dir, 'huge.png');
      await writeFile(file, Buffer.from('89504e470d0a1a0a', 'hex'));
      await truncate(file, 50 * 1024 * 1024);
      return { prompt: 'animate this', startImage: { kind: 'file', path: file } };
    }, ErrorCode.ImageTooLarge, /50\.0 MB; the limit is 10 MB/],
    ['an image URL pointing at 127.0.0.1', async () => ({ prompt: 'animate this', startImage: { kind: 'url', url: 'http://127.0.0.1:9/cat.png' } }), ErrorCode.ForbiddenUrl, /private network/],
    ['an image URL in 10.0.0.0/8', async () => ({ prompt: 'animate this', startImage: { kind: 'url', url: 'http://10.1.2.3/cat.png' } }), ErrorCode.ForbiddenUrl, /private network/],
    ['a loop with an end image', async () => ({ prompt: 'a loop', loop: true, endImage: { kind: 'url', url: 'https://example.com/a.png' } }), ErrorCode.InvalidRequest, /loop/],
  ];

  for (const [name, build, code, message] of cases) {
    it(`refuses ${name}`, async () => {
      await dream({ prompt: 'warm up the team row', resolution: '540p' }, 'strict');
      const before = { credits: await available('strict'), generations: await countRows('generations'), holds: await countRows('holds'), assets: await countRows('assets') };
      const error = await dream(await build(), 'strict').then(() => null, (e: unknown) => e);
      expect(error).toMatchObject({ code, kind: 'user' });
      expect((error as Error).message).toMatch(message);
      // Allow the warm-up job above to be added; the refused one must add nothing.
      expect(await available('strict')).toBe(before.credits);
      expect(await countRows('holds')).toBe(before.holds);
      expect(await countRows('generations')).toBe(before.generations);
      expect(await countRows('assets')).toBe(before.assets);
    });
  }

  it('a blocked word is refused with the word named', async () => {
    await dream({ prompt: 'set up', resolution: '540p' }, 'moderated');
    const teamId = (await rt.db.execute(sql`select team_id from platform_accounts where external_id = 'moderated'`))[0]!.team_id;
    await rt.db.execute(sql`insert into blocklist (team_id, word) values (${teamId}, 'zombie')`);
    const before = await available('moderated');
    await expect(dream({ prompt: 'A Zombie walks through the mall' }, 'moderated')).rejects.toMatchObject({ code: ErrorCode.BlockedWord, message: expect.stringMatching(/"zombie"/) });
    await expect(dream({ prompt: 'zombies-free zone: a quiet mall' }, 'moderated')).resolves.toMatchObject({ duplicate: false });
    expect(await available('moderated')).toBe(before - 1);
  });
});
