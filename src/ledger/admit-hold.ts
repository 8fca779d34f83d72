import { createHash } from 'node:crypto';
import type postgres from 'postgres';
import { GroupCommit } from '../db/group-commit.ts';
import { ErrorCode, userError } from '../errors.ts';

export interface AdmitHoldInput {
  key: string;
  requestHash: string;
  teamId: string;
  /** The teams.config_version the caller's settings came from; if it moved on, nothing is written. */
  configVersion: number;
  memberId: string;
  generationId: string;
  /** The budget period the caller expects; if the budget is in another one, nothing is written. */
  periodKey: string;
  amount: number;
  operation: string;
  request: Record<string, unknown>;
  backend: string;
  parentId: string | null;
  replyTo: Record<string, unknown> | null;
  images: { id: string; mime: string; data: Buffer }[];
}

/** How busy the team and member were at admission, for the "starts when one finishes" notice. */
export interface ActiveJobs {
  team: number;
  member: number;
  /** The budget's overrides of the configured active-job caps; null means the configured default. */
  teamCap: number | null;
  memberCap: number | null;
}

export type AdmitHoldResult =
  | { outcome: 'admitted'; available: number; active: ActiveJobs }
  | { outcome: 'duplicate' }
  /** The caller's copy of the team's settings is out of date: read them again and resubmit. */
  | { outcome: 'stale-config' }
  | { outcome: 'stale-period' }
  /** Decided against a batch neighbour's outcome that did not happen, or its key came in twice: resubmit. */
  | { outcome: 'contended' };

/**
 * Admission's write for a whole batch, as ONE statement (its own transaction): skip keys already used,
 * check each item's settings version and budget period, lock the teams' available and held accounts and
 * the capped members' usage rows, decide every item against the locked rows in arrival order, then write
 * each admitted item's idempotency key, generation, input images and hold, and move each team's total
 * once, as one hold transfer with its two entries. A refused item writes nothing, not even its key, so
 * asking again later is a fresh request.
 *
 * Why it is race-free: rows are locked FOR UPDATE, and under READ COMMITTED a locked row is re-read at its
 * newest version, so every check sees every committed hold. Lock order is the same in every batch and in
 * the single-team ledger paths: accounts by team and kind, then member_usage by member, then keys (sorted).
 * A key that another batch claims after our snapshot fails the whole statement on its primary key (nothing
 * written), and the retry reports it as a duplicate.
 *
 * Within a batch an item is admitted while the team's running total of earlier candidates (and the
 * member's) still fits. That equals deciding one at a time until the team's first refusal; settle() says
 * which later refusals are certain and sends the rest round again. A first-of-period usage row for a
 * capped member cannot be locked before it exists; if another batch inserts it first, that member's items
 * come back `contended` too.
 *
 * Every join here is between an item and its own team's rows or a handful of per-team rows: batch CTEs
 * look like one row to the planner, and joining two of them item by item would cost n² comparisons.
 */
