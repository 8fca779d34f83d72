import { sql } from 'drizzle-orm';
import type { Db, Executor } from './db/client.ts';
import { createAccounts, lockAccounts, transfer } from './ledger/accounts.ts';
import { nextReset, periodKey, type Period } from './ledger/periods.ts';
import { rollPeriod } from './ledger/budget.ts';
import { ErrorCode, userError } from './errors.ts';

export type Platform = 'discord' | 'slack' | 'cli';

export interface TeamRef {
  platform: Platform;
  /** Discord guild id, Slack enterprise_id (org-wide install) or team_id, or the CLI team name. */
  externalId: string;
  name?: string;
}

export interface MemberRef {
  externalId: string;
  displayName?: string;
}

class AlreadyExists extends Error {}

/**
 * Finds the team behind a platform account, creating it on first sight with DEFAULT_TEAM_CREDITS a month.
 * Two processes seeing a new team at once both try; the unique platform account decides, the loser's
 * transaction rolls back (taking its half-made team with it) and it reads the winner's.
 */
export async function ensureTeam(db: Db, ref: TeamRef, defaultCredits: number, now: Date): Promise<string> {
  const existing = await findTeam(db, ref);
  if (existing) return existing;
  try {
    return await db.transaction(async (tx) => {
      const name = ref.name ?? `${ref.platform}:${ref.externalId}`;
      const team = await tx.execute<{ id: string }>(sql`insert into teams (name) values (${name}) returning id`);
      const teamId = String(team[0]!.id);
      const account = await tx.execute(sql`
        insert into platform_accounts (team_id, platform, external_id, name)
        values (${teamId}, ${ref.platform}, ${ref.externalId}, ${ref.name ?? null})
        on conflict (platform, external_id) do nothing returning id`);
      if (account.length === 0) throw new AlreadyExists();
      const period: Period = 'monthly';
      const key = periodKey(period, now);
      await tx.execute(sql`insert into budgets (team_id, limit_credits, period, period_key) values (${teamId}, ${defaultCredits}, ${period}, ${key})`);
      await createAccounts(tx, teamId);
      if (defaultCredits > 0) {
        const locked = await lockAccounts(tx, teamId);
        await transfer(tx, locked, {
          teamId, kind: 'grant', from: 'granted', to: 'available', amount: defaultCredits,
          dedupeKey: `grant:${teamId}:${key}`, note: `allowance for ${key}`,
        });
      }
      return teamId;
    });
  } catch (error) {
    if (!(error instanceof AlreadyExists)) throw error;
    const winner = await findTeam(db, ref);
    if (!winner) throw new Error(`team for ${ref.platform}:${ref.externalId} vanished`);
    return winner;
  }
}

export async function findTeam(db: Executor, ref: Pick<TeamRef, 'platform' | 'externalId'>): Promise<string | null> {
  const rows = await db.execute<{ team_id: string }>(sql`
    select team_id from platform_accounts where platform = ${ref.platform} and external_id = ${ref.externalId}`);
  return rows[0] ? String(rows[0].team_id) : null;
}

export async function requireTeam(db: Executor, ref: Pick<TeamRef, 'platform' | 'externalId'>): Promise<string> {
  const id = await findTeam(db, ref);
  if (!id) throw userError(ErrorCode.NotFound, `No team "${ref.externalId}" on ${ref.platform} yet. It is created by its first dream.`);
  return id;
}

export async function ensureMember(db: Executor, teamId: string, platform: Platform, ref: MemberRef): Promise<string> {
  const rows = await db.execute<{ id: string }>(sql`
    insert into members (team_id, platform, external_id, display_name)
    values (${teamId}, ${platform}, ${ref.externalId}, ${ref.displayName ?? null})
    on conflict (team_id, platform, external_id)
      do update set display_name = coalesce(excluded.display_name, members.display_name)
    returning id`);
  return String(rows[0]!.id);
}

export interface TeamCredits {
  teamId: string;
  available: number;
  held: number;
  consumed: number;
  limit: number;
  period: Period;
  periodKey: string;
  nextReset: Date | null;
  memberCap: number | null;
}

export async function teamCredits(db: Db, teamId: string, now: Date): Promise<TeamCredits> {
  const budget = await db.transaction((tx) => rollPeriod(tx, teamId, now));
  const rows = await db.execute<{ kind: string; balance: number }>(sql`select kind, balance from accounts where team_id = ${teamId}`);
  const balance = (kind: string) => Number(rows.find((r) => r.kind === kind)?.balance ?? 0);
  return {
    teamId, available: balance('available'), held: balance('held'), consumed: balance('consumed'),
    limit: budget.limitCredits, period: budget.period, periodKey: budget.periodKey,
    nextReset: nextReset(budget.period, now), memberCap: budget.memberCap,
  };
}
