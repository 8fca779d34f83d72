import { spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { fileURLToPath, pathToFileURL } from 'node:url';
import { sql } from 'drizzle-orm';
import { mountLumaCallbacks } from '../src/backends/luma/callbacks.ts';
import { createHttpServer } from '../src/http/server.ts';
import { freePort } from '../test/backends/luma-harness.ts';
import { benchEnv, percentile, round } from './support.ts';

const JOBS = Number(process.env.BENCH_LUMA_JOBS ?? 50);
const GENERATION_MS = 20_000;
const TEAMS = 10;

/**
 * What dreambot adds on top of Luma's own generation time. The fake takes exactly 20 s per generation
 * (from create to completed); 50 jobs from 10 teams are admitted at once with LUMA_CONCURRENCY=50, and
 * each job's admission → delivered time minus those 20 s is its overhead: admission, dispatch, the
 * create, noticing completion (a callback through the HTTP server and Redis, with 3 s polling behind
 * it), the download, probe, storing the clip and the capture. Target: p95 < 1 s. The fake runs in its
 * own process, as Luma would, so its work does not share dreambot's event loop.
 */
async function startFake(): Promise<{ child: ChildProcess; url: string; apiKey: string; origin: string }> {
  const main = fileURLToPath(new URL('../test/fakes/luma/main.ts', import.meta.url));
  const child = spawn(process.execPath, ['--import', 'tsx', main, '--port', '0', '--queued-ms', '0', '--dream-ms', String(GENERATION_MS),
    '--concurrency', String(JOBS), '--creates-per-minute', '10000', '--quiet'], { stdio: ['ignore', 'pipe', 'inherit'] });
  let out = '';
  child.stdout!.setEncoding('utf8');
  for await (const chunk of child.stdout!) {
    out += chunk as string;
    const url = /listening on (\S+)/.exec(out)?.[1];
    const apiKey = /API key: (\S+)/.exec(out)?.[1];
    if (url && apiKey) return { child, url, apiKey, origin: new URL(url).origin };
  }
  throw new Error(`fake Luma did not start: ${out}`);
}

export async function main() {
  const fake = await startFake();
  const inspect = async (path: string) => (await fetch(`${fake.origin}/_fake/${path}`)).json() as Promise<Record<string, unknown>>;
  const port = await freePort();
  const bench = await benchEnv({
    LUMA_API_KEY: fake.apiKey, LUMA_BASE_URL: fake.url, LUMA_CONCURRENCY: String(JOBS), LUMA_CREATES_PER_MINUTE: '10000', LUMA_POLL_MS: '3000',
    PUBLIC_BASE_URL: `http://127.0.0.1:${port}`, ASSET_SIGNING_SECRET: 'bench-luma-signing-secret-0123456789',
    MEMBER_ACTIVE_JOBS: String(JOBS), TEAM_ACTIVE_JOBS: String(JOBS), DEFAULT_TEAM_CREDITS: '1000000',
  });
  const rt = await bench.runtime();
  const server = createHttpServer({ runtime: rt });
  mountLumaCallbacks(server, rt);
  await server.listen(port, '127.0.0.1');
  await rt.startWorkers();

  const started = new Map<string, number>();
  const t0 = Date.now();
  await Promise.all(Array.from({ length: JOBS }, async (_, i) => {
    const at = Date.now();
    const admitted = await rt.admit({
      idempotencyKey: `luma-bench-${i}`, team: { platform: 'cli', externalId: `team-${i % TEAMS}` }, member: { externalId: `member-${i}` },
      request: { prompt: `a lighthouse in a storm, take ${i + 1}`, backend: 'luma' }, replyTo: { platform: 'cli' },
    });
    started.set(admitted.generationId, at);
  }));
  const ids = [...started.keys()];
  type Row = { id: string; state: string; backend_handle: string | null; created_at: string; dispatched_at: string | null; started_at: string | null; finished_at: string | null; delivered_at: string | null };
  let rows: Row[] = [];
  for (;;) {
    rows = [...(await rt.db.execute<Row>(sql`select id, state, backend_handle, created_at, dispatched_at, started_at, finished_at, delivered_at from generations where id in (${sql.join(ids.map((id) => sql`${id}`), sql`, `)})`))];
    if (rows.every((r) => ['delivered', 'failed', 'cancelled'].includes(r.state))) break;
    if (Date.now() - t0 > GENERATION_MS + 120_000) throw new Error('jobs did not finish in time');
    await new Promise((r) => setTimeout(r, 100));
  }
  const failed = rows.filter((r) => r.state !== 'delivered').length;
  const overhead: number[] = [];
  const createLag: number[] = [];
  const afterComplete: number[] = [];
  const noticed: number[] = [];
  const stage = { admitted: [] as number[], dispatched: [] as number[], workerStarted: [] as number[], createdAtLuma: [] as number[] };
  const after = { noticedToStored: [] as number[], storedToDelivered: [] as number[] };
  for (const r of rows.filter((x) => x.state === 'delivered')) {
    const delivered = new Date(r.delivered_at!).getTime();
    overhead.push(delivered - started.get(r.id)! - GENERATION_MS);
    const g = (await inspect(`generations/${r.backend_handle}`)) as { createdAt: number; completedAt: number | null; completedSeenAt: number | null };
    createLag.push(g.createdAt - started.get(r.id)!);
    const ms = (t: string | null) => (t ? new Date(t).getTime() : NaN);
    stage.admitted.push(ms(r.created_at) - started.get(r.id)!);
    stage.dispatched.push(ms(r.dispatched_at) - ms(r.created_at));
    stage.workerStarted.push(ms(r.started_at) - ms(r.dispatched_at));
    stage.createdAtLuma.push(g.createdAt - ms(r.started_at));
    if (g.completedAt) afterComplete.push(delivered - g.completedAt);
    if (g.completedAt && g.completedSeenAt) noticed.push(g.completedSeenAt - g.completedAt);
    if (g.completedSeenAt) after.noticedToStored.push(ms(r.finished_at) - g.completedSeenAt);
    after.storedToDelivered.push(delivered - ms(r.finished_at));
  }
  const stats = (values: number[]) => {
    const sorted = [...values].sort((a, b) => a - b);
    return { p50Ms: round(percentile(sorted, 50), 0), p95Ms: round(percentile(sorted, 95), 0), maxMs: round(sorted[sorted.length - 1] ?? NaN, 0) };
  };
  const fakeStats = (await inspect('stats')) as { creates: number; concurrentPeak: number; callbacks: { delivered: number } };
  const result = {
    bench: 'luma-overhead', jobs: JOBS, generationSeconds: GENERATION_MS / 1000, failed, creates: fakeStats.creates,
    concurrentPeak: fakeStats.concurrentPeak, callbacksDelivered: fakeStats.callbacks.delivered,
    overhead: stats(overhead), admissionToCreate: stats(createLag),
    admissionStages: Object.fromEntries(Object.entries(stage).map(([k, v]) => [k, stats(v).p50Ms])), completedToNoticed: stats(noticed), completedToDelivered: stats(afterComplete),
    deliveryStages: Object.fromEntries(Object.entries(after).map(([k, v]) => [k, stats(v).p50Ms])), target: 'overhead p95 < 1000 ms',
  };
  await server.close();
  await bench.cleanup();
  fake.child.kill('SIGTERM');
  await once(fake.child, 'exit');
  return result;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then((r) => { console.log(JSON.stringify(r)); process.exit(0); }, (e: unknown) => { console.error(e); process.exit(1); });
}
