import { sql } from 'drizzle-orm';
import type { Db, Executor } from './db/client.ts';
import { publicMessage, type AppError } from './errors.ts';
import { captureHold, releaseHold } from './ledger/holds.ts';
import type { StoredRequest } from './request.ts';

export type GenerationState = 'queued' | 'dispatched' | 'running' | 'succeeded' | 'delivered' | 'failed' | 'cancelled';

export interface Generation {
  id: string;
  teamId: string;
  memberId: string;
  parentId: string | null;
  operation: string;
  request: StoredRequest;
  state: GenerationState;
  backend: string;
  backendHandle: string | null;
  submitCount: number;
  attempts: number;
  progress: number;
  progressNote: string | null;
  estimatedCredits: number;
  chargedCredits: number | null;
  errorCode: string | null;
  errorMessage: string | null;
  replyTo: Record<string, unknown> | null;
  resultAssetId: string | null;
  resultMeta: Record<string, unknown> | null;
  createdAt: Date;
  startedAt: Date | null;
  finishedAt: Date | null;
}

const camel = (s: string) => s.replace(/_([a-z])/g, (_, c: string) => c.toUpperCase());

function toGeneration(row: Record<string, unknown>): Generation {
  const out: Record<string, unknown> = {};
  for (const [k, v] of Object.entries(row)) out[camel(k)] = v;
  for (const k of ['submitCount', 'attempts', 'progress', 'estimatedCredits']) out[k] = Number(out[k]);
  if (out.chargedCredits !== null) out.chargedCredits = Number(out.chargedCredits);
  // drizzle's postgres-js driver turns off the timestamp parsers, so raw `execute` rows carry strings.
  for (const k of ['createdAt', 'startedAt', 'finishedAt', 'dispatchedAt', 'deliveredAt', 'updatedAt']) {
    if (typeof out[k] === 'string') out[k] = new Date(out[k] as string);
  }
  return out as unknown as Generation;
}

export async function getGeneration(db: Executor, id: string): Promise<Generation | null> {
  if (!/^[0-9a-f-]{36}$/i.test(id)) return null;
  const rows = await db.execute<Record<string, unknown>>(sql`select * from generations where id = ${id}`);
  return rows[0] ? toGeneration(rows[0]) : null;
}

export interface GenerationFilter {
  teamId?: string;
  states?: string[];
  /** Only what this platform user asked for. */
  member?: { platform: string; externalId: string };
  limit?: number;
}

export async function listGenerations(db: Executor, filter: GenerationFilter): Promise<Generation[]> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    select * from generations
    where (${filter.teamId ?? null}::uuid is null or team_id = ${filter.teamId ?? null}::uuid)
      and ${filter.states?.length ? sql`state in (${sql.join(filter.states.map((s) => sql`${s}`), sql`, `)})` : sql`true`}
      and ${filter.member ? sql`member_id in (select id from members where platform = ${filter.member.platform} and external_id = ${filter.member.externalId})` : sql`true`}
    order by seq desc limit ${filter.limit ?? 50}`);
  return rows.map(toGeneration);
}

/** Jobs still waiting or rendering whose reply goes to `platform`: what a chat adapter keeps a status line for. */
export async function activeReplies(db: Executor, platform: string, limit = 1000): Promise<{ id: string; replyTo: Record<string, unknown> }[]> {
  const rows = await db.execute<{ id: string; reply_to: Record<string, unknown> }>(sql`
    select id, reply_to from generations
    where state in ('queued', 'dispatched', 'running') and reply_to->>'platform' = ${platform}
    order by seq limit ${limit}`);
  return rows.map((r) => ({ id: String(r.id), replyTo: r.reply_to }));
}

/** The worker took the job: counts attempts. Returns null when the generation is no longer runnable. */
export async function markRunning(db: Executor, id: string): Promise<Generation | null> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    update generations set state = 'running', started_at = coalesce(started_at, now()), attempts = attempts + 1, updated_at = now()
    where id = ${id} and state in ('dispatched','running') returning *`);
  return rows[0] ? toGeneration(rows[0]) : null;
}

/** Counted before the backend call, so a crash after submit shows up as a second count, never as none. */
export async function countSubmission(db: Executor, id: string): Promise<void> {
  await db.execute(sql`update generations set submit_count = submit_count + 1, updated_at = now() where id = ${id}`);
}

export async function recordHandle(db: Executor, id: string, handle: string): Promise<void> {
  await db.execute(sql`update generations set backend_handle = ${handle}, updated_at = now() where id = ${id} and backend_handle is null`);
}

export async function recordProgress(db: Executor, id: string, fraction: number, note: string | null): Promise<void> {
  await db.execute(sql`update generations set progress = ${fraction}, progress_note = ${note}, updated_at = now() where id = ${id} and state = 'running'`);
}

/** The clip exists. Returns the updated generation, or null when it was cancelled meanwhile (the result is dropped). */
export async function markSucceeded(db: Executor, id: string, assetId: string, meta: Record<string, unknown>, actualCredits: number): Promise<Generation | null> {
  const rows = await db.execute<Record<string, unknown>>(sql`
    update generations set state = 'succeeded', result_asset_id = ${assetId}, result_meta = ${JSON.stringify(meta)}::jsonb,
      charged_credits = least(${actualCredits}, estimated_credits), progress = 1, finished_at = now(), updated_at = now()
    where id = ${id} and state = 'running' returning *`);
  return rows[0] ? toGeneration(rows[0]) : null;
}

/** Delivered: the one place a hold is captured. Idempotent: a second call finds it delivered and does nothing. */
export async function markDelivered(db: Db, id: string): Promise<{ charged: number } | null> {
  return db.transaction(async (tx) => {
    const rows = await tx.execute<{ charged_credits: number }>(sql`
      update generations set state = 'delivered', delivered_at = now(), updated_at = now()
      where id = ${id} and state = 'succeeded' returning charged_credits`);
    if (rows.length === 0) return null;
    // charged_credits was already capped at the estimate, which is the hold: the capture charges exactly it.
    const result = await captureHold(tx, id, Number(rows[0]!.charged_credits ?? 0));
    return { charged: result.charged };
  });
}

/**
 * Ends a generation that did not make it and returns its credits, exactly once: the state change and the
 * release share a transaction, and only a non-terminal generation changes.
 */
export async function endUnsuccessful(db: Db, id: string, state: 'failed' | 'cancelled', error?: AppError): Promise<boolean> {
  return db.transaction(async (tx) => {
    const rows = await tx.execute(sql`
      update generations set state = ${state}, error_code = ${error?.code ?? null}, error_message = ${error ? publicMessage(error) : null},
        finished_at = now(), updated_at = now(), charged_credits = 0
      where id = ${id} and state not in ('delivered','failed','cancelled') returning id`);
    if (rows.length === 0) return false;
    const pending = await tx.execute(sql`select 1 from holds where generation_id = ${id} and state = 'pending'`);
    if (pending.length > 0) await releaseHold(tx, id);
    return true;
  });
}
