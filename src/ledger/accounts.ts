import { sql } from 'drizzle-orm';
import type { Executor } from '../db/client.ts';

export type AccountKind = 'available' | 'held' | 'granted' | 'consumed' | 'expired';
export type TransferKind = 'grant' | 'hold' | 'capture' | 'release' | 'expire' | 'adjust';
export const accountKinds: AccountKind[] = ['available', 'consumed', 'expired', 'granted', 'held'];

export interface LockedAccounts {
  ids: Record<AccountKind, number>;
  balances: Record<AccountKind, number>;
}

/**
 * Locks all of a team's accounts in one fixed order. Every ledger transaction starts here, so two of
 * them never lock the same rows in opposite orders (a hold goes available→held, a release held→available:
 * without this they could deadlock). Ledger work for one team is therefore serial, which is also what
 * makes "never overspend" hold under any concurrency.
 */
export async function lockAccounts(tx: Executor, teamId: string): Promise<LockedAccounts> {
  const rows = await tx.execute<{ id: number; kind: AccountKind; balance: number }>(
    sql`select id, kind, balance from accounts where team_id = ${teamId} order by kind for update`,
  );
  if (rows.length !== accountKinds.length) throw new Error(`team ${teamId} has ${rows.length} ledger accounts, expected 5`);
  const ids = {} as Record<AccountKind, number>;
  const balances = {} as Record<AccountKind, number>;
  for (const row of rows) {
    ids[row.kind] = Number(row.id);
    balances[row.kind] = Number(row.balance);
  }
  return { ids, balances };
}

export async function createAccounts(tx: Executor, teamId: string): Promise<void> {
  for (const kind of accountKinds) {
    await tx.execute(sql`insert into accounts (team_id, kind, balance) values (${teamId}, ${kind}, 0)`);
  }
}

export interface TransferInput {
  teamId: string;
  kind: TransferKind;
  from: AccountKind;
  to: AccountKind;
  amount: number;
  memberId?: string | null;
  generationId?: string | null;
  holdId?: string | null;
  dedupeKey?: string | null;
  note?: string | null;
}

/**
 * Moves credits between two locked accounts: both balances, the transfer and its two entries in one
 * statement. The CHECK constraints on accounts are the backstop; callers check funds before calling.
 */
export async function transfer(tx: Executor, locked: LockedAccounts, input: TransferInput): Promise<number> {
  if (!Number.isInteger(input.amount) || input.amount <= 0) throw new Error(`transfer amount must be a positive integer, got ${input.amount}`);
  const fromId = locked.ids[input.from];
  const toId = locked.ids[input.to];
  const fromBefore = locked.balances[input.from];
  const toBefore = locked.balances[input.to];
  const rows = await tx.execute<{ id: number }>(sql`
    with src as (
      update accounts set balance = balance - ${input.amount}, version = version + 1 where id = ${fromId} returning id
    ), dst as (
      update accounts set balance = balance + ${input.amount}, version = version + 1 where id = ${toId} returning id
    ), tr as (
      insert into transfers (team_id, member_id, generation_id, hold_id, kind, amount, from_account, to_account, dedupe_key, note)
      select ${input.teamId}, ${input.memberId ?? null}, ${input.generationId ?? null}, ${input.holdId ?? null}, ${input.kind},
             ${input.amount}, src.id, dst.id, ${input.dedupeKey ?? null}, ${input.note ?? null}
      from src, dst returning id
    ), e as (
      insert into entries (transfer_id, account_id, amount, balance_before, balance_after)
      select tr.id, ${fromId}::bigint, ${-input.amount}::bigint, ${fromBefore}::bigint, ${fromBefore - input.amount}::bigint from tr
      union all
      select tr.id, ${toId}::bigint, ${input.amount}::bigint, ${toBefore}::bigint, ${toBefore + input.amount}::bigint from tr
    )
    select id from tr`);
  locked.balances[input.from] = fromBefore - input.amount;
  locked.balances[input.to] = toBefore + input.amount;
  const row = rows[0];
  if (!row) throw new Error('transfer wrote nothing');
  return Number(row.id);
}
