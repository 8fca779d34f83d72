import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { aheadOf } from '../src/admission.ts';
import { changeBudget } from '../src/ledger/budget.ts';
import { Dispatcher } from '../src/queue/dispatcher.ts';
import { generationJobId } from '../src/queue/queues.ts';
import type { Runtime } from '../src/runtime.ts';
import { createTestContext, type TestContext } from './support/context.ts';

/**
 * The dispatcher against real Postgres and BullMQ, with no workers: "a job starts" means the dispatcher
 * handed it to BullMQ, and "a slot frees" means a running generation ended.
 */
let ctx: TestContext;
let rt: Runtime;
let dispatcher: Dispatcher;
const SLOTS = 4;

beforeAll(async () => {
  ctx = await createTestContext({ TEAM_ACTIVE_JOBS: '10', MEMBER_ACTIVE_JOBS: '10' });
  rt = await ctx.runtime();
  dispatcher = new Dispatcher({ db: rt.db, queues: rt.queues, config: rt.config, log: ctx.log, slots: new Map([['preview', SLOTS]]) });
});
afterAll(() => ctx.cleanup());

async function submit(team: string, user: string, n: number, prefix: string) {
  const ids: string[] = [];
  for (let i = 0; i < n; i++) {
    const a = await rt.admit({ idempotencyKey: `${prefix}-${i}`, team: { platform: 'cli', externalId: team }, member: { externalId: user }, request: { prompt: `job ${i} of ${team}` } });
    ids.push(a.generationId);
  }
  return ids;
}

async function finishOne(ids: string[]): Promise<void> {
  await rt.db.execute(sql`
    update generations set state = 'failed' where id = (
      select id from generations where id in (${sql.join(ids.map((id) => sql`${id}`), sql`, `)}) and state = 'dispatched' order by seq limit 1)`);
}

describe('fair dispatch across teams', () => {
  it('with team A holding 300 queued jobs, team B\'s single job starts within one freed slot', async () => {
    const teamA = await rt.admit({ idempotencyKey: 'seed-a', team: { platform: 'cli', externalId: 'heavy' }, member: { externalId: 'a0' }, request: { prompt: 'seed job' } });
    const teamId = String((await rt.db.execute(sql`select team_id from generations where id = ${teamA.generationId}`))[0]!.team_id);
    await rt.db.transaction((tx) => changeBudget(tx, teamId, { limitCredits: 10_000 }, new Date()));
    // Heavy team: 300 jobs over 30 members, so the per-member cap is not what holds them back.
    const heavy = [teamA.generationId];
    for (let m = 0; m < 30; m++) heavy.push(...(await submit('heavy', `a${m}`, m === 0 ? 9 : 10, `heavy-${m}`)));
    expect(heavy).toHaveLength(300);

    expect(await dispatcher.dispatchAll()).toBe(SLOTS);
    const [light] = await submit('light', 'b0', 1, 'light');
    // Fair order puts it right behind the one heavy job that is next: the member is told so.
    expect(await aheadOf(rt.db, light!)).toBeLessThanOrEqual(1);

    await finishOne(heavy);
    const started = await dispatcher.dispatchAll();
    expect(started).toBe(1);
    const job = await rt.queues.forBackend('preview').getJob(generationJobId(light!));
    expect(job?.data.generationId).toBe(light);
    const heavyStartedBeforeLight = (await rt.db.execute(sql`
      select count(*) as n from generations where team_id = ${teamId} and dispatched_at is not null`))[0]!.n;
    expect(Number(heavyStartedBeforeLight)).toBeLessThanOrEqual(SLOTS);
  });

  it('never exceeds the backend slots, and a team never exceeds its active cap', async () => {
    const active = await rt.db.execute(sql`select count(*) as n from generations where state in ('dispatched','running')`);
    expect(Number(active[0]!.n)).toBe(SLOTS);
    expect(await dispatcher.dispatchAll()).toBe(0);
    const waiting = await rt.queues.forBackend('preview').getWaitingCount();
    expect(waiting).toBeLessThanOrEqual(SLOTS + 1);
  });

  it('per-member active cap: a member with 2 running jobs waits while others go ahead', async () => {
    await rt.db.execute(sql`update generations set state = 'failed' where state in ('queued','dispatched','running')`);
    const capped = new Dispatcher({ db: rt.db, queues: rt.queues, config: rt.config, log: ctx.log, slots: new Map([['preview', 5]]) });
    const mine = await submit('capteam', 'solo', 4, 'solo');
    const teamId = String((await rt.db.execute(sql`select team_id from generations where id = ${mine[0]!}`))[0]!.team_id);
    await rt.db.transaction((tx) => changeBudget(tx, teamId, { memberActiveJobs: 2 }, new Date()));
    const theirs = await submit('capteam', 'other', 1, 'other');
    await capped.dispatchAll();
    const states = await rt.db.execute(sql`select id, state from generations where id in (${sql.join([...mine, ...theirs].map((id) => sql`${id}`), sql`, `)})`);
    const state = new Map(states.map((r) => [String(r.id), String(r.state)]));
    expect(mine.map((id) => state.get(id))).toEqual(['dispatched', 'dispatched', 'queued', 'queued']);
    expect(state.get(theirs[0]!)).toBe('dispatched');
    const admitted = await rt.admit({ idempotencyKey: 'solo-extra', team: { platform: 'cli', externalId: 'capteam' }, member: { externalId: 'solo' }, request: { prompt: 'one more please' } });
    expect(admitted.notice).toMatch(/2 clips in progress.*limit is 2/);
  });
});
