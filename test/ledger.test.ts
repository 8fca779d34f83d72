import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode, isAppError } from '../src/errors.ts';
import { changeBudget, grantCredits } from '../src/ledger/budget.ts';
import { HoldWriter } from '../src/ledger/admit-hold.ts';
import { captureHold, LedgerError, releaseHold } from '../src/ledger/holds.ts';
import { ensureMember, ensureTeam, teamCredits } from '../src/teams.ts';
import { Runtime } from '../src/runtime.ts';
import type { Backend } from '../src/backends/types.ts';
import type { StoredRequest } from '../src/request.ts';
import { createTestContext, type TestContext } from './support/context.ts';

let ctx: TestContext;
let rt: Runtime;
const november = new Date('2026-11-21T12:00:00Z');

beforeAll(async () => {
  ctx = await createTestContext();
  rt = await ctx.runtime();
});
afterAll(() => ctx.cleanup());

async function booksBalance(teamId: string): Promise<number> {
  const rows = await rt.db.execute<{ total: number }>(sql`select coalesce(sum(balance), 0) as total from accounts where team_id = ${teamId}`);
  return Number(rows[0]!.total);
}

async function newTeam(name: string, credits: number): Promise<string> {
  const teamId = await ensureTeam(rt.db, { platform: 'cli', externalId: name }, 1000, november);
  await rt.db.transaction((tx) => changeBudget(tx, teamId, { limitCredits: credits, period: 'none' }, november));
  return teamId;
}

function dream(team: string, user: string, key: string, request: Record<string, unknown> = {}) {
  return rt.admit({ idempotencyKey: key, team: { platform: 'cli', externalId: team }, member: { externalId: user }, request: { prompt: 'a red fox runs through snow', ...request } });
}

