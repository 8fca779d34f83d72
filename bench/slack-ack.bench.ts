import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { pathToFileURL } from 'node:url';
import { monitorEventLoopDelay } from 'node:perf_hooks';
import { Worker } from 'node:worker_threads';
import { App, ExpressReceiver } from '@slack/bolt';
import express from 'express';
import { createSlackAdapter } from '../adapters/slack/index.ts';
import { boltLogger } from '../adapters/slack/verify.ts';
import { listGenerations } from '../src/generations.ts';
import { createHttpServer } from '../src/http/server.ts';
import { createLogger } from '../src/log.ts';
import { benchEnv, percentile, round } from './support.ts';

const COMMANDS = Number(process.env.BENCH_SLACK_COMMANDS ?? 300);
const WINDOW_MS = 1000;
const ROUNDS = Number(process.env.BENCH_ROUNDS ?? 3);

/**
 * Slack ack latency under a burst: 300 signed /dream commands sent within 1 s, against dreambot's Slack
 * adapter (Bolt + admission + job message, on the project's HTTP server, bot role: no renders here) and
 * against a bare Bolt app that only acks, in the same run, rounds alternating. The fake Slack Web API and
 * the load generator each run in a worker thread of their own, so neither borrows the apps' event loop.
 * Target: p99 at most 1.5× the bare app's, and no ack past Slack's 3 s.
 */
export async function main() {
  const fake = await startFakeInWorker();
  const bench = await benchEnv({
    SLACK_BOT_TOKEN: fake.token, SLACK_SIGNING_SECRET: fake.secret, SLACK_API_URL: fake.apiUrl, DEFAULT_TEAM_CREDITS: '1000000',
    MEMBER_ACTIVE_JOBS: '1000', TEAM_ACTIVE_JOBS: '1000',
  });
  const rt = await bench.runtime();
  const http = createHttpServer({ runtime: rt });
  const adapter = createSlackAdapter({ runtime: rt, http, botToken: fake.token, signingSecret: fake.secret, apiUrl: fake.apiUrl, ...(process.env.BENCH_SLACK_CONCURRENCY ? { concurrency: Number(process.env.BENCH_SLACK_CONCURRENCY) } : {}) });
  await adapter.start();
  const oursPort = await http.listen(0, '127.0.0.1');
  const bare = await startBareBolt(fake);

  const results: Record<'bare' | 'ours', number[][]> = { bare: [], ours: [] };
  // One unmeasured burst each first: JIT, connection pools and prepared statements warm up.
  await burst(`http://127.0.0.1:${bare.port}/slack/events`, fake.secret, 'warm-bare');
  await burst(`http://127.0.0.1:${oursPort}/slack/events`, fake.secret, 'warm-ours');
  await adapter.idle();
  // The apps' event-loop delay during each burst: a stall seen by both is the machine, not the app.
  const loopMaxMs: Record<'bare' | 'ours', number[]> = { bare: [], ours: [] };
  const measured = async (which: 'bare' | 'ours', url: string, tag: string) => {
    const delay = monitorEventLoopDelay({ resolution: 5 });
    delay.enable();
    results[which].push(await burst(url, fake.secret, tag));
    delay.disable();
    loopMaxMs[which].push(round(delay.max / 1e6, 1));
  };
  let sent = COMMANDS;
  for (let r = 0; r < ROUNDS; r++) {
    await measured('bare', `http://127.0.0.1:${bare.port}/slack/events`, `bare${r}`);
    await measured('ours', `http://127.0.0.1:${oursPort}/slack/events`, `ours${r}`);
    sent += COMMANDS;
    // Let the admitted work finish before the next round, so rounds don't overlap.
    await adapter.idle();
  }
  const admitted = (await listGenerations(rt.db, { limit: 100_000 })).length;
  const stats = (runs: number[][], which: 'bare' | 'ours') => {
    const all = runs.flat();
    const ok = all.filter((ms) => ms >= 0).sort((a, b) => a - b);
    const perRoundP99 = runs.map((run) => round(percentile(run.filter((ms) => ms >= 0).sort((a, b) => a - b), 99)));
    return { p50Ms: round(percentile(ok, 50)), p99Ms: round(percentile(ok, 99)), maxMs: round(ok.at(-1) ?? NaN), over3s: ok.filter((ms) => ms >= 3000).length, failed: all.length - ok.length, perRoundP99, loopMaxMs: loopMaxMs[which] };
  };
  const ours = stats(results.ours, 'ours');
  const baseline = stats(results.bare, 'bare');
  await adapter.stop();
  await http.close();
  await bare.close();
  await bench.cleanup();
  await fake.close();
  return {
    bench: 'slack-ack', commands: COMMANDS, windowMs: WINDOW_MS, rounds: ROUNDS, admitted, expected: sent,
    bare: baseline, ours, p99Ratio: round(ours.p99Ms / baseline.p99Ms), target: 'p99 ≤ 1.5× bare, none ≥ 3000 ms',
    pass: ours.p99Ms <= 1.5 * baseline.p99Ms && ours.over3s === 0 && ours.failed === 0,
  };
}

