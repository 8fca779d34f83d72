import { LRUCache } from 'lru-cache';
import { sql } from 'drizzle-orm';
import type postgres from 'postgres';
import { executePrepared, type Db } from './db/client.ts';
import type { Period } from './ledger/periods.ts';
import { ensureMember, ensureTeam, type MemberRef, type Platform, type TeamRef } from './teams.ts';

/** What admission needs to know about a team before it can price and moderate a request. */
export interface TeamSettings {
  teamId: string;
  /** teams.config_version when this copy was read; admission's write checks it is still current. */
  version: number;
  preferences: Record<string, string>;
  blocked: string[];
  period: Period;
}

/**
 * Team settings and member ids, kept in process memory so admission reads nothing before its one write.
 * A copy is never trusted blindly: admission's statement compares `version` with teams.config_version,
 * which triggers bump on every change to preferences, blocklist or platform accounts, and a mismatch
 * sends the request round again with a fresh copy. Credits, caps and the budget period are not kept here;
 * the write reads them from the locked rows.
 */
export class TeamDirectory {
  // fetch() shares one load among concurrent callers, so a burst of first requests from a new team
  // creates and reads it once instead of racing to create it. A forget() during a load lets the load
  // finish for its callers (ignoreFetchAbort): were its copy stale, the write would say so again.
  private readonly teams = new LRUCache<string, TeamSettings, { ref: TeamRef; now: Date }>({
    max: 10_000,
    ignoreFetchAbort: true,
    fetchMethod: (_key, _stale, { context }) => this.load(context.ref, context.now),
  });
  private readonly members = new LRUCache<string, string, { teamId: string; platform: Platform; ref: MemberRef }>({
    max: 100_000,
    fetchMethod: (_key, _stale, { context }) => ensureMember(this.db, context.teamId, context.platform, context.ref),
  });

  constructor(private readonly db: Db, private readonly client: postgres.Sql, private readonly defaultCredits: number) {}

  /** The team behind a platform account, created with the default allowance on first sight. */
  async team(ref: TeamRef, now: Date): Promise<TeamSettings> {
    return (await this.teams.fetch(`${ref.platform}:${ref.externalId}`, { context: { ref, now } }))!;
  }

  async member(teamId: string, platform: Platform, ref: MemberRef): Promise<string> {
    return (await this.members.fetch(`${teamId}:${platform}:${ref.externalId}`, { context: { teamId, platform, ref } }))!;
  }

  private async load(ref: TeamRef, now: Date): Promise<TeamSettings> {
    let settings = await this.read(ref);
    if (!settings) {
      await ensureTeam(this.db, ref, this.defaultCredits, now);
      settings = await this.read(ref);
      if (!settings) throw new Error(`team for ${ref.platform}:${ref.externalId} vanished`);
    }
    return settings;
  }

  /** Drops a copy the database said is stale; the next call reads it again. */
  forget(ref: TeamRef): void {
    this.teams.delete(`${ref.platform}:${ref.externalId}`);
  }

  private async read(ref: TeamRef): Promise<TeamSettings | null> {
    const rows = await executePrepared<{ id: string; version: number; preferences: Record<string, string> | null; period: Period; blocked: string[] | null }>(this.client, sql`
      select t.id, t.config_version as version, t.preferences, b.period,
        (select coalesce(array_agg(word order by word), '{}') from blocklist where team_id = t.id) as blocked
      from platform_accounts pa join teams t on t.id = pa.team_id join budgets b on b.team_id = t.id
      where pa.platform = ${ref.platform} and pa.external_id = ${ref.externalId}`);
    const r = rows[0];
    if (!r) return null;
    return { teamId: String(r.id), version: Number(r.version), preferences: r.preferences ?? {}, blocked: r.blocked ?? [], period: r.period };
  }
}
