import { spawn, type ChildProcess } from 'node:child_process';
import { createHash } from 'node:crypto';
import { mkdtemp, readFile, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { Redis } from 'ioredis';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAsset } from '../../src/assets.ts';
import { ComfyClient } from '../../src/backends/comfyui/client.ts';
import { clientIdFor, promptIdFor, seedFor } from '../../src/backends/comfyui/ids.ts';
import { ComfyUIBackend, type ComfyUITiming } from '../../src/backends/comfyui/index.ts';
import { Workflow, WORKFLOWS_DIR } from '../../src/backends/comfyui/workflow.ts';
import { loadConfig } from '../../src/config.ts';
import { ErrorCode } from '../../src/errors.ts';
import { getGeneration, type Generation } from '../../src/generations.ts';
import { runFfmpeg } from '../../src/media/ffmpeg.ts';
import { probe } from '../../src/media/probe.ts';
import { Runtime } from '../../src/runtime.ts';
import { FakeComfyUI } from '../fakes/comfyui/server.ts';
import { createTestContext, TEST_REDIS_URL, waitFor, type TestContext } from '../support/context.ts';

/**
 * The comfyui backend end to end: a real Runtime (Postgres, Redis, BullMQ workers) against three fake
 * ComfyUI servers that speak the real protocol and render real MP4s.
 */
const FAST: Partial<ComfyUITiming> = {
  pollMs: 200, socketPollFactor: 5, deadAfterFailures: 3, probeEveryMs: 400, backoffBaseMs: 200, backoffMaxMs: 1600,
  claimPollMs: 100, claimTimeoutMs: 30_000, moveWaitMs: 2500, lockTtlMs: 5000,
};
const mapping = JSON.parse(await readFile(path.join(WORKFLOWS_DIR, 'wan2.2-ti2v-5b.map.json'), 'utf8')) as {
  slots: Record<string, { node: string; input: string }>;
};

let ctx: TestContext;
let rt: Runtime;
let fakes: FakeComfyUI[];
let backend: ComfyUIBackend;
let redis: Redis;
let dir: string;
let ffmpeg: string;

beforeAll(async () => {
  fakes = await Promise.all([0, 1, 2].map((i) => FakeComfyUI.start({ promptMs: 1200, name: `gpu-${i}` })));
  // The two sizes these tests ask for, rendered once up front (540p 16:9 and 9:16, 121 frames at 24 fps).
  const warm = Promise.all([fakes[0]!.prepare({ width: 960, height: 544, frames: 121, fps: 24 }), fakes[0]!.prepare({ width: 544, height: 960, frames: 121, fps: 24 })]);
  ctx = await createTestContext({ JOB_ATTEMPTS: '3', DEFAULT_TEAM_CREDITS: '100000', MEMBER_ACTIVE_JOBS: '5' });
  redis = new Redis(TEST_REDIS_URL);
  rt = await Runtime.create(loadConfig(ctx.env), {
    log: ctx.log,
    backends: (defaults, media) => {
      backend = new ComfyUIBackend({
        urls: fakes.map((f) => f.url), workflow: 'wan2.2-ti2v-5b', creditsPerGpuSecond: 1, redis,
        redisPrefix: ctx.config.REDIS_PREFIX, bins: media.bins, log: ctx.log, timing: FAST,
      });
      return new Map([...defaults, ['comfyui', backend]]);
    },
  });
  ffmpeg = rt.bins.ffmpeg;
  await backend.ready();
  await rt.startWorkers();
  dir = await mkdtemp(path.join(os.tmpdir(), 'dreambot-comfyui-'));
  await warm;
}, 90_000);

afterAll(async () => {
  await rt?.close(1000);
  await redis?.quit();
  await ctx?.cleanup();
  await Promise.all((fakes ?? []).map((f) => f.close()));
});

