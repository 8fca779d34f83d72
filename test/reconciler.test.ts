import { UnrecoverableError, Worker } from 'bullmq';
import { Redis } from 'ioredis';
import { sql } from 'drizzle-orm';
import { afterAll, afterEach, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../src/errors.ts';
import { getGeneration } from '../src/generations.ts';
import { Dispatcher } from '../src/queue/dispatcher.ts';
import { generationJobId, generationQueueName } from '../src/queue/queues.ts';
import { reconcile, type ReconcileReport } from '../src/queue/reconciler.ts';
import type { Runtime } from '../src/runtime.ts';
import { createTestContext, TEST_REDIS_URL, waitFor, type TestContext } from './support/context.ts';

/**
 * The reconciler against real Postgres and Redis, with no workers started: every state below is made
 * on purpose (a lost BullMQ job, a dead one, a crash between two steps), and nothing moves on its own.
 */
let ctx: TestContext;
let rt: Runtime;
let dispatcher: Dispatcher;
let keys = 0;
const touched: string[] = [];
const zero: ReconcileReport = { requeued: 0, failedLost: 0, redelivered: 0, holdsReleased: 0, timedOut: 0 };

beforeAll(async () => {
  ctx = await createTestContext({ HOLD_SWEEP_AFTER_MS: '60000' });
  rt = await ctx.runtime();
  dispatcher = new Dispatcher({ db: rt.db, queues: rt.queues, config: rt.config, log: rt.log, slots: new Map([['preview', 50]]) });
});
afterAll(async () => {
  await ctx.cleanup();
});
// Whatever a test left open is ended and its BullMQ job removed, so the next test's pass sees only its own rows.
afterEach(async () => {
  for (const id of touched.splice(0)) {
    await rt.cancel(id).catch(() => false);
    await (await rt.queues.forBackend('preview').getJob(generationJobId(id)))?.remove().catch(() => undefined);
  }
});

const deps = (runtime: Runtime = rt) => ({ db: runtime.db, queues: runtime.queues, config: runtime.config, log: runtime.log });

async function admit(team: string): Promise<string> {
  keys += 1;
  const admitted = await rt.admit({
    idempotencyKey: `recon-${ctx.id}-${keys}`, team: { platform: 'cli', externalId: team }, member: { externalId: `member-${keys}` },
    request: { prompt: 'a lighthouse beam sweeps across the fog', resolution: '540p' }, replyTo: { platform: 'cli' },
  });
  expect(admitted).toMatchObject({ state: 'queued', credits: 1 });
  touched.push(admitted.generationId);
  return admitted.generationId;
}

async function available(team: string): Promise<number> {
  const rows = await rt.db.execute(sql`
    select a.balance from accounts a join platform_accounts p on p.team_id = a.team_id
    where p.platform = 'cli' and p.external_id = ${team} and a.kind = 'available'`);
  return rows[0] ? Number(rows[0].balance) : NaN;
}

async function hold(id: string): Promise<{ state: string; releases: number }> {
  const holds = await rt.db.execute(sql`select state from holds where generation_id = ${id}`);
  const releases = await rt.db.execute(sql`select count(*)::int as n from transfers where generation_id = ${id} and kind = 'release'`);
  expect(holds).toHaveLength(1);
  return { state: String(holds[0]!.state), releases: Number(releases[0]!.n) };
}

/** As if the row had not moved for ten minutes. */
async function quietSince(id: string): Promise<void> {
  await rt.db.execute(sql`update generations set updated_at = now() - interval '10 minutes' where id = ${id}`);
}

async function dispatchOnly(id: string): Promise<void> {
  expect(await dispatcher.dispatchBackend('preview')).toEqual([id]);
  expect((await getGeneration(rt.db, id))?.state).toBe('dispatched');
}

const queue = () => rt.queues.forBackend('preview');
const full = () => rt.config.DEFAULT_TEAM_CREDITS;

describe('reconcile', () => {
  it('re-adds the BullMQ job of a dispatched generation whose job vanished, once it has been quiet long enough', async () => {
    const id = await admit('lost-job');
    await dispatchOnly(id);
    const job = await queue().getJob(generationJobId(id));
    expect(job).toBeTruthy();
    await job!.remove();
    expect(await queue().getJob(generationJobId(id))).toBeFalsy();

    // Recently touched: a worker may be about to pick it up, so it is left alone.
    expect(await reconcile(deps())).toEqual(zero);
    expect(await queue().getJob(generationJobId(id))).toBeFalsy();

    await quietSince(id);
    expect(await reconcile(deps())).toEqual({ ...zero, requeued: 1 });
    const again = await queue().getJob(generationJobId(id));
    expect(again?.data).toEqual({ generationId: id });
    expect(await again!.getState()).toBe('waiting');
    expect((await getGeneration(rt.db, id))?.state).toBe('dispatched');
    expect(await hold(id)).toEqual({ state: 'pending', releases: 0 });

    // The job is there now: the next pass has nothing to do.
    expect(await reconcile(deps())).toEqual(zero);
  });

  for (const outcome of ['failed', 'completed'] as const) {
    it(`ends a generation whose BullMQ job is ${outcome} without having finished it, and releases its hold`, async () => {
      const team = `dead-job-${outcome}`;
      const id = await admit(team);
      expect(await available(team)).toBe(full() - 1);
      await dispatchOnly(id);

      // A real BullMQ worker on the same queue and prefix, whose processor gives up (or returns) without touching the row.
      const connection = new Redis(TEST_REDIS_URL, { maxRetriesPerRequest: null });
      const worker = new Worker(generationQueueName('preview'), async () => {
        if (outcome === 'failed') throw new UnrecoverableError('the backend exploded');
        return 'done';
      }, { connection, prefix: rt.queues.prefix });
      try {
        await waitFor(async () => {
          const job = await queue().getJob(generationJobId(id));
          return job && (await job.getState()) === outcome;
        }, 15_000, `the job to be ${outcome}`);
      } finally {
        await worker.close();
        await connection.quit();
      }
      expect((await getGeneration(rt.db, id))?.state).toBe('dispatched');

      await quietSince(id);
      expect(await reconcile(deps())).toEqual({ ...zero, failedLost: 1 });
      const g = await getGeneration(rt.db, id);
      expect(g).toMatchObject({ state: 'failed', errorCode: ErrorCode.BackendFailed, chargedCredits: 0 });
      expect(g?.errorMessage).toMatch(/Nothing was charged/);
      expect(await hold(id)).toEqual({ state: 'released', releases: 1 });
      expect(await available(team)).toBe(full());

      expect(await reconcile(deps())).toEqual(zero);
      expect(await available(team)).toBe(full());
    });
  }

  it('releases, exactly once, a pending hold whose generation ended without releasing it', async () => {
    const team = 'crash-between-steps';
    const id = await admit(team);
    // A crash between "mark failed" and "release the hold": only the first step happened.
    await rt.db.execute(sql`update generations set state = 'failed', finished_at = now(), updated_at = now() where id = ${id}`);
    expect(await hold(id)).toEqual({ state: 'pending', releases: 0 });
    expect(await available(team)).toBe(full() - 1);

    expect(await reconcile(deps())).toEqual({ ...zero, holdsReleased: 1 });
    expect(await hold(id)).toEqual({ state: 'expired', releases: 1 });
    expect(await available(team)).toBe(full());

    expect(await reconcile(deps())).toEqual(zero);
    expect(await hold(id)).toEqual({ state: 'expired', releases: 1 });
    expect(await available(team)).toBe(full());
  });

  it('ends and releases a queued generation older than HOLD_SWEEP_AFTER_MS', async () => {
    expect(rt.config.HOLD_SWEEP_AFTER_MS).toBe(60_000);
    const team = 'waited-too-long';
    const fresh = await admit(team);
    const id = await admit(team);
    await rt.db.execute(sql`update generations set created_at = now() - interval '2 minutes' where id = ${id}`);
    expect(await available(team)).toBe(full() - 2);

    expect(await reconcile(deps())).toEqual({ ...zero, timedOut: 1 });
    const g = await getGeneration(rt.db, id);
    expect(g).toMatchObject({ state: 'failed', errorCode: ErrorCode.BackendTimeout, chargedCredits: 0 });
    expect(g?.errorMessage).toMatch(/took too long/);
    expect(await hold(id)).toEqual({ state: 'released', releases: 1 });
    // The one admitted just now is still waiting its turn.
    expect((await getGeneration(rt.db, fresh))?.state).toBe('queued');
    expect(await available(team)).toBe(full() - 1);

    expect(await reconcile(deps())).toEqual(zero);
  });

  it('passes running at once, from two processes, add up to exactly one pass', async () => {
    const team = 'racing';
    const lost = await admit(team);
    await dispatchOnly(lost);
    await (await queue().getJob(generationJobId(lost)))!.remove();
    await quietSince(lost);
    const orphan = await admit(team);
    await rt.db.execute(sql`update generations set state = 'cancelled', finished_at = now(), updated_at = now() where id = ${orphan}`);
    const stale = await admit(team);
    await rt.db.execute(sql`update generations set created_at = now() - interval '5 minutes' where id = ${stale}`);
    expect(await available(team)).toBe(full() - 3);

    // A second runtime has its own Postgres pool and Redis connections, like another worker process.
    const other = await ctx.runtime();
    const reports = await Promise.all([reconcile(deps()), reconcile(deps(other)), reconcile(deps()), reconcile(deps(other))]);
    const sum = reports.reduce((acc, r) => {
      for (const k of Object.keys(acc) as (keyof ReconcileReport)[]) acc[k] += r[k];
      return acc;
    }, { ...zero });
    expect(sum).toEqual({ ...zero, requeued: 1, holdsReleased: 1, timedOut: 1 });

    expect(await queue().getJob(generationJobId(lost))).toBeTruthy();
    expect(await hold(lost)).toEqual({ state: 'pending', releases: 0 });
    expect(await hold(orphan)).toEqual({ state: 'expired', releases: 1 });
    expect(await hold(stale)).toEqual({ state: 'released', releases: 1 });
    expect((await getGeneration(rt.db, stale))?.state).toBe('failed');
    expect(await available(team)).toBe(full() - 1);

    expect(await reconcile(deps(other))).toEqual(zero);
  });
});
