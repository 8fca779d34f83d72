import { sql, type SQL } from 'drizzle-orm';
import { Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';
import type { Db } from './db/client.ts';
import type { Logger } from './log.ts';
import type { QueueSet } from './queue/queues.ts';

/**
 * Prometheus metrics on a registry of our own (not prom-client's global one). Gauges are read at
 * scrape time through `collect()`, from Postgres and BullMQ, so every process reports the same
 * cluster-wide numbers and none of them keeps state that a restart would lose.
 */

export interface MetricsDeps {
  db: Db;
  queues: QueueSet;
  /** Where a failed read during a scrape is reported; the scrape itself still succeeds. */
  log?: Pick<Logger, 'warn'>;
}

export interface Metrics {
  registry: Registry;
  observeJobDuration: typeof observeJobDuration;
}

/** Clips take from a few seconds (preview) to several minutes (GPU, API): 5 s – 10 min. */
export const JOB_DURATION_BUCKETS = [5, 10, 15, 20, 30, 45, 60, 90, 120, 180, 240, 300, 420, 600];

/**
 * One histogram for the whole process, registered into every registry `createMetrics` makes, so a worker
 * can record a duration through the module-level function without holding a reference to the registry.
 */
const jobDuration = new Histogram({
  name: 'dreambot_job_duration_seconds',
  help: 'Time from a generation job starting on a worker to its end, by backend and outcome',
  labelNames: ['backend', 'outcome'] as const,
  buckets: JOB_DURATION_BUCKETS,
  registers: [],
});

export function observeJobDuration(backend: string, outcome: string, seconds: number): void {
  if (!Number.isFinite(seconds) || seconds < 0) return;
  jobDuration.observe({ backend, outcome }, seconds);
}

/** The queue's backend label: generation queues are named gen-<backend>; the delivery queue keeps its name. */
const queueBackend = (queueName: string) => queueName.replace(/^gen-/, '');

export function createMetrics(deps: MetricsDeps): Metrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  registry.registerMetric(jobDuration);

  const warn = (err: unknown, what: string) => deps.log?.warn({ err }, `metrics: reading ${what} failed`);

  new Gauge({
    name: 'dreambot_queue_depth',
    help: 'Jobs per queue and state: BullMQ job counts, plus the fair waiting line in Postgres as state="waiting_fair"',
    labelNames: ['backend', 'state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      await Promise.all([
        ...deps.queues.all().map(async (queue) => {
          try {
            const counts = await queue.getJobCounts();
            for (const [state, count] of Object.entries(counts)) this.set({ backend: queueBackend(queue.name), state }, Number(count));
          } catch (err) {
            warn(err, `queue ${queue.name}`);
          }
        }),
        (async () => {
          try {
            // Every backend shows a waiting line, zero included, so a dashboard never sees the series vanish.
            for (const backend of deps.queues.generation.keys()) this.set({ backend, state: 'waiting_fair' }, 0);
            const rows = await deps.db.execute<{ backend: string; count: number }>(
              sql`select backend, count(*)::int as count from generations where state = 'queued' group by backend`,
            );
            for (const row of rows) this.set({ backend: String(row.backend), state: 'waiting_fair' }, Number(row.count));
          } catch (err) {
            warn(err, 'waiting line');
          }
        })(),
      ]);
    },
  });

  new Gauge({
    name: 'dreambot_generations',
    help: 'Generations by state',
    labelNames: ['state'] as const,
    registers: [registry],
    async collect() {
      this.reset();
      try {
        const rows = await deps.db.execute<{ state: string; count: number }>(
          sql`select state, count(*)::int as count from generations group by state`,
        );
        for (const row of rows) this.set({ state: String(row.state) }, Number(row.count));
      } catch (err) {
        warn(err, 'generations');
      }
    },
  });

  /** A gauge read at scrape time from one `select … as total` query. */
  const totalGauge = (name: string, help: string, query: SQL, what: string) => new Gauge({
    name, help, registers: [registry],
    async collect() {
      try {
        const rows = await deps.db.execute<{ total: string }>(query);
        this.set(Number(rows[0]?.total ?? 0));
      } catch (err) {
        warn(err, what);
      }
    },
  });
  totalGauge('dreambot_credits_held', 'Credits currently held by pending holds',
    sql`select coalesce(sum(amount), 0)::text as total from holds where state = 'pending'`, 'holds');
  totalGauge('dreambot_credits_captured_total', 'Credits consumed by all teams, ever (sum of the consumed accounts)',
    sql`select coalesce(sum(balance), 0)::text as total from accounts where kind = 'consumed'`, 'accounts');

  return { registry, observeJobDuration };
}
