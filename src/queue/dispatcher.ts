import { sql } from 'drizzle-orm';
import type { BackendName, Config } from '../config.ts';
import type { Db } from '../db/client.ts';
import type { Logger } from '../log.ts';
import { generationJobId, jobOptions, type QueueSet } from './queues.ts';
import { Coalesced } from './coalesce.ts';

export interface DispatcherDeps {
  db: Db;
  queues: QueueSet;
  config: Config;
  log: Logger;
  /** Slots per backend: how many of its jobs may be with BullMQ at once, across all processes. */
  slots: Map<BackendName, number>;
}

/**
 * Fair dispatch without BullMQ Pro (queue-and-credits.md §2, pattern 3). The waiting line is the
 * generations table. When a backend has free slots, waiting jobs are ranked per team, and a team's rank
 * starts after the jobs it already has running, so a team with 300 waiting jobs gets one slot per turn
 * like everybody else. Per-member and per-team active caps are WHERE clauses. Only then does a job go to
 * BullMQ, whose own queue therefore stays nearly empty and cannot reorder anything.
 *
 * Any number of processes may run a dispatcher: a transaction-scoped advisory lock per backend makes them
 * take turns, and a crash between commit and Queue.add leaves a 'dispatched' generation that the
 * reconciler re-adds (the jobId makes that idempotent).
 */
export class Dispatcher {
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly passes = new Coalesced(async () => {
    if (this.stopped) return;
    try {
      await this.dispatchAll();
    } catch (error) {
      this.deps.log.error({ err: error }, 'dispatch pass failed');
    }
  });

  constructor(private readonly deps: DispatcherDeps) {}

  /** Dispatches what fits now, for one backend; returns the generation ids handed to BullMQ. */
  async dispatchBackend(backend: BackendName): Promise<string[]> {
    const { db, config } = this.deps;
    const slots = this.deps.slots.get(backend) ?? 0;
    const ids = await db.transaction(async (tx) => {
      await tx.execute(sql`select pg_advisory_xact_lock(hashtext(${`dreambot:dispatch:${backend}`}))`);
      const active = await tx.execute<{ n: number }>(sql`
        select count(*) as n from generations where backend = ${backend} and state in ('dispatched','running')`);
      const free = slots - Number(active[0]?.n ?? 0);
      if (free <= 0) return [];
      const picked = await tx.execute<{ id: string }>(sql`
        with team_active as (
          select team_id, count(*) as n from generations where state in ('dispatched','running') group by team_id
        ), member_active as (
          select member_id, count(*) as n from generations where state in ('dispatched','running') group by member_id
        ), waiting as (
          select g.id, g.seq, g.team_id, g.member_id,
            row_number() over (partition by g.team_id order by g.seq) as team_rank,
            row_number() over (partition by g.member_id order by g.seq) as member_rank
          from generations g where g.state = 'queued' and g.backend = ${backend}
        )
        select w.id from waiting w
        join budgets b on b.team_id = w.team_id
        left join team_active ta on ta.team_id = w.team_id
        left join member_active ma on ma.member_id = w.member_id
        where coalesce(ta.n, 0) + w.team_rank <= coalesce(b.team_active_jobs, ${config.TEAM_ACTIVE_JOBS})
          and coalesce(ma.n, 0) + w.member_rank <= coalesce(b.member_active_jobs, ${config.MEMBER_ACTIVE_JOBS})
        order by coalesce(ta.n, 0) + w.team_rank, w.seq
        limit ${free}`);
      const chosen = picked.map((r) => String(r.id));
      if (chosen.length === 0) return [];
      await tx.execute(sql`
        update generations set state = 'dispatched', dispatched_at = now(), updated_at = now()
        where id in (${sql.join(chosen.map((id) => sql`${id}`), sql`, `)}) and state = 'queued'`);
      return chosen;
    });
    await this.enqueue(backend, ids);
    return ids;
  }

  /** Adds jobs for generations already marked dispatched; safe to repeat thanks to the jobId. */
  async enqueue(backend: BackendName, ids: string[]): Promise<void> {
    if (ids.length === 0) return;
    const queue = this.deps.queues.forBackend(backend);
    await queue.addBulk(ids.map((generationId) => ({
      name: 'generate', data: { generationId }, opts: { ...jobOptions(this.deps.config), jobId: generationJobId(generationId) },
    })));
    this.deps.log.debug({ backend, count: ids.length }, 'dispatched');
  }

  async dispatchAll(): Promise<number> {
    let total = 0;
    for (const backend of this.deps.slots.keys()) total += (await this.dispatchBackend(backend)).length;
    return total;
  }

  /** Coalesces bursts of nudges into one pass, and runs another if nudged while busy. */
  nudge(): void {
    if (!this.stopped) this.passes.call();
  }

  /** Periodic pass as a safety net for nudges lost between processes. */
  start(intervalMs = 2000): void {
    this.stopped = false;
    this.timer = setInterval(() => this.nudge(), intervalMs);
    this.timer.unref();
    this.nudge();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.passes.idle();
  }
}