let keys = 0;
function dream(request: Record<string, unknown>, runtime = rt, member = 'ana') {
  keys += 1;
  return runtime.admit({
    idempotencyKey: `comfy-${keys}`, team: { platform: 'cli', externalId: 'gpu-team' }, member: { externalId: member },
    request: { backend: 'comfyui', resolution: '540p', ...request }, replyTo: { platform: 'cli' },
  });
}

async function settled(id: string, runtime = rt, timeoutMs = 45_000): Promise<Generation> {
  return waitFor(async () => {
    const g = await getGeneration(runtime.db, id);
    return g && ['delivered', 'failed', 'cancelled'].includes(g.state) ? g : null;
  }, timeoutMs, `generation ${id} to end`);
}

async function available(runtime = rt): Promise<number> {
  const rows = await runtime.db.execute(sql`
    select a.balance from accounts a join platform_accounts p on p.team_id = a.team_id
    where p.platform = 'cli' and p.external_id = 'gpu-team' and a.kind = 'available'`);
  return rows[0] ? Number(rows[0].balance) : NaN;
}

/** The graph the fake received for this prompt id, and the fake that received it. */
function received(promptId: string) {
  const hits = fakes.flatMap((fake) => fake.received.filter((r) => r.promptId === promptId).map((r) => ({ fake, ...r })));
  return hits;
}

const slot = (prompt: Record<string, { inputs?: Record<string, unknown> }>, name: string) => {
  const s = mapping.slots[name]!;
  return prompt[s.node]?.inputs?.[s.input];
};

async function clipOf(g: Generation) {
  const file = path.join(dir, `${g.id}.mp4`);
  await writeFile(file, (await readAsset(rt.db, g.resultAssetId!)).data);
  return probe(rt.bins.ffprobe, file);
}

