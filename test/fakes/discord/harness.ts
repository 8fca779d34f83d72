import { execFile } from 'node:child_process';
import { promisify } from 'node:util';
import { REST } from 'discord.js';
import { sql } from 'drizzle-orm';
import { commandBodies, createDiscordAdapter, syncCommands, type DiscordAdapter, type DiscordAdapterConfig } from '../../../adapters/discord/index.ts';
import type { Backend } from '../../../src/backends/types.ts';
import { loadConfig, type BackendName } from '../../../src/config.ts';
import { getGeneration, type Generation } from '../../../src/generations.ts';
import { Runtime } from '../../../src/runtime.ts';
import { ScriptedBackend } from '../scripted-backend.ts';
import { createTestContext, waitFor, type TestContext } from '../../support/context.ts';
import { FakeDiscord, type FakeChannel, type FakeDiscordOptions, type FakeGuild, type FakeMessage, type FakeUser, type OptionValue, type SentInteraction } from './index.ts';

const run = promisify(execFile);

/**
 * One "deployment" for Discord tests: a fake Discord with a server, a channel and three people (two
 * members and an admin), real Postgres and Redis (a database and prefix of the file's own), a Runtime
 * with workers on the preview backend (wrapped by ScriptedBackend so a prompt can say "#slow=MS"), and
 * the real adapter with its real discord.js Client. `restart()` replaces runtime and adapter as a
 * process restart would; the fake (Discord) and the database stay.
 */
export interface DiscordHarness {
  ctx: TestContext;
  fake: FakeDiscord;
  guild: FakeGuild;
  channel: FakeChannel;
  ana: FakeUser;
  bo: FakeUser;
  boss: FakeUser;
  runtime: Runtime;
  adapter: DiscordAdapter;
  scripted: ScriptedBackend;
  dream(user: FakeUser, options: Record<string, OptionValue | undefined>, extra?: { attachmentSizeLimit?: number; ageMs?: number; channel?: FakeChannel }): SentInteraction;
  /** The generation a status message (deferred reply or 🔁 notice) belongs to. */
  generationFor(statusMessageId: string, timeoutMs?: number): Promise<Generation>;
  settled(generationId: string, timeoutMs?: number): Promise<Generation>;
  /** The posted clip message of a generation (its buttons name it). */
  clipMessage(generationId: string, timeoutMs?: number): Promise<FakeMessage>;
  available(): Promise<number>;
  restart(): Promise<void>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  env?: Record<string, string>;
  adapter?: Partial<Omit<DiscordAdapterConfig, 'runtime' | 'token' | 'apiUrl'>>;
  fake?: FakeDiscordOptions;
  attachmentSizeLimit?: number;
  /** Render slots for the preview backend. */
  slots?: number;
  /** The deployment's backends, from the scripted preview one (default: only it). Stand-ins must not be asked to render. */
  backends?: (preview: ScriptedBackend) => Map<BackendName, Backend>;
}

