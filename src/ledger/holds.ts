import { sql } from 'drizzle-orm';
import type { Executor } from '../db/client.ts';
import { ErrorCode, userError } from '../errors.ts';
import { lockAccounts, transfer } from './accounts.ts';
import type { BudgetRow } from './budget.ts';

export class LedgerError extends Error {
  override name = 'LedgerError';
}

export interface HoldInput {
  teamId: string;
  memberId: string;
  generationId: string;
  amount: number;
  budget: BudgetRow;
}

/**
 * Places a hold inside the caller's transaction: the team's available balance and the member's cap are both
 * checked against locked rows, so no amount of concurrency can overspend either. Throws a user error
 * (and the caller's transaction rolls back) when either does not fit.
 */
export async function placeHold(tx: Executor, input: HoldInput): Promise<{ holdId: string; available: number }> {
  const { teamId, memberId, generationId, amount, budget } = input;
  const locked = await lockAccounts(tx, teamId);
  if (locked.balances.available < amount) {
    throw userError(
      ErrorCode.InsufficientCredits,
      `Not enough credits: this costs ${amount} and your team has ${locked.balances.available} left${budget.period === 'none' ? '' : ' this period'}. Ask an admin for more, or pick a cheaper option (shorter, lower resolution, a faster model).`,
      { needed: amount, available: locked.balances.available },
    );
  }
  const usage = await tx.execute<{ used: number }>(sql`
    insert into member_usage (member_id, period_key, used) values (${memberId}, ${budget.periodKey}, ${amount})
    on conflict (member_id, period_key) do update set used = member_usage.used + excluded.used
      where ${budget.memberCap === null ? sql`true` : sql`member_usage.used + excluded.used <= ${budget.memberCap}`}
    returning used`);
  const used = usage[0] ? Number(usage[0].used) : null;
  if (used === null || (budget.memberCap !== null && used > budget.memberCap)) {
    throw userError(
      ErrorCode.MemberCapReached,
      `You have reached your personal limit of ${budget.memberCap} credits for this period. An admin can raise it with /dream-admin user-cap.`,
      { cap: budget.memberCap, needed: amount },
    );
  }
  const holds = await tx.execute<{ id: string }>(sql`
    insert into holds (team_id, member_id, generation_id, amount, period_key)
    values (${teamId}, ${memberId}, ${generationId}, ${amount}, ${budget.periodKey}) returning id`);
  const holdId = String(holds[0]!.id);
  if (amount > 0) {
    await transfer(tx, locked, { teamId, kind: 'hold', from: 'available', to: 'held', amount, memberId, generationId, holdId });
  }
  return { holdId, available: locked.balances.available };
}

interface ResolvedHold {
  id: string;
  teamId: string;
  memberId: string;
  amount: number;
  captured: number;
  periodKey: string;
}

async function resolveHold(tx: Executor, generationId: string, state: 'captured' | 'released' | 'expired', captured: number): Promise<ResolvedHold> {
  const rows = await tx.execute<Record<string, unknown>>(sql`
    update holds set state = ${state}, captured = least(${captured}, amount), resolved_at = now()
    where generation_id = ${generationId} and state = 'pending'
    returning id, team_id, member_id, amount, captured, period_key`);
  const r = rows[0];
  if (!r) throw new LedgerError(`hold for generation ${generationId} is missing or already resolved`);
  return {
    id: String(r.id), teamId: String(r.team_id), memberId: String(r.member_id),
    amount: Number(r.amount), captured: Number(r.captured), periodKey: String(r.period_key),
  };
}

async function returnToAvailable(tx: Executor, hold: ResolvedHold, amount: number, generationId: string, kind: 'release'): Promise<void> {
  if (amount <= 0) return;
  const locked = await lockAccounts(tx, hold.teamId);
  await transfer(tx, locked, { teamId: hold.teamId, kind, from: 'held', to: 'available', amount, memberId: hold.memberId, generationId, holdId: hold.id });
  await tx.execute(sql`update member_usage set used = greatest(used - ${amount}, 0) where member_id = ${hold.memberId} and period_key = ${hold.periodKey}`);
}

/**
 * Resolves a hold by charging `actual` (capped at the hold) and returning the rest. Exactly once: a second
 * capture or a capture after a release throws LedgerError.
 */
export async function captureHold(tx: Executor, generationId: string, actual: number): Promise<{ charged: number; released: number }> {
  const hold = await resolveHold(tx, generationId, 'captured', Math.max(0, Math.round(actual)));
  const locked = await lockAccounts(tx, hold.teamId);
  if (hold.captured > 0) {
    await transfer(tx, locked, { teamId: hold.teamId, kind: 'capture', from: 'held', to: 'consumed', amount: hold.captured, memberId: hold.memberId, generationId, holdId: hold.id });
  }
  const rest = hold.amount - hold.captured;
  await returnToAvailable(tx, hold, rest, generationId, 'release');
  return { charged: hold.captured, released: rest };
}

/** Returns the whole hold: failure, cancel, or (state 'expired') a sweeper finding its job gone. */
export async function releaseHold(tx: Executor, generationId: string, state: 'released' | 'expired' = 'released'): Promise<{ released: number }> {
  const hold = await resolveHold(tx, generationId, state, 0);
  await returnToAvailable(tx, hold, hold.amount, generationId, 'release');
  return { released: hold.amount };
}
