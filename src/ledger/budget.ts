import { sql } from 'drizzle-orm';
import type { Executor } from '../db/client.ts';
import { lockAccounts, transfer } from './accounts.ts';
import { periodKey, type Period } from './periods.ts';

export interface BudgetRow {
  teamId: string;
  limitCredits: number;
  period: Period;
  memberCap: number | null;
  memberActiveJobs: number | null;
  teamActiveJobs: number | null;
  periodKey: string;
}

export async function readBudget(tx: Executor, teamId: string, lock = false): Promise<BudgetRow> {
  const rows = await tx.execute<Record<string, unknown>>(sql`
    select team_id, limit_credits, period, member_cap, member_active_jobs, team_active_jobs, period_key
    from budgets where team_id = ${teamId} ${lock ? sql`for update` : sql``}`);
  const r = rows[0];
  if (!r) throw new Error(`team ${teamId} has no budget`);
  return {
    teamId: String(r.team_id),
    limitCredits: Number(r.limit_credits),
    period: r.period as Period,
    memberCap: r.member_cap === null ? null : Number(r.member_cap),
    memberActiveJobs: r.member_active_jobs === null ? null : Number(r.member_active_jobs),
    teamActiveJobs: r.team_active_jobs === null ? null : Number(r.team_active_jobs),
    periodKey: String(r.period_key),
  };
}

/**
 * Rolls the budget into the period `now` falls in, when it has moved on. A reset is two entries, never an
 * overwrite: what is left expires (available → expired), then the period's allowance is granted
 * (granted → available). Both carry a (team, period) dedupe key, so a reset that runs twice does nothing.
 * Open holds are left alone: they resolve against the period they were placed in.
 */
export async function rollPeriod(tx: Executor, teamId: string, now: Date): Promise<BudgetRow> {
  const seen = await readBudget(tx, teamId);
  if (seen.period === 'none' || periodKey(seen.period, now) === seen.periodKey) return seen;
  const budget = await readBudget(tx, teamId, true);
  const key = periodKey(budget.period, now);
  if (budget.period === 'none' || key === budget.periodKey) return budget;
  const locked = await lockAccounts(tx, teamId);
  const leftover = locked.balances.available;
  if (leftover > 0) {
    await transfer(tx, locked, {
      teamId, kind: 'expire', from: 'available', to: 'expired', amount: leftover,
      dedupeKey: `expire:${teamId}:${budget.periodKey}`, note: `period ${budget.periodKey} ended`,
    });
  }
  if (budget.limitCredits > 0) {
    await transfer(tx, locked, {
      teamId, kind: 'grant', from: 'granted', to: 'available', amount: budget.limitCredits,
      dedupeKey: `grant:${teamId}:${key}`, note: `allowance for ${key}`,
    });
  }
  await tx.execute(sql`update budgets set period_key = ${key}, updated_at = now() where team_id = ${teamId}`);
  return { ...budget, periodKey: key };
}

export interface BudgetChange {
  limitCredits?: number;
  period?: Period;
  memberCap?: number | null;
  memberActiveJobs?: number | null;
  teamActiveJobs?: number | null;
}

/**
 * Changes a team's limit or period. The available balance moves by the difference between the old and the
 * new allowance (a grant when it grows, an expiry of at most what is left when it shrinks), so credits
 * already spent this period still count.
 */
export async function changeBudget(tx: Executor, teamId: string, change: BudgetChange, now: Date): Promise<BudgetRow> {
  const before = await rollPeriod(tx, teamId, now);
  await readBudget(tx, teamId, true);
  const limit = change.limitCredits ?? before.limitCredits;
  const period = change.period ?? before.period;
  const key = periodKey(period, now);
  const locked = await lockAccounts(tx, teamId);
  const delta = limit - before.limitCredits;
  if (delta > 0) {
    await transfer(tx, locked, { teamId, kind: 'adjust', from: 'granted', to: 'available', amount: delta, note: `limit raised to ${limit}` });
  } else if (delta < 0) {
    const cut = Math.min(-delta, locked.balances.available);
    if (cut > 0) await transfer(tx, locked, { teamId, kind: 'adjust', from: 'available', to: 'expired', amount: cut, note: `limit lowered to ${limit}` });
  }
  const memberCap = change.memberCap === undefined ? before.memberCap : change.memberCap;
  const memberJobs = change.memberActiveJobs === undefined ? before.memberActiveJobs : change.memberActiveJobs;
  const teamJobs = change.teamActiveJobs === undefined ? before.teamActiveJobs : change.teamActiveJobs;
  await tx.execute(sql`
    update budgets set limit_credits = ${limit}, period = ${period}, period_key = ${key}, member_cap = ${memberCap},
      member_active_jobs = ${memberJobs}, team_active_jobs = ${teamJobs}, updated_at = now()
    where team_id = ${teamId}`);
  return readBudget(tx, teamId);
}

export async function grantCredits(tx: Executor, teamId: string, amount: number, note: string, now: Date): Promise<void> {
  await rollPeriod(tx, teamId, now);
  const locked = await lockAccounts(tx, teamId);
  await transfer(tx, locked, { teamId, kind: 'grant', from: 'granted', to: 'available', amount, note });
}