const ADMIT_BATCH = `
with input as (
  select x.* from jsonb_to_recordset($1::jsonb) as x(ord int, key text, hash text, team_id uuid, config_version int, member_id uuid,
    gen_id uuid, period_key text, amount bigint, operation text, request jsonb, backend text, parent_id uuid, reply_to jsonb, images jsonb)
), known as (
  select k.key from idempotency_keys k where k.key in (select key from input)
), acct as (
  select a.id, a.team_id, a.kind, a.balance from accounts a
  where a.team_id in (select team_id from input) and a.kind in ('available', 'held')
  order by a.team_id, a.kind for update
), status as (
  select i.*,
    case when i.key in (select key from known) then 'duplicate'
      when row_number() over (partition by i.key order by i.ord) > 1 then 'contended'
      when t.config_version is distinct from i.config_version or m.id is null then 'stale_config'
      when b.period_key is distinct from i.period_key then 'stale_period'
    end as early,
    coalesce(m.cap, b.member_cap) as cap, b.member_active_jobs, b.team_active_jobs
  from input i
  left join teams t on t.id = i.team_id
  left join budgets b on b.team_id = i.team_id
  left join members m on m.id = i.member_id and m.team_id = i.team_id
), usage_now as (
  select u.member_id, u.used from member_usage u
  where (u.member_id, u.period_key) in (select member_id, period_key from status where early is null and cap is not null)
  order by u.member_id for update
), cand as (
  select s.*, av.id as avail_id, coalesce(av.balance, 0) as available, hd.id as held_id, coalesce(hd.balance, 0) as held,
    u.used is not null as usage_locked, coalesce(u.used, 0) as used
  from status s
  left join acct av on av.team_id = s.team_id and av.kind = 'available'
  left join acct hd on hd.team_id = s.team_id and hd.kind = 'held'
  left join usage_now u on u.member_id = s.member_id
), capped as (
  select c.*, c.early is null and (c.cap is null
    or c.used + sum(c.amount) filter (where c.early is null) over (partition by c.member_id order by c.ord) <= c.cap) as cap_ok
  from cand c
), decided as (
  select c.*, c.cap_ok and c.available >= sum(c.amount) filter (where c.cap_ok) over (partition by c.team_id order by c.ord) as ok
  from capped c
), usage_add as (
  insert into member_usage (member_id, period_key, used)
  select member_id, period_key, sum(amount) from decided where ok and (cap is null or usage_locked)
  group by member_id, period_key order by member_id
  on conflict (member_id, period_key) do update set used = member_usage.used + excluded.used
), usage_new as (
  insert into member_usage (member_id, period_key, used)
  select member_id, period_key, sum(amount) from decided where ok and cap is not null and not usage_locked
  group by member_id, period_key order by member_id
  on conflict (member_id, period_key) do nothing
  returning member_id
), settled as (
  select d.*, d.ok and (d.cap is null or d.usage_locked or d.member_id in (select member_id from usage_new)) as admitted from decided d
), admitted as (
  select * from settled where admitted
), claim as (
  -- No ON CONFLICT: a key another batch claimed since our snapshot fails this whole statement.
  insert into idempotency_keys (key, team_id, generation_id, request_hash)
  select key, team_id, gen_id, hash from admitted order by key
), gen as (
  insert into generations (id, team_id, member_id, parent_id, operation, request, state, backend, estimated_credits, reply_to)
  select gen_id, team_id, member_id, parent_id, operation, request, 'queued', backend, amount, reply_to from admitted order by ord
), img as (
  insert into assets (id, team_id, kind, mime, size, sha256, data)
  select (im->>'id')::uuid, a.team_id, 'input_image', im->>'mime', (im->>'size')::int, im->>'sha256', decode(im->>'data', 'base64')
  from admitted a cross join jsonb_array_elements(a.images) im
), hold as (
  insert into holds (team_id, member_id, generation_id, amount, period_key)
  select team_id, member_id, gen_id, amount, period_key from admitted order by ord
), team_total as (
  select team_id, avail_id, held_id, min(available) as available, min(held) as held, sum(amount) as total, count(*) as n
  from admitted group by team_id, avail_id, held_id having sum(amount) > 0
), moved as (
  update accounts a set balance = a.balance + case a.kind when 'available' then -t.total else t.total end, version = a.version + 1
  from team_total t where a.id in (t.avail_id, t.held_id)
), tr as (
  insert into transfers (team_id, kind, amount, from_account, to_account, note)
  select team_id, 'hold', total, avail_id, held_id, n || case when n = 1 then ' hold' else ' holds' end from team_total
  returning id, team_id
), ent as (
  insert into entries (transfer_id, account_id, amount, balance_before, balance_after)
  select tr.id, t.avail_id, -t.total, t.available, t.available - t.total from tr join team_total t on t.team_id = tr.team_id
  union all
  select tr.id, t.held_id, t.total, t.held, t.held + t.total from tr join team_total t on t.team_id = tr.team_id
), busy_team as (
  select g.team_id, count(*) as n from generations g
  where g.team_id in (select team_id from admitted) and g.state in ('dispatched', 'running') group by g.team_id
), busy_member as (
  select g.member_id, count(*) as n from generations g
  where g.member_id in (select member_id from admitted) and g.state in ('dispatched', 'running') group by g.member_id
)
select s.ord, s.early, s.team_id, s.member_id, s.amount, s.cap_ok, s.ok, s.admitted, s.cap,
  s.available - coalesce(sum(s.amount) filter (where s.admitted) over (partition by s.team_id order by s.ord), 0) as available,
  case when s.admitted then coalesce((select n from busy_team bt where bt.team_id = s.team_id), 0) end as team_active,
  case when s.admitted then coalesce((select n from busy_member bm where bm.member_id = s.member_id), 0) end as member_active,
  s.team_active_jobs, s.member_active_jobs
from settled s
order by s.ord`;

interface BatchRow {
  ord: number;
  early: 'duplicate' | 'contended' | 'stale_config' | 'stale_period' | null;
  team_id: string;
  member_id: string;
  amount: number;
  cap_ok: boolean;
  ok: boolean;
  admitted: boolean;
  cap: number | null;
  /** Team credits left after this item (admitted) or before it (refused). */
  available: number;
  team_active: number | null;
  member_active: number | null;
  team_active_jobs: number | null;
  member_active_jobs: number | null;
}

type Verdict = AdmitHoldResult | 'insufficient_credits' | 'member_cap';

/**
 * Turns the batch's decisions into answers. Up to a team's first refusal the batch decided exactly as one
 * at a time would. After it, a refusal is certain only when it is of the same kind and asks at least as
 * much (the running totals only grow); anything else, and everything after an item that lost its usage
 * row to another batch, goes round again.
 */
