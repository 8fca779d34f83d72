import type { HttpServer } from '../src/http/server.ts';
import type { Deliverer } from '../src/queue/delivery-worker.ts';
import type { Runtime } from '../src/runtime.ts';
import type { Platform } from '../src/teams.ts';

/** A chat platform, as the bot role runs it: transport in, deliveries out. */
export interface ChatAdapter {
  readonly platform: Platform;
  readonly deliverer: Deliverer;
  start(): Promise<void>;
  stop(): Promise<void>;
}

/** Returns null when the platform is not configured (its token unset), so it is simply not served. */
export type AdapterFactory = (runtime: Runtime, http: HttpServer) => ChatAdapter | null;

/** Each platform adds its factory here (one line each). */
export const adapterFactories: AdapterFactory[] = [];
adapterFactories.push((await import('./slack/index.ts')).slackAdapterFactory);
adapterFactories.push((await import('./discord/index.ts')).discordAdapterFactory);

export async function startAdapters(runtime: Runtime, http: HttpServer): Promise<ChatAdapter[]> {
  const adapters = adapterFactories.map((create) => create(runtime, http)).filter((a): a is ChatAdapter => a !== null);
  for (const adapter of adapters) await adapter.start();
  await runtime.startDelivery(adapters.map((a) => a.deliverer));
  return adapters;
}
