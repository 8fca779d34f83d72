import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { pathToFileURL } from 'node:url';
import { sql } from 'drizzle-orm';
import { changeBudget } from '../src/ledger/budget.ts';
import { renderPreview } from '../src/media/preview-render.ts';
import { resolveBinaries, resolveFontPath } from '../src/media/ffmpeg.ts';
import { ensureTeam } from '../src/teams.ts';
import { benchEnv } from './support.ts';
import { FixedTimeBackend } from './fixed-time-backend.ts';

const SLOTS = 4;
const BACKLOG = 300;
const JOB_MS = 150;

/**
 * Fairness with real workers: team A queues 300 jobs; once they fill every slot, team B submits one.
 * Counts how many of A's jobs start after B asked and before B's job starts. Target: at most the worker
 * concurrency (here 4), i.e. B waits one turn of freed slots, not for the backlog.
 */
export async function main() {
  const bins = await resolveBinaries({});
  const clip = path.join(await mkdtemp(path.join(os.tmpdir(), 'dreambot-bench-')), 'clip.mp4');
  await renderPreview(bins, { width: 640, height: 360, durationS: 1, camera: 'static', title: 'bench', fontPath: await resolveFontPath(), out: clip });
  const bench = await benchEnv({ TEAM_ACTIVE_JOBS: String(SLOTS), MEMBER_ACTIVE_JOBS: String(SLOTS) });
  let fixed: FixedTimeBackend | undefined;
  const rt = await bench.runtime({
    backends: (defaults) => {
      fixed = new FixedTimeBackend(defaults.get('preview')!, SLOTS, JOB_MS, clip);
      return new Map([['preview', fixed]]);
    },
  });
  const now = new Date();
  const heavyTeam = await ensureTeam(rt.db, { platform: 'cli', externalId: 'heavy' }, 0, now);
  await rt.db.transaction((tx) => changeBudget(tx, heavyTeam, { limitCredits: 100_000, period: 'none' }, now));
  for (let i = 0; i < BACKLOG; i++) {
    await rt.admit({ idempotencyKey: `heavy-${i}`, team: { platform: 'cli', externalId: 'heavy' }, member: { externalId: `a${i % 30}` }, request: { prompt: `heavy job ${i}` }, replyTo: { platform: 'cli' } });
  }
  await rt.startWorkers();
  while (fixed!.started.length < SLOTS * 2) await new Promise((r) => setTimeout(r, 20));
  const askedAt = performance.now();
  const light = await rt.admit({ idempotencyKey: 'light-1', team: { platform: 'cli', externalId: 'light' }, member: { externalId: 'b' }, request: { prompt: 'the light team\'s one job' }, replyTo: { platform: 'cli' } });
  while (!fixed!.started.some((s) => s.generationId === light.generationId)) await new Promise((r) => setTimeout(r, 10));
  const lightStart = fixed!.started.find((s) => s.generationId === light.generationId)!.at;
  const heavyBetween = fixed!.started.filter((s) => s.generationId !== light.generationId && s.at > askedAt && s.at < lightStart).length;
  const waitedMs = Math.round(lightStart - askedAt);
  const queued = await rt.db.execute(sql`select count(*) as n from generations where state = 'queued'`);
  await bench.cleanup();
  return { bench: 'fairness', backlog: BACKLOG, workerConcurrency: SLOTS, jobMs: JOB_MS, heavyStartedBeforeLight: heavyBetween, lightWaitedMs: waitedMs, heavyStillQueued: Number(queued[0]!.n), target: `<= ${SLOTS}` };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then((r) => { console.log(JSON.stringify(r)); process.exit(0); }, (e: unknown) => { console.error(e); process.exit(1); });
}