export function settle(rows: BatchRow[]): Verdict[] {
  const first = new Map<string, BatchRow>();
  const contended = new Set<string>();
  return rows.map((r): Verdict => {
    switch (r.early) {
      case 'duplicate': return { outcome: 'duplicate' };
      case 'contended': return { outcome: 'contended' };
      case 'stale_config': return { outcome: 'stale-config' };
      case 'stale_period': return { outcome: 'stale-period' };
    }
    if (r.admitted) {
      return {
        outcome: 'admitted', available: Number(r.available),
        active: { team: Number(r.team_active ?? 0), member: Number(r.member_active ?? 0), teamCap: num(r.team_active_jobs), memberCap: num(r.member_active_jobs) },
      };
    }
    if (r.ok || contended.has(r.team_id)) {
      contended.add(r.team_id);
      return { outcome: 'contended' };
    }
    const kind = r.cap_ok ? 'insufficient_credits' : 'member_cap';
    const before = first.get(r.team_id);
    if (!before) {
      first.set(r.team_id, r);
      return kind;
    }
    const sameKind = before.cap_ok === r.cap_ok && (r.cap_ok || before.member_id === r.member_id);
    return sameKind && Number(r.amount) >= Number(before.amount) ? kind : { outcome: 'contended' };
  });
}

const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));

/** Another batch claimed one of our keys since our snapshot, or crossed our locks: Postgres rolled this one back whole. */
function retryable(error: unknown): boolean {
  const e = error as { code?: string; constraint_name?: string };
  return e.code === '40P01' || (e.code === '23505' && e.constraint_name === 'idempotency_keys_pkey');
}

/** Admission's writes for one database, group-committed: see ADMIT_BATCH. */
export class HoldWriter {
  private readonly batches: GroupCommit<AdmitHoldInput, AdmitHoldResult>;

  /**
   * One batch in flight: a batch locks every team it holds for, so two at once would mostly wait on each
   * other (and Postgres re-checks a row it waited for), which measured slower than the next batch simply
   * growing while this one runs (bench/admission). Images travel inside the batch, so batches are also
   * bounded by bytes.
   */
  constructor(private readonly client: postgres.Sql) {
    this.batches = new GroupCommit<AdmitHoldInput, AdmitHoldResult>((items) => this.writeBatch(items), {
      maxInFlight: 1, maxBatch: 200, maxWeight: 16 * 1024 * 1024,
      weigh: (item) => 1024 + item.images.reduce((sum, i) => sum + i.data.length * 1.34, 0),
    });
  }

  admitHold(input: AdmitHoldInput): Promise<AdmitHoldResult> {
    return this.batches.submit(input);
  }

  private async writeBatch(items: AdmitHoldInput[]): Promise<(AdmitHoldResult | Error)[]> {
    const payload = JSON.stringify(items.map((item, ord) => ({
      ord, key: item.key, hash: item.requestHash, team_id: item.teamId, config_version: item.configVersion, member_id: item.memberId,
      gen_id: item.generationId, period_key: item.periodKey, amount: item.amount, operation: item.operation, request: item.request,
      backend: item.backend, parent_id: item.parentId, reply_to: item.replyTo,
      images: item.images.map((i) => ({ id: i.id, mime: i.mime, size: i.data.length, sha256: createHash('sha256').update(i.data).digest('hex'), data: i.data.toString('base64') })),
    })));
    let rows: BatchRow[];
    for (let attempt = 0; ; attempt++) {
      try {
        rows = (await this.client.unsafe(ADMIT_BATCH, [payload], { prepare: true })) as unknown as BatchRow[];
        break;
      } catch (error) {
        if (retryable(error) && attempt < 3) continue;
        if (items.length === 1) throw error;
        // One item the database rejects must not take its neighbours down with it: try each on its own.
        const answers: (AdmitHoldResult | Error)[] = [];
        for (const item of items) answers.push(await this.writeBatch([item]).then((a) => a[0]!, (e: unknown) => (e instanceof Error ? e : new Error(String(e)))));
        return answers;
      }
    }
    return settle(rows).map((v, ord) => answer(items[ord]!, v, rows[ord]!));
  }
}

function answer(item: AdmitHoldInput, verdict: Verdict, row: BatchRow): AdmitHoldResult | Error {
  if (verdict === 'insufficient_credits') {
    const available = Math.max(0, Number(row.available));
    return userError(
      ErrorCode.InsufficientCredits,
      `Not enough credits: this costs ${item.amount} and your team has ${available} left. Ask an admin for more, or pick a cheaper option (shorter, lower resolution, a faster model).`,
      { needed: item.amount, available },
    );
  }
  if (verdict === 'member_cap') {
    return userError(
      ErrorCode.MemberCapReached,
      `You have reached your personal limit of ${row.cap} credits for this period. An admin can raise it with /dream-admin user-cap.`,
      { cap: num(row.cap), needed: item.amount },
    );
  }
  return verdict;
}