describe('credit ledger', () => {
  it('a team seen for the first time gets DEFAULT_TEAM_CREDITS a month, as a grant entry', async () => {
    const teamId = await ensureTeam(rt.db, { platform: 'discord', externalId: 'guild-1' }, 1000, november);
    const credits = await teamCredits(rt.db, teamId, november);
    expect(credits).toMatchObject({ available: 1000, held: 0, limit: 1000, period: 'monthly', periodKey: '2026-11' });
    expect(credits.nextReset?.toISOString()).toBe('2026-12-01T00:00:00.000Z');
    const grants = await rt.db.execute(sql`select kind, amount from transfers where team_id = ${teamId}`);
    expect(grants.map((g) => [g.kind, Number(g.amount)])).toEqual([['grant', 1000]]);
    expect(await booksBalance(teamId)).toBe(0);
  });

  it('200 parallel admissions against a budget that fits exactly 50 admit exactly 50', async () => {
    const teamId = await newTeam('race-team', 50); // preview costs 1 credit
    const results = await Promise.allSettled(
      Array.from({ length: 200 }, (_, i) => dream('race-team', `user-${i % 40}`, `race-${i}`)),
    );
    const admitted = results.filter((r) => r.status === 'fulfilled');
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === 'rejected');
    expect(admitted).toHaveLength(50);
    expect(refused).toHaveLength(150);
    for (const r of refused) expect(isAppError(r.reason) && r.reason.code).toBe(ErrorCode.InsufficientCredits);
    const credits = await teamCredits(rt.db, teamId, november);
    expect(credits.available).toBe(0);
    expect(credits.held).toBe(50);
    const gens = await rt.db.execute(sql`select count(*) as n from generations where team_id = ${teamId}`);
    expect(Number(gens[0]!.n)).toBe(50);
    const holds = await rt.db.execute(sql`select count(*) as n, sum(amount) as s from holds where team_id = ${teamId} and state = 'pending'`);
    expect([Number(holds[0]!.n), Number(holds[0]!.s)]).toEqual([50, 50]);
    expect(await booksBalance(teamId)).toBe(0);
  });

  it('the per-member cap holds the same way under 200 parallel admissions', async () => {
    const teamId = await newTeam('cap-team', 10_000);
    await rt.db.transaction((tx) => changeBudget(tx, teamId, { memberCap: 7 }, november));
    const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => dream('cap-team', 'greedy', `cap-${i}`)));
    const admitted = results.filter((r) => r.status === 'fulfilled');
    expect(admitted).toHaveLength(7);
    const reasons = new Set(results.flatMap((r) => (r.status === 'rejected' && isAppError(r.reason) ? [r.reason.code] : [])));
    expect([...reasons]).toEqual([ErrorCode.MemberCapReached]);
    // Another member of the same team is not affected by greedy's cap.
    await expect(dream('cap-team', 'modest', 'cap-other')).resolves.toMatchObject({ duplicate: false });
    expect((await teamCredits(rt.db, teamId, november)).held).toBe(8);
  });

  it('two processes racing for the same budget and the same cap still admit exactly what fits', async () => {
    // Each process sends one batch at a time, so batches only overlap across processes: this is where
    // their locks meet (and where a capped member's first usage row of the period can be inserted twice).
    const other = await ctx.runtime();
    const teamId = await newTeam('two-process-team', 50);
    await rt.db.transaction((tx) => changeBudget(tx, teamId, { memberCap: 5 }, november));
    const ask = (i: number) => (i % 2 === 0 ? rt : other).admit({
      idempotencyKey: `two-${i}`, team: { platform: 'cli', externalId: 'two-process-team' },
      member: { externalId: `user-${i % 20}` }, request: { prompt: 'a red fox runs through snow' },
    });
    const results = await Promise.allSettled(Array.from({ length: 200 }, (_, i) => ask(i)));
    const admitted = results.filter((r): r is PromiseFulfilledResult<Awaited<ReturnType<typeof ask>>> => r.status === 'fulfilled');
    expect(admitted).toHaveLength(50);
    const reasons = new Set(results.flatMap((r) => (r.status === 'rejected' && isAppError(r.reason) ? [r.reason.code] : [])));
    expect([...reasons].every((c) => c === ErrorCode.InsufficientCredits || c === ErrorCode.MemberCapReached)).toBe(true);
    const perMember = await rt.db.execute<{ used: number }>(sql`
      select u.used from member_usage u join members m on m.id = u.member_id where m.team_id = ${teamId}`);
    expect(Math.max(...perMember.map((u) => Number(u.used)))).toBeLessThanOrEqual(5);
    expect(perMember.reduce((sum, u) => sum + Number(u.used), 0)).toBe(50);
    expect((await teamCredits(rt.db, teamId, november))).toMatchObject({ available: 0, held: 50 });
    expect(await booksBalance(teamId)).toBe(0);
  });

  it('requests decided in one batch come out as if decided one at a time: a cheaper one after a refused dearer one still fits', async () => {
    // Preview where 9 s costs 2 credits, so one batch can hold requests of different prices.
    const priced = await Runtime.create(ctx.config, {
      log: ctx.log, migrate: false,
      backends: (defaults) => {
        const preview = defaults.get('preview')!;
        return new Map([['preview', Object.assign(Object.create(preview) as Backend, { estimate: (r: StoredRequest) => (r.duration === '9s' ? 2 : 1) })]]);
      },
    });
    try {
      const teamId = await newTeam('mixed-team', 4);
      const ask = (key: string, duration: string) => priced.admit({
        idempotencyKey: key, team: { platform: 'cli', externalId: 'mixed-team' }, member: { externalId: key }, request: { prompt: 'a red fox runs through snow', duration },
      });
      await ask('mixed-warm', '5s'); // 3 left; the directory now knows the team, so the next three share a batch
      const results = await Promise.allSettled([ask('mixed-a', '9s'), ask('mixed-b', '9s'), ask('mixed-c', '5s')]);
      expect(results.map((r) => r.status)).toEqual(['fulfilled', 'rejected', 'fulfilled']);
      expect((results[1] as PromiseRejectedResult).reason).toMatchObject({ code: ErrorCode.InsufficientCredits });
      expect((await teamCredits(rt.db, teamId, november)).available).toBe(0);
    } finally {
      await priced.close(1000);
    }
  });

  it('an item the database rejects fails alone: its batch neighbour is still admitted', async () => {
    const teamId = await newTeam('poison-team', 100);
    await dream('poison-team', 'm', 'poison-warm');
    const rows = await rt.db.execute<{ version: number; member_id: string }>(sql`
      select config_version as version, (select id from members where team_id = ${teamId} limit 1) as member_id from teams where id = ${teamId}`);
    const writer = new HoldWriter(rt.database.sql);
    const item = (key: string, images: { id: string; mime: string; data: Buffer }[]) => writer.admitHold({
      key, requestHash: 'h', teamId, configVersion: Number(rows[0]!.version), memberId: String(rows[0]!.member_id), generationId: randomUUID(),
      periodKey: 'none', amount: 1, operation: 'generate', request: { prompt: 'x' }, backend: 'preview', parentId: null, replyTo: null, images,
    });
    // An empty image breaks assets' size check: admission's intake never lets one through, so write it directly.
    const [good, bad] = await Promise.allSettled([item('poison-good', []), item('poison-bad', [{ id: randomUUID(), mime: 'image/png', data: Buffer.alloc(0) }])]);
    expect(good).toMatchObject({ status: 'fulfilled', value: { outcome: 'admitted' } });
    expect(bad.status).toBe('rejected');
    const keys = await rt.db.execute<{ key: string }>(sql`select key from idempotency_keys where key like 'poison-%' order by key`);
    expect(keys.map((k) => k.key)).toEqual(['poison-good', 'poison-warm']);
  });

  it('a hold resolves exactly once: capture charges the actual cost and returns the rest', async () => {
    const teamId = await newTeam('capture-team', 100);
    const memberId = await ensureMember(rt.db, teamId, 'cli', { externalId: 'm' });
    const a = await dream('capture-team', 'm', 'cap-a');
    const b = await dream('capture-team', 'm', 'cap-b');
    // Pretend each was priced at 1 and cost 1; then verify double resolution is an error, not a no-op.
    await rt.db.transaction((tx) => captureHold(tx, a.generationId, 1));
    await expect(rt.db.transaction((tx) => captureHold(tx, a.generationId, 1))).rejects.toBeInstanceOf(LedgerError);
    await expect(rt.db.transaction((tx) => releaseHold(tx, a.generationId))).rejects.toBeInstanceOf(LedgerError);
    await rt.db.transaction((tx) => releaseHold(tx, b.generationId));
    await expect(rt.db.transaction((tx) => captureHold(tx, b.generationId, 1))).rejects.toBeInstanceOf(LedgerError);
    const credits = await teamCredits(rt.db, teamId, november);
    expect(credits).toMatchObject({ available: 99, held: 0, consumed: 1 });
    const usage = await rt.db.execute(sql`select used from member_usage where member_id = ${memberId}`);
    expect(Number(usage[0]!.used)).toBe(1);
    expect(await booksBalance(teamId)).toBe(0);
  });

  it('a capture above the hold is capped at the hold', async () => {
    const teamId = await newTeam('overcap-team', 10);
    const g = await dream('overcap-team', 'm', 'over-1');
    const result = await rt.db.transaction((tx) => captureHold(tx, g.generationId, 500));
    expect(result).toEqual({ charged: 1, released: 0 });
    expect((await teamCredits(rt.db, teamId, november)).available).toBe(9);
  });

  it('a period reset is written as entries, runs once, and leaves open holds alone', async () => {
    const teamId = await ensureTeam(rt.db, { platform: 'cli', externalId: 'daily-team' }, 1000, november);
    await rt.db.transaction((tx) => changeBudget(tx, teamId, { limitCredits: 30, period: 'daily' }, november));
    const before = await teamCredits(rt.db, teamId, november);
    expect(before).toMatchObject({ available: 30, period: 'daily', periodKey: '2026-11-21' });
    await rt.db.transaction((tx) => grantCredits(tx, teamId, 5, 'bonus', november));
    const held = await dream('daily-team', 'm', 'daily-1');
    expect(held.creditsRemaining).toBe(34);

    const tomorrow = new Date('2026-11-22T00:00:01Z');
    const [first, second] = await Promise.all([teamCredits(rt.db, teamId, tomorrow), teamCredits(rt.db, teamId, tomorrow)]);
    expect(first).toMatchObject({ available: 30, held: 1, periodKey: '2026-11-22' });
    expect(second).toMatchObject({ available: 30, held: 1, periodKey: '2026-11-22' });
    const resets = await rt.db.execute(sql`select kind, amount, dedupe_key from transfers where team_id = ${teamId} and dedupe_key like ${'%2026-11-2%'} order by id`);
    expect(resets.map((r) => [r.kind, Number(r.amount), r.dedupe_key])).toEqual([
      ['expire', 34, `expire:${teamId}:2026-11-21`],
      ['grant', 30, `grant:${teamId}:2026-11-22`],
    ]);
    // The hold from yesterday still resolves, against yesterday's member usage.
    await rt.db.transaction((tx) => releaseHold(tx, held.generationId));
    expect((await teamCredits(rt.db, teamId, tomorrow))).toMatchObject({ available: 31, held: 0 });
    expect(await booksBalance(teamId)).toBe(0);
  });

  it("entries are append-only history: each account's entries chain before to after and add up to its balance", async () => {
    const rows = await rt.db.execute<{ account_id: number; amount: number; balance_before: number; balance_after: number }>(sql`
      select account_id, amount, balance_before, balance_after from entries order by account_id, id`);
    expect(rows.length).toBeGreaterThan(20);
    const last = new Map<number, number>();
    for (const r of rows) {
      expect(Number(r.balance_after) - Number(r.balance_before)).toBe(Number(r.amount));
      expect(Number(r.balance_before)).toBe(last.get(r.account_id) ?? 0);
      last.set(r.account_id, Number(r.balance_after));
    }
    const accounts = await rt.db.execute<{ id: number; balance: number }>(sql`select id, balance from accounts`);
    for (const a of accounts) expect(last.get(a.id) ?? 0).toBe(Number(a.balance));
    const negative = await rt.db.execute(sql`select count(*) as n from accounts where kind <> 'granted' and balance < 0`);
    expect(Number(negative[0]!.n)).toBe(0);
  });
});
