import { sql } from 'drizzle-orm';
import type { Executor } from './db/client.ts';
import { getGeneration, type Generation } from './generations.ts';
import type { Platform } from './teams.ts';

/**
 * Platform message → generation. A button click or a 🔁 reaction names a message; this finds its clip
 * without reading chat history, also after a restart and on messages no cache has seen.
 */
export async function recordDelivery(
  db: Executor,
  input: { generationId: string; platform: Platform; kind: string; channelId?: string | null; messageId: string },
): Promise<void> {
  await db.execute(sql`
    insert into deliveries (generation_id, platform, kind, channel_id, message_id)
    values (${input.generationId}, ${input.platform}, ${input.kind}, ${input.channelId ?? null}, ${input.messageId})
    on conflict do nothing`);
}

export async function findDelivery(db: Executor, generationId: string, platform: Platform, kind: string): Promise<{ channelId: string | null; messageId: string | null } | null> {
  const rows = await db.execute<{ channel_id: string | null; message_id: string | null }>(sql`
    select channel_id, message_id from deliveries where generation_id = ${generationId} and platform = ${platform} and kind = ${kind}`);
  return rows[0] ? { channelId: rows[0].channel_id, messageId: rows[0].message_id } : null;
}

export async function findGenerationByMessage(db: Executor, platform: Platform, messageId: string): Promise<Generation | null> {
  const rows = await db.execute<{ generation_id: string }>(sql`
    select generation_id from deliveries where platform = ${platform} and message_id = ${messageId}`);
  return rows[0] ? getGeneration(db, String(rows[0].generation_id)) : null;
}