/** A Bolt app that does nothing but ack /dream, on its own HTTP server: the floor for Slack acks. */
async function startBareBolt(fake: { token: string; secret: string; apiUrl: string }): Promise<{ port: number; close(): Promise<void> }> {
  const router = express.Router();
  const logger = boltLogger(createLogger({ level: 'silent' }));
  const receiver = new ExpressReceiver({ signingSecret: fake.secret, logger, router, endpoints: '/', app: express() });
  const app = new App({ token: fake.token, receiver, logger, deferInitialization: true, clientOptions: { slackApiUrl: fake.apiUrl } });
  app.command('/dream', async ({ ack }) => ack());
  await app.init();
  const server: Server = createServer(express().use('/slack/events', router));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return {
    port: (server.address() as AddressInfo).port,
    close: () => new Promise<void>((resolve) => { server.close(() => resolve()); server.closeAllConnections(); }),
  };
}

/** The fake Slack Web API in a worker thread of its own. */
async function startFakeInWorker(): Promise<{ token: string; secret: string; apiUrl: string; close(): Promise<void> }> {
  const server = new URL('../test/fakes/slack/index.ts', import.meta.url).href;
  const worker = new Worker(`
    const { parentPort } = require('node:worker_threads');
    // Loader hooks don't reach an eval'd worker: register tsx here, then load the TypeScript fake.
    import('tsx/esm/api').then(({ register }) => { register(); return import(${JSON.stringify(server)}); }).then(async ({ startFakeSlack, seedWorkspace }) => {
      const fake = await startFakeSlack({ shareDelayMs: 0 });
      seedWorkspace(fake.ws);
      for (let i = 0; i < 64; i++) fake.ws.addUser({ id: 'U0LOAD' + i, name: 'load' + i });
      parentPort.on('message', async (m) => { if (m === 'close') { await fake.close(); parentPort.postMessage('closed'); } });
      parentPort.postMessage({ token: fake.ws.botToken, secret: fake.ws.signingSecret, apiUrl: fake.apiUrl });
    });`, { eval: true });
  const info = await new Promise<{ token: string; secret: string; apiUrl: string }>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  return {
    ...info,
    close: async () => {
      worker.postMessage('close');
      await new Promise((r) => worker.once('message', r));
      await worker.terminate();
    },
  };
}

/**
 * 300 signed slash commands, one every WINDOW_MS/300 ms, from a worker thread; returns each ack's latency
 * in ms (negative: the request failed or was not a 200).
 */
async function burst(url: string, secret: string, tag: string): Promise<number[]> {
  const worker = new Worker(`
    const { parentPort, workerData } = require('node:worker_threads');
    const { createHmac } = require('node:crypto');
    const { url, secret, tag, count, windowMs } = workerData;
    const bodies = Array.from({ length: count }, (_, i) => new URLSearchParams({
      token: 'x', team_id: 'T0FAKE0001', team_domain: 'dreamers', channel_id: 'C0GENERAL', channel_name: 'general',
      user_id: 'U0LOAD' + (i % 64), user_name: 'load' + (i % 64), command: '/dream', text: 'a red fox trots through snow --res 540p',
      api_app_id: 'A0DREAMBOT', is_enterprise_install: 'false', response_url: 'http://127.0.0.1:9/none',
      trigger_id: tag + '.' + i + '.' + Math.random().toString(16).slice(2),
    }).toString());
    const latencies = new Array(count);
    const started = performance.now();
    Promise.all(bodies.map((body, i) => new Promise((resolve) => setTimeout(resolve, Math.max(0, started + (i * windowMs) / count - performance.now()))).then(async () => {
      const ts = Math.floor(Date.now() / 1000);
      const signature = 'v0=' + createHmac('sha256', secret).update('v0:' + ts + ':' + body).digest('hex');
      const t0 = performance.now();
      try {
        const res = await fetch(url, { method: 'POST', body, headers: { 'content-type': 'application/x-www-form-urlencoded', 'x-slack-request-timestamp': String(ts), 'x-slack-signature': signature } });
        await res.arrayBuffer();
        latencies[i] = res.status === 200 ? performance.now() - t0 : -1;
      } catch {
        latencies[i] = -1;
      }
    }))).then(() => parentPort.postMessage(latencies));`, { eval: true, workerData: { url, secret, tag, count: COMMANDS, windowMs: WINDOW_MS } });
  const latencies = await new Promise<number[]>((resolve, reject) => {
    worker.once('message', resolve);
    worker.once('error', reject);
  });
  await worker.terminate();
  return latencies;
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then((r) => { console.log(JSON.stringify(r)); process.exit(0); }, (e: unknown) => { console.error(e); process.exit(1); });
}
