/**
 * The Discord adapter: a discord.js 14 gateway Client (intents Guilds + GuildMessageReactions, partials
 * Message/Channel/Reaction so reactions on uncached messages still arrive), /dream (model and backend
 * suggested as they are typed: `autocomplete.ts`), /dream-credits, /dream-admin, the clip buttons and the
 * remix modal, 🔁 re-rolls, and the Deliverer for platform 'discord'. Transport only: it parses
 * (`parse.ts`), checks rights (`verify.ts`), hands requests to admission, remix and admin in core
 * (`handlers.ts`), renders (`render.ts`) and posts (`deliver.ts`); it never calls a backend and never
 * writes SQL.
 */
import { once } from 'node:events';
import { Client, Events, GatewayIntentBits, Partials, type GatewayDispatchPayload } from 'discord.js';
import type { AdapterFactory, ChatAdapter } from '../index.ts';
import { ConfigError } from '../../src/config.ts';
import type { Runtime } from '../../src/runtime.ts';
import { DiscordDeliverer } from './deliver.ts';
import { onInteraction, onReaction, type HandlerDeps } from './handlers.ts';
import { MIN_PROGRESS_EVERY_MS, ProgressTracker } from './progress.ts';
import { workQueue, type WorkQueue } from '../shared/work-queue.ts';

export { commandBodies, syncCommands } from './commands.ts';
export type { DiscordReplyTo } from './deliver.ts';

export interface DiscordAdapterConfig {
  runtime: Runtime;
  /** DISCORD_TOKEN, the bot token. */
  token: string;
  /** DISCORD_API_URL; discord.js appends /v10. A local fake in tests. */
  apiUrl?: string;
  /** DISCORD_ALLOW_DMS: serve /dream in DMs, billed to the member's personal team. Default false. */
  allowDms?: boolean;
  /** DISCORD_CLIP_IN_THREAD: post the clip in a thread on the reply. Default true. */
  clipInThread?: boolean;
  /** Minimum time between two progress edits of one status message; never below 5000. */
  progressEveryMs?: number;
  /** Stop using an interaction token this long before its 15 minutes end. Default 30 s. */
  tokenMarginMs?: number;
  /** Post-ack work (admission, first edits, reactions) running at once in this process. Default 16. */
  concurrency?: number;
  now?: () => number;
}

export class DiscordAdapter implements ChatAdapter {
  readonly platform = 'discord' as const;
  readonly client: Client;
  readonly deliverer: DiscordDeliverer;
  readonly tracker: ProgressTracker;
  readonly later: WorkQueue;
  private started = false;

  constructor(private readonly config: DiscordAdapterConfig) {
    const { runtime } = config;
    const log = runtime.log.child({ platform: 'discord' });
    const allowDms = config.allowDms ?? false;
    this.client = new Client({
      intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessageReactions, ...(allowDms ? [GatewayIntentBits.DirectMessageReactions] : [])],
      partials: [Partials.Message, Partials.Channel, Partials.Reaction],
      rest: { api: config.apiUrl ?? 'https://discord.com/api' },
    });
    // The deliverer posts with the bot token, also in processes (or moments) without a gateway session.
    this.client.rest.setToken(config.token);
    const clipInThread = config.clipInThread ?? true;
    this.later = workQueue(log, { concurrency: config.concurrency ?? 16, quietMs: 25, label: 'discord' });
    this.tracker = new ProgressTracker({
      runtime, rest: this.client.rest, log, everyMs: Math.max(config.progressEveryMs ?? MIN_PROGRESS_EVERY_MS, MIN_PROGRESS_EVERY_MS),
      tokenMarginMs: config.tokenMarginMs ?? 30_000, now: config.now ?? Date.now, run: (work) => this.later.run(work),
    });
    this.deliverer = new DiscordDeliverer({ runtime, rest: this.client.rest, log, tracker: this.tracker, clipInThread });
    const deps: HandlerDeps = {
      runtime, rest: this.client.rest, log, tracker: this.tracker, allowDms, clipInThread, later: this.later,
      botUserId: () => this.client.user?.id ?? null,
    };
    this.client.on(Events.InteractionCreate, (interaction) => void onInteraction(deps, interaction));
    // Raw, not messageReactionAdd: the raw event carries message_author_id, so reactions on other
    // authors' messages are dropped without a lookup.
    this.client.on(Events.Raw, (packet: GatewayDispatchPayload) => {
      if (packet.t === 'MESSAGE_REACTION_ADD') onReaction(deps, packet.d as unknown as Record<string, unknown>);
    });
    this.client.on(Events.Error, (err) => log.error({ err }, 'discord: client error'));
    this.client.on(Events.ShardError, (err) => log.warn({ err }, 'discord: gateway connection error'));
  }

  /** Logs in and resolves once the gateway session is ready (READY plus every GUILD_CREATE). */
  async start(): Promise<void> {
    if (this.started) return;
    const ready = once(this.client, Events.ClientReady);
    await this.client.login(this.config.token);
    await ready;
    this.tracker.start();
    this.started = true;
  }

  /** Lets work already acknowledged finish (up to `graceMs`), then leaves the gateway. */
  async stop(graceMs = 10_000): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.later.idle(), new Promise<void>((resolve) => { timer = setTimeout(resolve, graceMs); })]);
    clearTimeout(timer);
    await this.tracker.stop();
    await this.client.destroy();
    this.started = false;
  }
}

export function createDiscordAdapter(config: DiscordAdapterConfig): DiscordAdapter {
  if (!config.token) throw new ConfigError('DISCORD_TOKEN is required for the Discord adapter; see .env.example');
  return new DiscordAdapter(config);
}

/** Registered in adapters/index.ts: serves Discord when DISCORD_TOKEN is set. */
export const discordAdapterFactory: AdapterFactory = (runtime) => {
  const c = runtime.config;
  if (!c.DISCORD_TOKEN) return null;
  return createDiscordAdapter({
    runtime, token: c.DISCORD_TOKEN, apiUrl: c.DISCORD_API_URL, allowDms: c.DISCORD_ALLOW_DMS, clipInThread: c.DISCORD_CLIP_IN_THREAD,
  });
};
