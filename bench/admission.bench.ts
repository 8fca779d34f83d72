import { pathToFileURL } from 'node:url';
import { Queue } from 'bullmq';
import postgres from 'postgres';
import { changeBudget } from '../src/ledger/budget.ts';
import { ensureTeam } from '../src/teams.ts';
import { benchEnv, load, median, round } from './support.ts';

const TEAMS = Number(process.env.BENCH_TEAMS ?? 16);
const SUBMITTERS = 64;
const REQUESTS = Number(process.env.BENCH_ADMISSIONS ?? 2000);
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/**
 * Admission throughput and latency with 64 concurrent submitters over 16 teams, against the hand-written
 * baseline the issue names: one conditional UPDATE and one Queue.add per request. Both use a pool of 10
 * Postgres connections and the same Redis, and alternate rounds so neither gets a warmer machine.
 */
export async function main() {
  const bench = await benchEnv();
  const rt = await bench.runtime();
  const now = new Date();
  for (let t = 0; t < TEAMS; t++) {
    const teamId = await ensureTeam(rt.db, { platform: 'cli', externalId: `team-${t}` }, 0, now);
    await rt.db.transaction((tx) => changeBudget(tx, teamId, { limitCredits: 10_000_000, period: 'none' }, now));
  }
  const sql = postgres(bench.config.DATABASE_URL, { max: 10, onnotice: () => {} });
  await sql`create table if not exists bench_balance (id int primary key, balance bigint not null check (balance >= 0))`;
  await sql`insert into bench_balance select g, 10000000 from generate_series(0, ${TEAMS - 1}) g on conflict do nothing`;
  const queue = new Queue('bench-baseline', { connection: { url: bench.config.REDIS_URL }, prefix: bench.config.REDIS_PREFIX });

  const baseline = async (tag: string) => load(REQUESTS, SUBMITTERS, async (i) => {
    const rows = await sql`update bench_balance set balance = balance - 1 where id = ${i % TEAMS} and balance >= 1 returning balance`;
    if (rows.length !== 1) throw new Error('baseline ran out of credit');
    await queue.add('generate', { team: i % TEAMS, prompt: 'a red fox runs through snow' }, { jobId: `b-${tag}-${i}`, removeOnComplete: true });
  });
  const ours = async (tag: string) => load(REQUESTS, SUBMITTERS, (i) => rt.admit({
    idempotencyKey: `bench-${tag}-${i}`, team: { platform: 'cli', externalId: `team-${i % TEAMS}` },
    member: { externalId: `member-${i % 64}` }, request: { prompt: 'a red fox runs through snow' }, replyTo: { platform: 'cli' },
  }));

  await baseline('warm');
  await ours('warm');
  const base: Awaited<ReturnType<typeof load>>[] = [];
  const mine: Awaited<ReturnType<typeof load>>[] = [];
  for (let r = 0; r < ROUNDS; r++) {
    base.push(await baseline(`r${r}`));
    mine.push(await ours(`r${r}`));
  }
  await queue.close();
  await sql.end();
  await bench.cleanup();
  const summary = (runs: typeof base) => ({ perSecond: round(median(runs.map((x) => x.perSecond)), 0), p50Ms: round(median(runs.map((x) => x.p50Ms))), p99Ms: round(median(runs.map((x) => x.p99Ms))) });
  const result = { bench: 'admission', requests: REQUESTS, submitters: SUBMITTERS, teams: TEAMS, rounds: ROUNDS, dreambot: summary(mine), baseline: summary(base) };
  return { ...result, throughputRatio: round(result.dreambot.perSecond / result.baseline.perSecond), target: '>= 0.7' };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then((r) => { console.log(JSON.stringify(r)); process.exit(0); }, (e: unknown) => { console.error(e); process.exit(1); });
}
