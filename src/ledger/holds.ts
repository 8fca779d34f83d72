import { sql } from 'drizzle-orm';
import type { Executor } from '../db/client.ts';
import { lockAccounts, transfer, type LockedAccounts } from './accounts.ts';

export class LedgerError extends Error {
  override name = 'LedgerError';
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

async function returnToAvailable(tx: Executor, hold: ResolvedHold, amount: number, generationId: string, kind: 'release', alreadyLocked?: LockedAccounts): Promise<void> {
  if (amount <= 0) return;
  const locked = alreadyLocked ?? (await lockAccounts(tx, hold.teamId));
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
  await returnToAvailable(tx, hold, rest, generationId, 'release', locked);
  return { charged: hold.captured, released: rest };
}

/** Returns the whole hold: failure, cancel, or (state 'expired') a sweeper finding its job gone. */
export async function releaseHold(tx: Executor, generationId: string, state: 'released' | 'expired' = 'released'): Promise<{ released: number }> {
  const hold = await resolveHold(tx, generationId, state, 0);
  await returnToAvailable(tx, hold, hold.amount, generationId, 'release');
  return { released: hold.amount };
}
