import { pathToFileURL } from 'node:url';
import { sql } from 'drizzle-orm';
import { Redis } from 'ioredis';
import { ComfyUIBackend } from '../src/backends/comfyui/index.ts';
import { createLogger } from '../src/log.ts';
import { FakeComfyUI } from '../test/fakes/comfyui/server.ts';
import { benchEnv, round } from './support.ts';

const SERVERS = 4;
const JOB_MS = 5000;
const JOBS = Number(process.env.BENCH_COMFYUI_JOBS ?? 40);

/**
 * Pool throughput: 40 jobs over 4 fake ComfyUI servers at a fixed 5 s per prompt, through the whole
 * pipeline (admission, dispatcher, BullMQ worker, the comfyui backend with its production timings, /view
 * download, ffprobe, asset store, capture). Ideal is 40 × 5 / 4 = 50 s; the target is at most 1.15×.
 * Also reports how long any prompt sat in a server's own queue (the pool should keep it at zero).
 */
export async function main() {
  const fakes = await Promise.all(Array.from({ length: SERVERS }, (_, i) => FakeComfyUI.start({ promptMs: JOB_MS, name: `gpu-${i}` })));
  await fakes[0]!.prepare({ width: 960, height: 544, frames: 121, fps: 24 });
  const bench = await benchEnv({ TEAM_ACTIVE_JOBS: String(JOBS), MEMBER_ACTIVE_JOBS: String(JOBS), DEFAULT_TEAM_CREDITS: String(JOBS * 100) });
  const redis = new Redis(bench.config.REDIS_URL);
  let backend: ComfyUIBackend | undefined;
  const rt = await bench.runtime({
    backends: (defaults, media) => {
      backend = new ComfyUIBackend({
        urls: fakes.map((f) => f.url), workflow: bench.config.COMFYUI_WORKFLOW, creditsPerGpuSecond: 1, redis,
        redisPrefix: bench.config.REDIS_PREFIX, bins: media.bins, log: createLogger({ level: 'silent' }),
      });
      return new Map([...defaults, ['comfyui', backend]]);
    },
  });
  await backend!.ready();
  for (let i = 0; i < JOBS; i++) {
    await rt.admit({
      idempotencyKey: `pool-${i}`, team: { platform: 'cli', externalId: 'pool' }, member: { externalId: `m${i}` },
      request: { prompt: `pool job ${i}`, backend: 'comfyui', resolution: '540p' }, replyTo: { platform: 'cli' },
    });
  }
  const started = performance.now();
  await rt.startWorkers();
  for (;;) {
    const rows = await rt.db.execute(sql`select state, count(*) as n from generations group by state`);
    const counts = Object.fromEntries(rows.map((r) => [String(r.state), Number(r.n)]));
    if ((counts.delivered ?? 0) + (counts.failed ?? 0) + (counts.cancelled ?? 0) >= JOBS) {
      if ((counts.delivered ?? 0) !== JOBS) throw new Error(`not every job was delivered: ${JSON.stringify(counts)}`);
      break;
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  const totalSeconds = (performance.now() - started) / 1000;
  const queuedMs = fakes.flatMap((f) => f.received.map((r) => (f.executions.find((e) => e.promptId === r.promptId)?.startedAt ?? r.at) - r.at));
  const perServer = fakes.map((f) => f.counters.executions);
  const busySeconds = fakes.map((f) => f.executions.reduce((s, e) => s + ((e.endedAt ?? e.startedAt) - e.startedAt), 0) / 1000);
  await bench.cleanup();
  await redis.quit();
  await Promise.all(fakes.map((f) => f.close()));
  const ideal = (JOBS * JOB_MS) / 1000 / SERVERS;
  return {
    bench: 'comfyui-pool', servers: SERVERS, jobs: JOBS, jobSeconds: JOB_MS / 1000, idealSeconds: ideal,
    totalSeconds: round(totalSeconds, 1), ratio: round(totalSeconds / ideal, 3), target: '<= 1.15',
    executionsPerServer: perServer, gpuUtilisation: round(busySeconds.reduce((a, b) => a + b, 0) / (SERVERS * totalSeconds), 3),
    maxServerQueueWaitMs: Math.round(Math.max(0, ...queuedMs)),
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then((r) => { console.log(JSON.stringify(r)); process.exit(0); }, (e: unknown) => { console.error(e); process.exit(1); });
}
