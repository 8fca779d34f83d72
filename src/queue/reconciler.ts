import { sql } from 'drizzle-orm';
import type { BackendName, Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import { permanentError, ErrorCode } from '../errors.ts';
import type { Logger } from '../log.ts';
import { endUnsuccessful } from '../generations.ts';
import { releaseHold } from '../ledger/holds.ts';
import { deliveryJobId, generationJobId, jobOptions, type QueueSet } from './queues.ts';

export interface ReconcileReport {
  requeued: number;
  failedLost: number;
  redelivered: number;
  holdsReleased: number;
  timedOut: number;
}

/**
 * Finds generations that fell between two steps and moves each on: every admitted request must end
 * delivered, failed-and-released or cancelled-and-released. Runs in every worker process; an advisory
 * lock lets one at a time do the pass.
 */
export async function reconcile(deps: { db: Db; queues: QueueSet; config: Config; log: Logger }, now = new Date()): Promise<ReconcileReport> {
  const { db, queues, config, log } = deps;
  const report: ReconcileReport = { requeued: 0, failedLost: 0, redelivered: 0, holdsReleased: 0, timedOut: 0 };
  // A transaction-scoped lock: a session lock could be released on another pooled connection.
  await db.transaction(async (tx) => {
    const lock = await tx.execute<{ ok: boolean }>(sql`select pg_try_advisory_xact_lock(hashtext('dreambot:reconcile')) as ok`);
    if (!lock[0]?.ok) return;
    // ISO strings, not Dates: drizzle's postgres-js driver turns off the timestamptz serializer for raw SQL.
    const quietFor = new Date(now.getTime() - config.WORKER_LOCK_MS * 2).toISOString();
    // Handed to BullMQ (or running) but the job is gone or dead: re-add it, or end it if BullMQ gave up.
    const active = await db.execute<{ id: string; backend: BackendName }>(sql`
      select id, backend from generations where state in ('dispatched','running') and updated_at < ${quietFor}`);
    for (const row of active) {
      const queue = queues.generation.get(row.backend);
      if (!queue) continue;
      const job = await queue.getJob(generationJobId(row.id));
      const state = job ? await job.getState() : 'missing';
      if (state === 'missing' || state === 'unknown') {
        await queue.add('generate', { generationId: row.id }, { ...jobOptions(config), jobId: generationJobId(row.id) });
        report.requeued += 1;
      } else if (state === 'failed' || state === 'completed') {
        const ended = await endUnsuccessful(db, row.id, 'failed', permanentError(ErrorCode.BackendFailed, `job ${state} without finishing the generation`));
        if (ended) report.failedLost += 1;
      }
    }
    // Succeeded but never delivered: make sure a delivery job exists.
    const undelivered = await db.execute<{ id: string; platform: string | null }>(sql`
      select id, reply_to->>'platform' as platform from generations where state = 'succeeded' and updated_at < ${quietFor}`);
    for (const row of undelivered) {
      if (!row.platform || row.platform === 'cli') continue;
      const job = await queues.delivery.getJob(deliveryJobId(row.id));
      if (!job) {
        await queues.delivery.add('deliver', { generationId: row.id }, { ...jobOptions(config), attempts: 5, jobId: deliveryJobId(row.id) });
        report.redelivered += 1;
      }
    }
    // Sweeper: pending holds whose generation ended without resolving them, or vanished.
    const orphans = await db.execute<{ generation_id: string }>(sql`
      select h.generation_id from holds h left join generations g on g.id = h.generation_id
      where h.state = 'pending' and (g.id is null or g.state in ('failed','cancelled'))`);
    for (const row of orphans) {
      await db.transaction((tx) => releaseHold(tx, String(row.generation_id), 'expired'));
      report.holdsReleased += 1;
    }
    // Nothing may wait forever: work older than HOLD_SWEEP_AFTER_MS that never finished is ended and released.
    const tooOld = new Date(now.getTime() - config.HOLD_SWEEP_AFTER_MS).toISOString();
    const stale = await db.execute<{ id: string }>(sql`
      select id from generations where state in ('queued','dispatched','running','succeeded') and created_at < ${tooOld}`);
    for (const row of stale) {
      const ended = await endUnsuccessful(db, String(row.id), 'failed', permanentError(ErrorCode.BackendTimeout, 'This clip took too long and was stopped. Nothing was charged.'));
      if (ended) report.timedOut += 1;
    }
  });
  if (Object.values(report).some((n) => n > 0)) log.info(report, 'reconciled');
  return report;
}
