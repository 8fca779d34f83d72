import { setTimeout as sleep } from 'node:timers/promises';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getGeneration } from '../../src/generations.ts';
import type { Runtime } from '../../src/runtime.ts';
import { waitFor } from '../support/context.ts';
import { startLumaHarness, type LumaHarness } from './luma-harness.ts';

/**
 * Luma's limits and its unreliable moments, against a fake that enforces the limits itself and counts
 * every create. No public URL here: these jobs finish by polling alone.
 */
let h: LumaHarness;

beforeAll(async () => {
  h = await startLumaHarness({ publicUrl: false, fake: { limits: { concurrent: 2, createsPerMinute: 4 }, timing: { queuedMs: 100, dreamingMs: 600 } } });
});
afterAll(async () => {
  await h?.close();
});

describe('luma limits', () => {
  it('a 429 storm: the concurrency and creates-per-minute limits are never exceeded, and nothing is created twice', async () => {
    const workers = await h.startWorkers({ LUMA_CONCURRENCY: '2', LUMA_CREATES_PER_MINUTE: '4', LUMA_POLL_MS: '200' });
    const since = Date.now();
    h.fake.faults.rateLimitStorm(3, 1);
    const admitted = [];
    for (let i = 0; i < 6; i++) admitted.push(await h.dream({ prompt: `storm clip number ${i + 1}`, resolution: '540p' }, { team: 'storm', user: `m${i % 3}` }));
    const ids = admitted.map((a) => a.generationId);
    await waitFor(async () => {
      const states = await Promise.all(ids.map(async (id) => (await getGeneration(h.web.db, id))?.state));
      return states.filter((s) => s === 'delivered').length >= 4;
    }, 60_000, 'four clips delivered');
    // Give the limiters every chance to (wrongly) let a fifth create through within the minute.
    await sleep(2000);
    const stats = h.fake.stats;
    expect(stats.rejections).toEqual({ storm: 3, concurrency: 0, rate: 0 });
    expect(stats.creates).toBe(4);
    expect(stats.concurrentPeak).toBeLessThanOrEqual(2);
    expect(stats.maxCreatesInAnyWindow(60_000, since)).toBeLessThanOrEqual(4);
    const generations = await Promise.all(ids.map((id) => getGeneration(h.web.db, id)));
    const delivered = generations.filter((g) => g?.state === 'delivered');
    expect(delivered).toHaveLength(4);
    for (const g of delivered) expect(await h.captures(g!.id)).toBe(1);
    expect(new Set(delivered.map((g) => g!.backendHandle)).size).toBe(4);
    // The other two wait for the minute to pass; they were never created, and cancelling returns their credits.
    const waiting = generations.filter((g) => g?.state !== 'delivered');
    for (const g of waiting) {
      expect(g!.backendHandle).toBeNull();
      expect(await h.web.cancel(g!.id)).toBe(true);
    }
    expect(await h.available('storm')).toBe(1000 - 4 * 90);
    await workers.close(0);
  });
});

describe('luma: ambiguous creates are reconciled, never blindly repeated', () => {
  let workers: Runtime;
  beforeAll(async () => {
    h.fake.limits = { concurrent: 10, createsPerMinute: 100 };
    h.fake.faults.clear();
    h.fake.stats.reset();
    // The storm left the queue rate-limited for the rest of its minute: start these on a fresh minute.
    await h.web.queues.forBackend('luma').removeRateLimitKey();
    workers = await h.startWorkers({ LUMA_POLL_MS: '200', LUMA_CREATES_PER_MINUTE: '100' }, { createTimeoutMs: 1500, reconcileDelayMs: 300 });
  });

  const run = async (prompt: string, team: string) => {
    const before = h.fake.stats.creates;
    const g = await h.settled((await h.dream({ prompt, resolution: '540p' }, { team })).generationId);
    expect(g.state).toBe('delivered');
    expect(await h.captures(g.id)).toBe(1);
    return { g, creates: h.fake.stats.creates - before };
  };

  it('a create that succeeds on the server but times out to the client is found in the list', async () => {
    h.fake.faults.hangCreates(1, 5000);
    const { g, creates } = await run('a lantern floats up into the night', 'hang');
    expect(creates).toBe(1);
    expect(g.submitCount).toBe(1);
    expect(h.fake.stats.requestsFor('GET /generations')).toBeGreaterThanOrEqual(1);
  });

  it('a 5xx after the server accepted the create is found in the list', async () => {
    h.fake.faults.serverErrorsNext(1, { route: 'create', afterCommit: true });
    const { g, creates } = await run('a train crosses a viaduct', 'after-commit');
    expect(creates).toBe(1);
    expect(g.submitCount).toBe(1);
  });

  it('a 5xx before anything was created: the list shows nothing, so the next attempt creates it, once', async () => {
    h.fake.faults.serverErrorsNext(1, { route: 'create', afterCommit: false });
    const { g, creates } = await run('a heron takes off from a reed bed', 'before-commit');
    expect(creates).toBe(1);
    expect(g.submitCount).toBe(2);
  });

  it('5xx and slow answers on reads are waited out (reads are retried, creates are not)', async () => {
    const readsBefore = h.fake.stats.requestsFor('GET /generations/:id');
    h.fake.faults.serverErrorsNext(3, { route: 'read', status: 503 });
    const { g, creates } = await run('rain on a tin roof', 'flaky-reads');
    expect(creates).toBe(1);
    expect(g.attempts).toBe(1);
    expect(h.fake.stats.requestsFor('GET /generations/:id') - readsBefore).toBeGreaterThanOrEqual(4);
  });

  afterAll(async () => {
    await workers?.close(0);
  });
});