export async function createDiscordHarness(opts: HarnessOptions = {}): Promise<DiscordHarness> {
  const ctx = await createTestContext({ JOB_ATTEMPTS: '3', ...(opts.env ?? {}) });
  const fake = await FakeDiscord.start(opts.fake);
  const { guild, channel } = fake.addGuild({ name: 'Dream Lab', ...(opts.attachmentSizeLimit ? { attachmentSizeLimit: opts.attachmentSizeLimit } : {}) });
  const ana = fake.addUser('ana');
  const bo = fake.addUser('bo');
  const boss = fake.addUser('boss');
  fake.addMember(guild, ana);
  fake.addMember(guild, bo);
  fake.addMember(guild, boss, { admin: true });
  // Register the commands the way `dreambot commands register` does, so the fake knows option types.
  const rest = new REST({ api: fake.apiUrl }).setToken(fake.token);
  await syncCommands(rest, fake.applicationId, commandBodies({ allowDms: opts.adapter?.allowDms ?? false }), guild.id);

  let scripted!: ScriptedBackend;
  const boot = async () => {
    const runtime = await Runtime.create(loadConfig({ ...ctx.env, ...fake.env() }), {
      log: ctx.log,
      backends: (defaults) => {
        scripted = new ScriptedBackend(defaults.get('preview')!, opts.slots ?? 2);
        return opts.backends ? opts.backends(scripted) : new Map([['preview', scripted]]);
      },
    });
    await runtime.startWorkers();
    const adapter = createDiscordAdapter({ runtime, token: fake.token, apiUrl: fake.apiUrl, ...(opts.adapter ?? {}) });
    await adapter.start();
    await runtime.startDelivery([adapter.deliverer]);
    return { runtime, adapter };
  };
  let current = await boot();

  const harness: DiscordHarness = {
    ctx, fake, guild, channel, ana, bo, boss,
    get runtime() {
      return current.runtime;
    },
    get adapter() {
      return current.adapter;
    },
    get scripted() {
      return scripted;
    },
    dream(user, options, extra = {}) {
      return fake.sendCommand({
        name: 'dream', channel: extra.channel ?? channel, user, options,
        ...(extra.attachmentSizeLimit ? { attachmentSizeLimit: extra.attachmentSizeLimit } : {}), ...(extra.ageMs ? { ageMs: extra.ageMs } : {}),
      });
    },
    async generationFor(statusMessageId, timeoutMs = 15_000) {
      const id = await waitFor(async () => {
        const rows = await current.runtime.db.execute<{ id: string }>(sql`select id from generations where reply_to->>'messageId' = ${statusMessageId}`);
        return rows[0] ? String(rows[0].id) : null;
      }, timeoutMs, `a generation for status message ${statusMessageId}`);
      return (await getGeneration(current.runtime.db, id))!;
    },
    async settled(generationId, timeoutMs = 60_000) {
      return waitFor(async () => {
        const g = await getGeneration(current.runtime.db, generationId);
        return g && ['delivered', 'failed', 'cancelled'].includes(g.state) ? g : null;
      }, timeoutMs, `generation ${generationId} to end`);
    },
    async clipMessage(generationId, timeoutMs = 60_000) {
      return fake.waitFor(() => fake.messages().find((m) => m.components.some((row) =>
        ((row.components as { custom_id?: string }[]) ?? []).some((c) => c.custom_id === `dream:reroll:${generationId}`))), timeoutMs, `the clip of ${generationId}`);
    },
    async available() {
      const rows = await current.runtime.db.execute<{ balance: number }>(sql`
        select a.balance from accounts a join platform_accounts p on p.team_id = a.team_id
        where p.platform = 'discord' and p.external_id = ${guild.id} and a.kind = 'available'`);
      return rows[0] ? Number(rows[0].balance) : NaN;
    },
    async restart() {
      await current.adapter.stop();
      await current.runtime.close(1000);
      current = await boot();
    },
    async close() {
      await current.adapter.stop().catch(() => undefined);
      await current.runtime.close(1000).catch(() => undefined);
      await fake.stop();
      await ctx.cleanup();
    },
  };
  return harness;
}

/** A real picture from an ffmpeg lavfi source (a flat colour by default, or e.g. noise for a busy one). */
export async function testPicture(ffmpeg: string, format: 'png' | 'jpg', source = 'color=c=orange:s=320x180'): Promise<Buffer> {
  const { stdout } = await run(ffmpeg, ['-v', 'error', '-f', 'lavfi', '-i', source, '-frames:v', '1', '-f', 'image2pipe', '-c:v', format === 'png' ? 'png' : 'mjpeg', '-'], { encoding: 'buffer', maxBuffer: 8 << 20 });
  return stdout as unknown as Buffer;
}

export function buttonIds(message: FakeMessage): string[] {
  return message.components.flatMap((row) => ((row.components as { custom_id?: string }[]) ?? []).map((c) => c.custom_id ?? ''));
}
