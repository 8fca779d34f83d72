import { sql } from 'drizzle-orm';
import type postgres from 'postgres';
import { executePrepared } from '../db/client.ts';
import { ErrorCode, userError } from '../errors.ts';

export interface AdmitHoldInput {
  key: string;
  requestHash: string;
  teamId: string;
  memberId: string;
  generationId: string;
  /** The budget period the caller saw; if a reset happened since, nothing is written and the caller retries. */
  periodKey: string;
  memberCap: number | null;
  amount: number;
  operation: string;
  request: Record<string, unknown>;
  backend: string;
  parentId: string | null;
  replyTo: Record<string, unknown> | null;
  images: { id: string; mime: string; data: Buffer }[];
}

export type AdmitHoldResult =
  | { outcome: 'admitted'; available: number }
  | { outcome: 'duplicate' }
  | { outcome: 'stale-period' };

/**
 * Admission's write, as ONE statement: claim the idempotency key, lock the team's available and held
 * accounts, check funds and the member's cap against the locked rows, then write the generation, its
 * input images, the hold, the transfer and both entries. One statement is one round trip and its own
 * transaction, which is what lets admission keep up with a bare "UPDATE + Queue.add" (bench/admission).
 *
 * Why it is race-free: `acct` takes FOR UPDATE locks, and under READ COMMITTED a locked row is re-read at
 * its newest version, so the funds check sees every committed hold. Lock order is fixed by data
 * dependencies: the key first (a duplicate waits here for the original to commit, then writes nothing),
 * then accounts in kind order (as lockAccounts does), then member_usage. When any check fails, every
 * later CTE selects nothing, so nothing is written; the final row says which check failed.
 */
export async function admitHold(client: postgres.Sql, input: AdmitHoldInput): Promise<AdmitHoldResult> {
  const amount = input.amount;
  const cap = input.memberCap;
  const images = input.images.length > 0
    ? sql`, img as (
        insert into assets (id, team_id, kind, mime, size, sha256, data)
        select v.id::uuid, ${input.teamId}::uuid, 'input_image', v.mime, v.size::int, v.sha, decode(v.data, 'base64') from (values ${sql.join(
          input.images.map((i) => sql`(${i.id}, ${i.mime}, ${i.data.length}, encode(sha256(decode(${i.data.toString('base64')}, 'base64')), 'hex'), ${i.data.toString('base64')})`),
          sql`, `,
        )}) as v(id, mime, size, sha, data)
        where exists (select 1 from gen) returning id)`
    : sql``;
  const rows = await executePrepared<{ claimed: boolean; refused: string | null; available: number | null }>(client, sql`
    with claim as (
      insert into idempotency_keys (key, team_id, generation_id, request_hash)
      values (${input.key}, ${input.teamId}, ${input.generationId}, ${input.requestHash})
      on conflict (key) do nothing returning generation_id
    ), budget as (
      select 1 from budgets where team_id = ${input.teamId} and period_key = ${input.periodKey} and exists (select 1 from claim)
    ), acct as (
      select id, kind, balance from accounts
      where team_id = ${input.teamId} and kind in ('available','held') and exists (select 1 from budget)
      order by kind for update
    ), funds as (
      select 1 from acct where kind = 'available' and balance >= ${amount}
    ), usage as (
      insert into member_usage (member_id, period_key, used)
      select ${input.memberId}::uuid, ${input.periodKey}, ${amount}::bigint
      where exists (select 1 from funds) ${cap === null ? sql`` : sql`and ${amount}::bigint <= ${cap}::bigint`}
      on conflict (member_id, period_key) do update set used = member_usage.used + excluded.used
        ${cap === null ? sql`` : sql`where member_usage.used + excluded.used <= ${cap}::bigint`}
      returning used
    ), gen as (
      insert into generations (id, team_id, member_id, parent_id, operation, request, state, backend, estimated_credits, reply_to)
      select ${input.generationId}::uuid, ${input.teamId}::uuid, ${input.memberId}::uuid, ${input.parentId}::uuid, ${input.operation},
        ${JSON.stringify(input.request)}::jsonb, 'queued', ${input.backend}, ${amount}::bigint, ${input.replyTo === null ? null : JSON.stringify(input.replyTo)}::jsonb
      where exists (select 1 from usage)
      returning id
    ), hold as (
      insert into holds (team_id, member_id, generation_id, amount, period_key)
      select ${input.teamId}::uuid, ${input.memberId}::uuid, gen.id, ${amount}::bigint, ${input.periodKey} from gen
      returning id
    ), moved as (
      update accounts a set balance = a.balance + case a.kind when 'available' then -${amount}::bigint else ${amount}::bigint end,
        version = a.version + 1
      from acct where a.id = acct.id and ${amount}::bigint > 0 and exists (select 1 from hold)
      returning a.id, a.kind, acct.balance as before
    ), tr as (
      insert into transfers (team_id, member_id, generation_id, hold_id, kind, amount, from_account, to_account)
      select ${input.teamId}::uuid, ${input.memberId}::uuid, ${input.generationId}::uuid, hold.id, 'hold', ${amount}::bigint,
        (select id from moved where kind = 'available'), (select id from moved where kind = 'held')
      from hold where exists (select 1 from moved)
      returning id
    ), ent as (
      insert into entries (transfer_id, account_id, amount, balance_before, balance_after)
      select tr.id, moved.id, case moved.kind when 'available' then -${amount}::bigint else ${amount}::bigint end, moved.before,
        moved.before + case moved.kind when 'available' then -${amount}::bigint else ${amount}::bigint end
      from tr, moved
    )${images}
    select s.claimed, s.available,
      case when s.claimed and not s.admitted then dreambot_refuse(
        case when not s.period_ok then 'stale_period' when coalesce(s.available, 0) < ${amount}::bigint then 'insufficient_credits' else 'member_cap' end,
        s.available) end as refused
    from (select exists (select 1 from claim) as claimed, exists (select 1 from budget) as period_ok,
      (select balance from acct where kind = 'available') as available, exists (select 1 from hold) as admitted) s`).catch((error: unknown) => {
    // drizzle wraps driver errors; the reason is in the driver's message, on the error or its cause.
    const text = `${(error as Error).message} ${((error as Error).cause as Error | undefined)?.message ?? ''}`;
    const match = /dreambot_refused:(\w+):(-?\d*)/.exec(text);
    if (!match) throw error;
    return [{ claimed: true, refused: match[1]!, available: match[2] ? Number(match[2]) : 0 }];
  });
  const r = rows[0]! as { claimed: boolean; refused?: string | null; available: number | null };
  if (!r.claimed) return { outcome: 'duplicate' };
  if (r.refused === 'stale_period') return { outcome: 'stale-period' };
  const available = Number(r.available ?? 0);
  if (r.refused === 'insufficient_credits') {
    throw userError(
      ErrorCode.InsufficientCredits,
      `Not enough credits: this costs ${amount} and your team has ${available} left. Ask an admin for more, or pick a cheaper option (shorter, lower resolution, a faster model).`,
      { needed: amount, available },
    );
  }
  if (r.refused === 'member_cap') {
    throw userError(
      ErrorCode.MemberCapReached,
      `You have reached your personal limit of ${cap} credits for this period. An admin can raise it with /dream-admin user-cap.`,
      { cap, needed: amount },
    );
  }
  return { outcome: 'admitted', available: available - amount };
}