function pngSize(data: Buffer): { width: number; height: number } {
  expect(data.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
  return { width: data.readUInt32BE(16), height: data.readUInt32BE(20) };
}

const allHealthy = () => waitFor(async () => backend.pool.status().every((s) => s.healthy), 20_000, 'every server back in rotation');
const runningOn = (promptId: string) => waitFor(async () => fakes.find((f) => f.runningPromptId === promptId), 20_000, `prompt ${promptId} to run`);

let textClip: Generation;

describe('comfyui backend through a real runtime', () => {
  it('text-to-video: the mapped slots carry our prompt, seed, size and frames; the clip is a real MP4 of that size', async () => {
    const before = 100_000; // a new team starts with DEFAULT_TEAM_CREDITS
    const admitted = await dream({ prompt: 'a red fox runs through fresh snow' });
    expect(admitted).toMatchObject({ backend: 'comfyui', model: 'wan2.2-ti2v-5b', credits: 60 });
    const g = await settled(admitted.generationId);
    expect(g.state).toBe('delivered');
    const promptId = promptIdFor(g.id);
    const hits = received(promptId);
    expect(hits).toHaveLength(1);
    const { fake, prompt, clientId } = hits[0]!;
    expect(g.backendHandle).toBe(`${promptId}@${fake.url}`);
    expect(clientId).toBe(clientIdFor(promptId));
    expect(slot(prompt, 'prompt')).toBe('a red fox runs through fresh snow');
    expect(slot(prompt, 'seed')).toBe(seedFor(g.id));
    expect([slot(prompt, 'width'), slot(prompt, 'height'), slot(prompt, 'frames'), slot(prompt, 'fps')]).toEqual([960, 544, 121, 24]);
    // Text-to-video: the template's LoadImage node and its link are gone.
    expect(prompt[mapping.slots.startImage!.node]).toBeUndefined();
    expect(prompt['55']!.inputs).not.toHaveProperty('start_image');
    expect(fake.executionsOf(promptId)).toBe(1);

    const info = await clipOf(g);
    expect(info).toMatchObject({ codec: 'h264', width: 960, height: 544 });
    expect(Math.abs(info.durationS - 121 / 24)).toBeLessThan(0.1);
    // Measured GPU seconds × 1 credit, rounded up, never above the 60-credit hold.
    const gpuSeconds = g.resultMeta!.gpuSeconds as number;
    expect(gpuSeconds).toBeGreaterThan(1);
    expect(g.chargedCredits).toBe(Math.min(60, Math.ceil(gpuSeconds)));
    expect(await available()).toBe(before - g.chargedCredits!);
    textClip = g;
  });

  it('image-to-video uploads the start image and names it in the LoadImage slot', async () => {
    const png = path.join(dir, 'start.png');
    await runFfmpeg(ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=640x360', '-frames:v', '1', png]);
    const g = await settled((await dream({ prompt: 'the pattern starts to swirl', aspect: '9:16', startImage: { kind: 'file', path: png } })).generationId);
    expect(g.state).toBe('delivered');
    const promptId = promptIdFor(g.id);
    const [{ fake, prompt }] = received(promptId) as [ReturnType<typeof received>[number]];
    const name = `dreambot-${promptId}.png`;
    expect(slot(prompt, 'startImage')).toBe(name);
    expect(prompt['55']!.inputs!.start_image).toEqual([mapping.slots.startImage!.node, 0]);
    const sha = (b: Buffer) => createHash('sha256').update(b).digest('hex');
    expect(sha(fake.uploads.get(name)!)).toBe(sha(await readFile(png)));
    expect([slot(prompt, 'width'), slot(prompt, 'height')]).toEqual([544, 960]);
    expect(await clipOf(g)).toMatchObject({ width: 544, height: 960 });
  });

  it('extend starts from the last frame of the parent clip, uploaded to the server', async () => {
    const g = await settled((await dream({ operation: 'extend', parentId: textClip.id, prompt: 'the fox leaps over a log' })).generationId);
    expect(g).toMatchObject({ state: 'delivered', parentId: textClip.id });
    const promptId = promptIdFor(g.id);
    const [{ fake, prompt }] = received(promptId) as [ReturnType<typeof received>[number]];
    const name = `dreambot-${promptId}.png`;
    expect(slot(prompt, 'startImage')).toBe(name);
    // A PNG frame of the parent's size: the parent's last frame.
    expect(pngSize(fake.uploads.get(name)!)).toEqual({ width: 960, height: 544 });
  });

  it('progress from the WebSocket reaches the generation row', async () => {
    for (const f of fakes) f.faults.slow = { count: 1, extraMs: 3000 };
    const admitted = await dream({ prompt: 'slow clouds over a valley' });
    const seen: number[] = [];
    await waitFor(async () => {
      const g = await getGeneration(rt.db, admitted.generationId);
      if (g?.state === 'running' && g.progress > 0 && g.progress < 1) seen.push(g.progress);
      return g?.state === 'delivered';
    }, 30_000, 'delivery');
    for (const f of fakes) f.faults.slow = undefined;
    expect(seen.length).toBeGreaterThanOrEqual(2);
    expect(new Set(seen).size).toBeGreaterThanOrEqual(2);
    expect([...seen].sort((a, b) => a - b)).toEqual(seen);
    expect((await getGeneration(rt.db, admitted.generationId))!.progress).toBe(1);
  });

  it('a server dying mid-prompt: the job moves to another server with the same prompt id and completes', async () => {
    const before = await available();
    const admitted = await dream({ prompt: 'a lighthouse beam sweeps the fog' });
    const promptId = promptIdFor(admitted.generationId);
    const first = await runningOn(promptId);
    await waitFor(async () => (await getGeneration(rt.db, admitted.generationId))?.backendHandle, 10_000, 'handle');
    await first.die();
    const g = await settled(admitted.generationId);
    expect(g.state).toBe('delivered');
    const hits = received(promptId);
    expect(hits.map((h) => h.fake)).toHaveLength(2);
    expect(hits[0]!.fake).toBe(first);
    const second = hits[1]!.fake;
    expect(second).not.toBe(first);
    expect(second.executions.find((e) => e.promptId === promptId)?.outcome).toBe('success');
    expect(g.resultMeta).toMatchObject({ server: second.url, moves: 1 });
    expect(g.submitCount).toBe(1);
    expect(await available()).toBe(before - g.chargedCredits!);
    expect(backend.pool.status().find((s) => s.url === first.url)?.healthy).toBe(false);
    await first.revive();
    await allHealthy();
  });

  it('…or fails cleanly when no other server is free, releasing every credit', async () => {
    const [a, b, c] = fakes as [FakeComfyUI, FakeComfyUI, FakeComfyUI];
    b.faults.systemStatsFails = true;
    c.faults.systemStatsFails = true;
    await waitFor(async () => backend.pool.status().filter((s) => s.healthy).length === 1, 10_000, 'two servers out of rotation');
    const before = await available();
    a.faults.dieAt = 0.5; // half-way through sampling, the process goes away
    const admitted = await dream({ prompt: 'a storm rolls over the sea' });
    const promptId = promptIdFor(admitted.generationId);
    const g = await settled(admitted.generationId);
    expect(a.executions.find((e) => e.promptId === promptId)?.outcome).toBe('died');
    expect(g).toMatchObject({ state: 'failed', errorCode: ErrorCode.BackendUnavailable, chargedCredits: 0 });
    expect(await available()).toBe(before);
    const holds = await rt.db.execute(sql`select state from holds where generation_id = ${g.id}`);
    expect(holds.map((h) => h.state)).toEqual(['released']);
    expect(received(promptId).map((h) => h.fake)).toEqual([a]);
    await a.revive();
    b.faults.systemStatsFails = false;
    c.faults.systemStatsFails = false;
    await allHealthy();
  });

  it('an unhealthy server is skipped, re-probed with backoff, and back in rotation once it recovers', async () => {
    const sick = fakes[0]!;
    sick.faults.systemStatsFails = true;
    await waitFor(async () => backend.pool.status()[0]!.healthy === false, 10_000, 'the sick server out of rotation');
    const failedSince = Date.now();
    const promptsBefore = sick.counters.prompts;
    const batch = await Promise.all([1, 2, 3].map((i) => dream({ prompt: `three jobs while one GPU is sick ${i}` }, rt, `m${i}`)));
    for (const g of await Promise.all(batch.map((a) => settled(a.generationId)))) expect(g.state).toBe('delivered');
    expect(sick.counters.prompts).toBe(promptsBefore);
    // Re-probed meanwhile, each wait longer than the last (200 ms, 400, 800, 1600).
    const since = () => sick.systemStatsAt.filter((t) => t >= failedSince);
    await waitFor(async () => since().length >= 4, 10_000, 'four re-probes');
    const probes = since();
    const gaps = probes.slice(1).map((t, i) => t - probes[i]!);
    expect(gaps.at(-1)!).toBeGreaterThan(gaps[0]! * 1.5);

    sick.faults.systemStatsFails = false;
    await allHealthy();
    const again = await Promise.all([1, 2, 3].map((i) => dream({ prompt: `three jobs on three healthy GPUs ${i}` }, rt, `m${i}`)));
    for (const g of await Promise.all(again.map((a) => settled(a.generationId)))) expect(g.state).toBe('delivered');
    expect(sick.counters.prompts).toBeGreaterThan(promptsBefore);
    expect(await backend.estimatedWaitSeconds()).toBe(0);
    // Every server held by some prompt: about half a measured clip until one frees up.
    for (const server of backend.pool.servers) await redis.set(server.lockKey, 'someone-else', 'PX', 5000);
    const typical = Number(await redis.get(`${ctx.config.REDIS_PREFIX}:comfyui:typical`));
    expect(typical).toBeGreaterThan(1);
    expect(await backend.estimatedWaitSeconds()).toBe(Math.round(typical / 2));
    for (const server of backend.pool.servers) await redis.del(server.lockKey);
  });

  it('an execution_error fails the job for good (no retry) and releases its credits', async () => {
    for (const f of fakes) f.faults.executionError = { count: 1, message: 'Allocation on device 0 would exceed allowed memory. (out of memory)' };
    const before = await available();
    const g = await settled((await dream({ prompt: 'too big for this GPU' })).generationId);
    for (const f of fakes) f.faults.executionError = undefined;
    expect(g).toMatchObject({ state: 'failed', errorCode: ErrorCode.BackendFailed, chargedCredits: 0, submitCount: 1, attempts: 1 });
    expect(await available()).toBe(before);
    expect(received(promptIdFor(g.id))).toHaveLength(1);
  });

  it('end images and loops are refused before anything is held', async () => {
    const before = await available();
    const png = path.join(dir, 'start.png');
    await expect(dream({ prompt: 'from here to there', endImage: { kind: 'file', path: png } })).rejects.toMatchObject({ code: ErrorCode.UnsupportedOperation, message: expect.stringMatching(/can't end on an image/) });
    await expect(dream({ prompt: 'round and round', loop: true })).rejects.toMatchObject({ code: ErrorCode.UnsupportedOperation, message: expect.stringMatching(/can't make loops/) });
    await expect(dream({ prompt: 'too sharp', resolution: '1080p' })).rejects.toMatchObject({ code: ErrorCode.UnsupportedOperation });
    expect(await available()).toBe(before);
  });

  it('cancel interrupts our prompt on the server running it, and nowhere else', async () => {
    for (const f of fakes) f.faults.slow = { count: 1, extraMs: 20_000 };
    const before = await available();
    const admitted = await dream({ prompt: 'a very long sunset' });
    const promptId = promptIdFor(admitted.generationId);
    const server = await runningOn(promptId);
    await waitFor(async () => (await getGeneration(rt.db, admitted.generationId))?.backendHandle, 10_000, 'handle');
    expect(await rt.cancel(admitted.generationId)).toBe(true);
    expect((await settled(admitted.generationId)).state).toBe('cancelled');
    await waitFor(async () => server.interrupts.some((i) => i.promptId === promptId && i.hit), 10_000, '/interrupt');
    for (const f of fakes) f.faults.slow = undefined;
    expect(fakes.filter((f) => f !== server).flatMap((f) => f.interrupts)).toEqual([]);
    await waitFor(async () => !server.runningPromptId, 10_000, 'the server to stop the prompt');
    const history = await new ComfyClient(server.url).history(promptId);
    expect(history?.status?.status_str).toBe('error');
    expect(history?.status?.messages.map(([t]) => t)).toContain('execution_interrupted');
    expect(await available()).toBe(before);
  });

  it("a crashed worker's job resumes with the same prompt id: one POST, one execution, one capture", async () => {
    const urls = fakes.map((f) => f.url).join(',');
    const other = await createTestContext({ COMFYUI_URLS: urls, DEFAULT_TEAM_CREDITS: '100000', WORKER_LOCK_MS: '2000', RECONCILE_INTERVAL_MS: '2000' });
    const children: ChildProcess[] = [];
    const worker = () => {
      const child = spawn(process.execPath, ['bin/dreambot.js', 'start', '--role', 'worker'], {
        env: { ...process.env, ...other.env, LOG_LEVEL: 'warn' }, stdio: ['ignore', 'ignore', 'pipe'],
      });
      child.stderr!.resume();
      children.push(child);
      return child;
    };
    try {
      const admitting = await other.runtime();
      await (admitting.backends.get('comfyui') as ComfyUIBackend).ready();
      const first = worker();
      await waitFor(async () => (await admitting.workersOnline()) >= 1, 30_000, 'worker A online');
      for (const f of fakes) f.faults.slow = { count: 1, extraMs: 5000 };
      const admitted = await dream({ prompt: 'a slow orbit around a lighthouse' }, admitting);
      const promptId = promptIdFor(admitted.generationId);
      await waitFor(async () => (await getGeneration(admitting.db, admitted.generationId))?.backendHandle, 30_000, 'the handle recorded');
      await runningOn(promptId);
      first.kill('SIGKILL');
      worker();
      const g = await settled(admitted.generationId, admitting, 60_000);
      for (const f of fakes) f.faults.slow = undefined;
      expect(g).toMatchObject({ state: 'delivered', submitCount: 1 });
      expect(g.attempts).toBeGreaterThanOrEqual(2);
      const hits = received(promptId);
      expect(hits).toHaveLength(1);
      expect(hits[0]!.fake.executionsOf(promptId)).toBe(1);
      const captures = await admitting.db.execute(sql`select count(*) as n from transfers where generation_id = ${g.id} and kind = 'capture'`);
      expect(Number(captures[0]!.n)).toBe(1);
    } finally {
      for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      await other.cleanup();
    }
  }, 90_000);
});

describe('the fake server, the templates and the startup check', () => {
  it('speaks ComfyUI: status with sid, then execution_start … executing null, only to the submitting client', async () => {
    const { default: WebSocket } = await import('ws');
    const fake = fakes[2]!;
    const wf = await Workflow.load('wan2.2-ti2v-5b');
    const listen = (clientId: string) => new Promise<{ ws: InstanceType<typeof WebSocket>; messages: { type: string; data: Record<string, unknown> }[] }>((resolve) => {
      const ws = new WebSocket(new ComfyClient(fake.url).socketUrl(clientId));
      const messages: { type: string; data: Record<string, unknown> }[] = [];
      ws.on('message', (raw) => messages.push(JSON.parse(raw.toString()) as { type: string; data: Record<string, unknown> }));
      ws.on('open', () => resolve({ ws, messages }));
    });
    const mine = await listen('me');
    const other = await listen('someone-else');
    const promptId = '00000000-0000-4000-8000-0000000000aa';
    const prompt = wf.build({ prompt: 'x', seed: 1, plan: wf.plan({ aspect: '16:9', resolution: '540p', duration: '5s' }) });
    await new ComfyClient(fake.url).submit({ prompt, client_id: 'me', prompt_id: promptId });
    await waitFor(async () => mine.messages.some((m) => m.type === 'executing' && m.data.node === null), 10_000, 'the end of the prompt');
    mine.ws.close();
    other.ws.close();
    expect(mine.messages[0]).toEqual({ type: 'status', data: { status: { exec_info: { queue_remaining: 0 } }, sid: 'me' } });
    const ours = mine.messages.filter((m) => m.data.prompt_id === promptId).map((m) => m.type);
    expect(ours.slice(0, 3)).toEqual(['execution_start', 'execution_cached', 'executing']);
    expect(ours.slice(-3)).toEqual(['executed', 'execution_success', 'executing']);
    expect(ours.filter((t) => t === 'progress')).toHaveLength(10);
    const progress = mine.messages.find((m) => m.type === 'progress')!.data;
    expect(progress).toEqual({ value: 1, max: 10, prompt_id: promptId, node: '3' });
    expect(mine.messages.find((m) => m.type === 'executed')!.data.output).toEqual({ images: [{ filename: expect.stringMatching(/^dreambot_\d{5}_\.mp4$/), subfolder: 'video', type: 'output' }], animated: [true] });
    // Execution messages go to the submitting client only; queue status goes to everyone.
    expect(other.messages.filter((m) => m.data.prompt_id === promptId)).toEqual([]);
    expect(other.messages.filter((m) => m.type === 'status').length).toBeGreaterThan(1);
    const entry = await new ComfyClient(fake.url).history(promptId);
    expect(entry?.status).toMatchObject({ status_str: 'success', completed: true });
    expect(entry?.outputs['58']).toMatchObject({ animated: [true] });
  });

  it('a server without a node type the workflow needs fails the startup check, naming it', async () => {
    const stale = await FakeComfyUI.start({ missingNodes: ['Wan22ImageToVideoLatent'] });
    const own = new Redis(TEST_REDIS_URL);
    try {
      const broken = new ComfyUIBackend({
        urls: [stale.url], workflow: 'wan2.2-ti2v-5b', creditsPerGpuSecond: 1, redis: own, redisPrefix: ctx.config.REDIS_PREFIX,
        bins: rt.bins, log: ctx.log, timing: FAST,
      });
      const error = await broken.ready().then(() => null, (e: unknown) => e as Error);
      expect(error?.message).toMatch(/^COMFYUI_WORKFLOW=wan2\.2-ti2v-5b cannot run on http:\/\/127\.0\.0\.1:\d+\/: node type "Wan22ImageToVideoLatent" \(node 55\) is missing/);
      expect(() => broken.check()).toThrow(expect.objectContaining({ code: ErrorCode.BackendUnavailable, kind: 'user' }));
      await broken.close();
      // The server itself refuses such a graph with ComfyUI's own error shape.
      const res = await fetch(new URL('prompt', stale.url), { method: 'POST', body: JSON.stringify({ prompt: { '55': { class_type: 'Wan22ImageToVideoLatent', inputs: {} } } }) });
      expect(res.status).toBe(400);
      expect(await res.json()).toEqual({
        error: { type: 'invalid_prompt', message: 'Cannot execute because node Wan22ImageToVideoLatent does not exist.', details: "Node ID '#55'", extra_info: {} },
        node_errors: {},
      });
      await expect(Workflow.load('no-such-model')).rejects.toThrow(/COMFYUI_WORKFLOW=no-such-model.*Available: .*ltx-video.*wan2\.2-ti2v-5b/);
    } finally {
      await own.quit();
      await stale.close();
    }
  });

  it('LTX-Video fills 32-pixel multiples and 8n+1 frames, as text- and image-to-video graphs the server accepts', async () => {
    const ltx = await Workflow.load('ltx-video');
    expect(ltx.plan({ aspect: '16:9', resolution: '720p', duration: '5s' })).toEqual({ width: 1280, height: 704, frames: 121, fps: 24 });
    expect(ltx.plan({ aspect: '4:3', resolution: '540p', duration: '9s' })).toEqual({ width: 864, height: 640, frames: 217, fps: 24 });
    const fake = fakes[1]!;
    const client = new ComfyClient(fake.url);
    expect(ltx.problems(await client.objectInfo())).toEqual([]);
    const plan = ltx.plan({ aspect: '1:1', resolution: '540p', duration: '5s' });
    const t2v = ltx.build({ prompt: 'waves', seed: 7, plan });
    expect(Object.values(t2v).map((n) => n.class_type)).toContain('EmptyLTXVLatentVideo');
    const ids = [await client.submit({ prompt: t2v, client_id: 'test', prompt_id: '00000000-0000-4000-8000-000000000001' })];
    const png = path.join(dir, 'ltx.png');
    await runFfmpeg(ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=size=320x240', '-frames:v', '1', png]);
    const image = await client.uploadImage(png, 'ltx-start.png');
    const i2v = ltx.build({ prompt: 'waves', seed: 7, plan, image });
    expect(i2v['78']!.inputs.image).toBe('ltx-start.png');
    expect(i2v['70']).toMatchObject({ class_type: 'LTXVImgToVideo', inputs: { width: 768, height: 768, length: 121 } });
    ids.push(await client.submit({ prompt: i2v, client_id: 'test', prompt_id: '00000000-0000-4000-8000-000000000002' }));
    expect(ids).toEqual(['00000000-0000-4000-8000-000000000001', '00000000-0000-4000-8000-000000000002']);
    await client.deleteQueued(ids[1]!);
    await client.interrupt(ids[0]!);
    await waitFor(async () => !fake.runningPromptId, 10_000, 'the fake to be idle');
    // A wrong value comes back as ComfyUI's node_errors, which the client turns into one readable line.
    const bad = ltx.build({ prompt: 'x', seed: 1, plan: { ...plan, frames: 0 } });
    await expect(client.submit({ prompt: bad, client_id: 'test', prompt_id: '00000000-0000-4000-8000-000000000003' }))
      .rejects.toThrow(/Prompt outputs failed validation.*node 70 EmptyLTXVLatentVideo: Value 0 smaller than min of 1/);
  });
});
