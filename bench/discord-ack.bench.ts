import { once } from 'node:events';
import { pathToFileURL } from 'node:url';
import { Client, Events, GatewayIntentBits, Partials } from 'discord.js';
import { sql } from 'drizzle-orm';
import { createDiscordAdapter } from '../adapters/discord/index.ts';
import { createLogger } from '../src/log.ts';
import { FakeDiscord, type FakeChannel, type FakeUser, type SentInteraction } from '../test/fakes/discord/index.ts';
import { benchEnv, median, percentile, round } from './support.ts';

const INTERACTIONS = Number(process.env.BENCH_DISCORD_INTERACTIONS ?? 300);
const WINDOW_MS = Number(process.env.BENCH_DISCORD_WINDOW_MS ?? 1000);
const ROUNDS = Number(process.env.BENCH_DISCORD_ROUNDS ?? 5);
const MEMBERS = 20;

/**
 * Time to acknowledge: 300 /dream interactions dispatched through the fake gateway within 1 s, measured
 * at the fake from dispatch to the arrival of the deferred callback (type 5). dreambot's adapter (which
 * then admits each request against real Postgres and Redis and edits the reply) against a bare
 * discord.js bot that only defers, each with its own fake Discord, alternating rounds in one process.
 * Target: dreambot's p99 ≤ 1.5 × the bare bot's, and no callback later than Discord's 3 s.
 */
interface World { fake: FakeDiscord; channel: FakeChannel; members: FakeUser[] }

async function world(): Promise<World> {
  const fake = await FakeDiscord.start();
  const { guild, channel } = fake.addGuild({ name: 'Bench' });
  const members = Array.from({ length: MEMBERS }, (_, i) => {
    const user = fake.addUser(`member${i}`);
    fake.addMember(guild, user);
    return user;
  });
  return { fake, channel, members };
}

async function burst(w: World, tag: string, count = INTERACTIONS): Promise<{ latencies: number[]; missing: number }> {
  const sent: SentInteraction[] = [];
  const started = performance.now();
  for (let i = 0; i < count; i++) {
    const due = started + (i * WINDOW_MS) / count;
    const wait = due - performance.now();
    if (wait > 1) await new Promise((r) => setTimeout(r, wait));
    sent.push(w.fake.sendCommand({
      name: 'dream', channel: w.channel, user: w.members[i % MEMBERS]!,
      options: { prompt: `a red fox trots through fresh snow at dawn, take ${tag}-${i}`, resolution: '540p' },
    }));
  }
  await w.fake.waitFor(() => sent.every((s) => s.record.callback), 15_000, 'every callback').catch(() => undefined);
  const latencies = sent.filter((s) => s.record.callback).map((s) => s.record.callback!.latencyMs).sort((a, b) => a - b);
  return { latencies, missing: sent.length - latencies.length };
}

/** Per round p50/p99, their medians across rounds (as the other benches report), and the pooled figures. */
function summary(runs: { latencies: number[]; missing: number }[]) {
  const all = runs.flatMap((r) => r.latencies).sort((a, b) => a - b);
  const perRound = runs.map((r) => ({ p50Ms: round(percentile(r.latencies, 50)), p99Ms: round(percentile(r.latencies, 99)) }));
  return {
    p50Ms: round(median(perRound.map((r) => r.p50Ms))), p99Ms: round(median(perRound.map((r) => r.p99Ms))),
    pooledP99Ms: round(percentile(all, 99)), maxMs: round(all[all.length - 1] ?? NaN), perRound,
    over3s: all.filter((ms) => ms > 3000).length, missing: runs.reduce((n, r) => n + r.missing, 0),
  };
}

export async function main() {
  // Enough credits that every request in every round is admitted (the default is 1000 a team).
  const bench = await benchEnv({ DEFAULT_TEAM_CREDITS: '1000000' });
  const rt = await bench.runtime({ log: createLogger({ level: 'silent' }) });

  const bareWorld = await world();
  const bare = new Client({ intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessageReactions], partials: [Partials.Message, Partials.Channel, Partials.Reaction], rest: { api: bareWorld.fake.apiUrl } });
  bare.on(Events.InteractionCreate, (i) => {
    if (i.isChatInputCommand()) void i.deferReply().catch(() => undefined);
  });
  const bareReady = once(bare, Events.ClientReady);
  await bare.login(bareWorld.fake.token);
  await bareReady;

  const oursWorld = await world();
  const adapter = createDiscordAdapter({ runtime: rt, token: oursWorld.fake.token, apiUrl: oursWorld.fake.apiUrl });
  await adapter.start();

  // One discarded warm-up burst each: JIT, connection pools and prepared statements, not the steady state.
  await burst(bareWorld, 'warm', 60);
  await burst(oursWorld, 'warm', 60);
  await oursWorld.fake.waitFor(() => oursWorld.fake.messages().filter((m) => m.content.includes('Queued')).length >= 60, 30_000, 'the warm-up edits').catch(() => undefined);
  const bareRuns = [];
  const ourRuns = [];
  for (let r = 0; r < ROUNDS; r++) {
    bareRuns.push(await burst(bareWorld, `b${r}`));
    const before = oursWorld.fake.messages().length;
    ourRuns.push(await burst(oursWorld, `o${r}`));
    // Let the admissions and "queued" edits of this round finish before the next one starts.
    await oursWorld.fake.waitFor(() => oursWorld.fake.messages().slice(before).filter((m) => m.content.includes('Queued')).length >= INTERACTIONS, 60_000, 'the queued edits').catch(() => undefined);
  }
  const admitted = Number((await rt.db.execute<{ n: number }>(sql`select count(*) as n from generations`))[0]!.n);

  await adapter.stop();
  await bare.destroy();
  await bareWorld.fake.stop();
  await oursWorld.fake.stop();
  await bench.cleanup();

  const dreambot = summary(ourRuns);
  const baseline = summary(bareRuns);
  const p99Ratio = round(dreambot.p99Ms / Math.max(baseline.p99Ms, 1));
  const pooledP99Ratio = round(dreambot.pooledP99Ms / Math.max(baseline.pooledP99Ms, 1));
  return {
    bench: 'discord-ack', interactions: INTERACTIONS, windowMs: WINDOW_MS, rounds: ROUNDS, admitted, dreambot, baseline, p99Ratio, pooledP99Ratio,
    target: 'median-of-rounds p99 <= 1.5x bare, none past 3000 ms', pass: p99Ratio <= 1.5 && dreambot.over3s === 0 && dreambot.missing === 0,
  };
}

if (import.meta.url === pathToFileURL(process.argv[1] ?? '').href) {
  main().then((r) => { console.log(JSON.stringify(r)); process.exit(0); }, (e: unknown) => { console.error(e); process.exit(1); });
}
