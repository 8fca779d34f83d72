import { spawn, type ChildProcess } from 'node:child_process';
import { writeFile, mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { readAsset } from '../src/assets.ts';
import { getGeneration } from '../src/generations.ts';
import { probe } from '../src/media/probe.ts';
import type { Runtime } from '../src/runtime.ts';
import { createTestContext, waitFor, type TestContext } from './support/context.ts';

/** Real worker processes (`dreambot start --role worker`), killed the hard way and the polite way. */
let ctx: TestContext;
let rt: Runtime;
const children: ChildProcess[] = [];
const logs: string[] = [];

function startWorker(extra: Record<string, string> = {}): ChildProcess {
  const child = spawn(process.execPath, ['bin/dreambot.js', 'start', '--role', 'worker'], {
    env: { ...process.env, ...ctx.env, WORKER_LOCK_MS: '2000', RECONCILE_INTERVAL_MS: '2000', LOG_LEVEL: 'info', ...extra },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  child.stdout!.on('data', (d: Buffer) => logs.push(d.toString()));
  child.stderr!.on('data', (d: Buffer) => logs.push(d.toString()));
  children.push(child);
  return child;
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  if (child.exitCode !== null || child.signalCode !== null) return Promise.resolve({ code: child.exitCode, signal: child.signalCode });
  return new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
}

beforeAll(async () => {
  ctx = await createTestContext();
  rt = await ctx.runtime();
});
afterAll(async () => {
  for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
  await ctx.cleanup();
});

async function admitSlow(key: string) {
  return rt.admit({
    idempotencyKey: key, team: { platform: 'cli', externalId: 'crashy' }, member: { externalId: 'kim' },
    request: { prompt: 'a slow orbit around a lighthouse', resolution: '720p', duration: '9s', camera: 'orbit_left' },
    replyTo: { platform: 'cli' },
  });
}

async function captures(generationId: string): Promise<number> {
  const rows = await rt.db.execute(sql`select count(*) as n from transfers where generation_id = ${generationId} and kind = 'capture'`);
  return Number(rows[0]!.n);
}

describe('worker crashes and shutdowns', () => {
  it('a worker killed with SIGKILL mid-job: another resumes it, with one submission and one capture', async () => {
    const first = startWorker();
    await waitFor(async () => (await rt.workersOnline()) >= 1, 30_000, 'worker A online');
    const { generationId } = await admitSlow('crash-1');
    await waitFor(async () => {
      const g = await getGeneration(rt.db, generationId);
      return g?.state === 'running' && g.backendHandle !== null;
    }, 30_000, 'the job to be running with a recorded handle');
    first.kill('SIGKILL');
    expect((await exited(first)).signal).toBe('SIGKILL');
    expect((await getGeneration(rt.db, generationId))?.state).toBe('running');

    startWorker();
    const g = await waitFor(async () => {
      const current = await getGeneration(rt.db, generationId);
      return current?.state === 'delivered' ? current : null;
    }, 90_000, 'the job to be resumed and delivered');
    expect(g.submitCount).toBe(1);
    expect(g.attempts).toBeGreaterThanOrEqual(2);
    expect(await captures(generationId)).toBe(1);
    const clip = await readAsset(rt.db, g.resultAssetId!);
    const file = path.join(await mkdtemp(path.join(os.tmpdir(), 'dreambot-crash-')), 'clip.mp4');
    await writeFile(file, clip.data);
    const info = await probe(rt.bins.ffprobe, file);
    expect(info).toMatchObject({ codec: 'h264', width: 1280, height: 720 });
    expect(Math.abs(info.durationS - 9)).toBeLessThanOrEqual(0.1);
  }, 150_000);

  it('SIGTERM stops taking jobs, hands a running one back within the grace period, and exits cleanly', async () => {
    for (const child of children) if (child.exitCode === null && child.signalCode === null) child.kill('SIGTERM');
    await Promise.all(children.map(exited));
    const polite = startWorker({ SHUTDOWN_GRACE_MS: '300' });
    await waitFor(async () => (await rt.workersOnline()) >= 1, 30_000, 'worker online');
    const { generationId } = await admitSlow('term-1');
    await waitFor(async () => (await getGeneration(rt.db, generationId))?.backendHandle, 30_000, 'the job to start');
    const stoppedAt = Date.now();
    polite.kill('SIGTERM');
    const exit = await exited(polite);
    expect(exit.code).toBe(0);
    expect(Date.now() - stoppedAt).toBeLessThan(15_000);
    expect(['running', 'dispatched']).toContain((await getGeneration(rt.db, generationId))?.state);

    await rt.startWorkers();
    const g = await waitFor(async () => {
      const current = await getGeneration(rt.db, generationId);
      return current?.state === 'delivered' ? current : null;
    }, 90_000, 'the handed-back job to finish elsewhere');
    expect(g.submitCount).toBe(1);
    expect(await captures(generationId)).toBe(1);
  }, 150_000);
});
