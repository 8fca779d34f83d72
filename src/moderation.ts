import { sql } from 'drizzle-orm';
import type { Executor } from './db/client.ts';

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/** Words or phrases matched whole and case-insensitively, so "ass" does not block "class". */
export function findBlocked(prompt: string, words: string[]): string | null {
  const normalized = prompt.normalize('NFKC').toLowerCase();
  for (const word of words) {
    const w = word.normalize('NFKC').toLowerCase().trim();
    if (!w) continue;
    if (new RegExp(`(^|[^\\p{L}\\p{N}])${escapeRegExp(w)}($|[^\\p{L}\\p{N}])`, 'u').test(normalized)) return word;
  }
  return null;
}

export async function teamBlocklist(db: Executor, teamId: string): Promise<string[]> {
  const rows = await db.execute<{ word: string }>(sql`select word from blocklist where team_id = ${teamId} order by word`);
  return rows.map((r) => String(r.word));
}
