import { createHash } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Executor } from './db/client.ts';
import { ErrorCode, userError } from './errors.ts';

export type AssetKind = 'input_image' | 'frame' | 'poster' | 'clip';

export interface StoredAsset {
  id: string;
  teamId: string | null;
  kind: AssetKind;
  mime: string;
  size: number;
  data: Buffer;
}

/** Assets live in Postgres, not on a local disk, so any process on any machine can read them. */
export async function storeAsset(db: Executor, input: { teamId: string | null; kind: AssetKind; mime: string; data: Buffer }): Promise<string> {
  const sha256 = createHash('sha256').update(input.data).digest('hex');
  const rows = await db.execute<{ id: string }>(sql`
    insert into assets (team_id, kind, mime, size, sha256, data)
    values (${input.teamId}, ${input.kind}, ${input.mime}, ${input.data.length}, ${sha256}, ${input.data})
    returning id`);
  return String(rows[0]!.id);
}

export async function readAsset(db: Executor, id: string): Promise<StoredAsset> {
  const rows = await db.execute<Record<string, unknown>>(sql`select id, team_id, kind, mime, size, data from assets where id = ${id}`);
  const r = rows[0];
  if (!r) throw userError(ErrorCode.NotFound, 'That file is no longer stored.');
  return {
    id: String(r.id), teamId: r.team_id === null ? null : String(r.team_id), kind: r.kind as AssetKind,
    mime: String(r.mime), size: Number(r.size), data: r.data as Buffer,
  };
}
