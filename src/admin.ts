import { randomBytes } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Tx } from './db/client.ts';
import { ErrorCode, userError } from './errors.ts';
import { changeBudget, grantCredits } from './ledger/budget.ts';
import { periods, type Period } from './ledger/periods.ts';
import { aspects, backendChoices, durations, resolutions } from './request.ts';
import type { Runtime } from './runtime.ts';
import { ensureMember, ensureTeam, findTeam, teamCredits, type MemberRef, type Platform, type TeamCredits, type TeamRef } from './teams.ts';

/**
 * What team admins can change, for every chat adapter alike. Rights are the adapter's to check on every
 * call (Discord: Manage Server; Slack: admin/owner or SLACK_ADMIN_USER_IDS); every change here is
 * written to the audit log with the actor, in the same transaction as the change.
 */
async function audit(tx: Tx, teamId: string, actor: string, action: string, details: Record<string, unknown>): Promise<void> {
  await tx.execute(sql`insert into audit_log (team_id, actor, action, details) values (${teamId}, ${actor}, ${action}, ${JSON.stringify(details)}::jsonb)`);
}

function wholeCredits(value: number, what: string): number {
  if (!Number.isSafeInteger(value) || value < 0) throw userError(ErrorCode.InvalidRequest, `${what} must be a whole number of credits (0 or more).`);
  return value;
}

/** The team behind a platform account, created on first sight like admission does. */
export async function teamIdFor(runtime: Runtime, team: TeamRef): Promise<string> {
  return ensureTeam(runtime.db, team, runtime.config.DEFAULT_TEAM_CREDITS, new Date());
}

export async function setLimit(runtime: Runtime, teamId: string, change: { limit: number; period: string }, actor: string): Promise<TeamCredits> {
  const limit = wholeCredits(change.limit, 'The limit');
  if (!periods.includes(change.period as Period)) throw userError(ErrorCode.InvalidRequest, `The period must be one of: ${periods.join(', ')}.`);
  const now = new Date();
  await runtime.db.transaction(async (tx) => {
    await changeBudget(tx, teamId, { limitCredits: limit, period: change.period as Period }, now);
    await audit(tx, teamId, actor, 'credits.limit', { limit, period: change.period });
  });
  return teamCredits(runtime.db, teamId, now);
}

export async function grant(runtime: Runtime, teamId: string, amount: number, actor: string): Promise<TeamCredits> {
  if (wholeCredits(amount, 'The amount') === 0) throw userError(ErrorCode.InvalidRequest, 'Grant at least 1 credit.');
  const now = new Date();
  await runtime.db.transaction(async (tx) => {
    await grantCredits(tx, teamId, amount, `granted by ${actor}`, now);
    await audit(tx, teamId, actor, 'credits.grant', { amount });
  });
  return teamCredits(runtime.db, teamId, now);
}

/** A member's own per-period cap (null: back to the team's per-member cap). */
export async function setMemberCap(runtime: Runtime, teamId: string, member: MemberRef & { platform: Platform }, credits: number | null, actor: string): Promise<void> {
  if (credits !== null) wholeCredits(credits, 'The cap');
  const memberId = await ensureMember(runtime.db, teamId, member.platform, member);
  await runtime.db.transaction(async (tx) => {
    await tx.execute(sql`update members set cap = ${credits} where id = ${memberId}`);
    await audit(tx, teamId, actor, 'credits.user_cap', { member: `${member.platform}:${member.externalId}`, cap: credits });
  });
}

const defaultChoices: Record<string, readonly string[]> = { aspect: aspects, resolution: resolutions, duration: durations, backend: [...backendChoices, 'gpu', 'api'] };

/** Team defaults for model, resolution, aspect, duration and backend preference ("" clears one). */
export async function setDefaults(runtime: Runtime, teamId: string, prefs: Record<string, string>, actor: string): Promise<Record<string, string>> {
  const allowed = ['model', ...Object.keys(defaultChoices)];
  for (const [key, value] of Object.entries(prefs)) {
    if (!allowed.includes(key)) throw userError(ErrorCode.InvalidRequest, `Unknown default "${key}". You can set: ${allowed.join(', ')}.`);
    const choices = defaultChoices[key];
    if (value !== '' && choices && !choices.includes(value)) throw userError(ErrorCode.InvalidRequest, `The default ${key} must be one of: ${choices.join(', ')}.`);
  }
  return runtime.db.transaction(async (tx) => {
    const rows = await tx.execute<{ preferences: Record<string, string> }>(sql`select preferences from teams where id = ${teamId} for update`);
    const next = { ...(rows[0]?.preferences ?? {}) };
    for (const [key, value] of Object.entries(prefs)) {
      if (value === '') delete next[key];
      else next[key] = value;
    }
    await tx.execute(sql`update teams set preferences = ${JSON.stringify(next)}::jsonb where id = ${teamId}`);
    await audit(tx, teamId, actor, 'defaults.set', prefs);
    return next;
  });
}

/**
 * The team's defaults (model, resolution, aspect, duration, backend) as set with setDefaults, read without
 * creating anything: a platform account with no team yet has none. One indexed read, for suggestions.
 */
export async function teamPreferences(runtime: Runtime, team: TeamRef): Promise<Record<string, string>> {
  const rows = await runtime.db.execute<{ preferences: Record<string, string> | null }>(sql`
    select t.preferences from platform_accounts p join teams t on t.id = p.team_id
    where p.platform = ${team.platform} and p.external_id = ${team.externalId}`);
  return { ...(rows[0]?.preferences ?? {}) };
}

export async function blocklistAdd(runtime: Runtime, teamId: string, word: string, actor: string): Promise<string[]> {
  const w = word.trim().toLowerCase();
  if (!w || w.length > 100) throw userError(ErrorCode.InvalidRequest, 'Give one word or short phrase (up to 100 characters) to block.');
  await runtime.db.transaction(async (tx) => {
    await tx.execute(sql`insert into blocklist (team_id, word) values (${teamId}, ${w}) on conflict do nothing`);
    await audit(tx, teamId, actor, 'blocklist.add', { word: w });
  });
  return blocklistList(runtime, teamId);
}

export async function blocklistRemove(runtime: Runtime, teamId: string, word: string, actor: string): Promise<string[]> {
  const w = word.trim().toLowerCase();
  await runtime.db.transaction(async (tx) => {
    const gone = await tx.execute(sql`delete from blocklist where team_id = ${teamId} and word = ${w} returning word`);
    if (gone.length === 0) throw userError(ErrorCode.NotFound, `"${w}" is not on the blocklist.`);
    await audit(tx, teamId, actor, 'blocklist.remove', { word: w });
  });
  return blocklistList(runtime, teamId);
}

export async function blocklistList(runtime: Runtime, teamId: string): Promise<string[]> {
  const rows = await runtime.db.execute<{ word: string }>(sql`select word from blocklist where team_id = ${teamId} order by word`);
  return rows.map((r) => String(r.word));
}

export interface UsageReport {
  teamId: string;
  periodKey: string;
  period: Period;
  limit: number;
  available: number;
  /** Credits charged (captured) this period. */
  total: number;
  byMember: { memberId: string; name: string; credits: number; clips: number }[];
  byDay: { day: string; credits: number }[];
}

/** Where the credits went this period: per member and per day, from the append-only ledger. */
export async function usageReport(runtime: Runtime, teamId: string, now = new Date()): Promise<UsageReport> {
  // teamCredits rolls the budget into the current period first, so the report covers the right one.
  const credits = await teamCredits(runtime.db, teamId, now);
  const since = await runtime.db.execute<{ since: string | null }>(sql`
    select max(created_at) as since from transfers where team_id = ${teamId} and dedupe_key = ${`grant:${teamId}:${credits.periodKey}`}`);
  const from = since[0]?.since ? new Date(since[0].since).toISOString() : '1970-01-01T00:00:00Z';
  const byMember = await runtime.db.execute<{ member_id: string; name: string; credits: number; clips: number }>(sql`
    select m.id as member_id, coalesce(m.display_name, m.external_id) as name, sum(t.amount) as credits, count(*) as clips
    from transfers t join members m on m.id = t.member_id
    where t.team_id = ${teamId} and t.kind = 'capture' and t.created_at >= ${from}
    group by m.id, name order by credits desc`);
  const byDay = await runtime.db.execute<{ day: string; credits: number }>(sql`
    select to_char(date_trunc('day', t.created_at at time zone 'UTC'), 'YYYY-MM-DD') as day, sum(t.amount) as credits
    from transfers t where t.team_id = ${teamId} and t.kind = 'capture' and t.created_at >= ${from}
    group by day order by day`);
  const members = byMember.map((r) => ({ memberId: String(r.member_id), name: String(r.name), credits: Number(r.credits), clips: Number(r.clips) }));
  return {
    teamId, periodKey: credits.periodKey, period: credits.period, limit: credits.limit, available: credits.available,
    total: members.reduce((sum, m) => sum + m.credits, 0), byMember: members,
    byDay: byDay.map((r) => ({ day: String(r.day), credits: Number(r.credits) })),
  };
}

export interface MemberSummary {
  teamAvailable: number;
  teamLimit: number;
  period: Period;
  nextReset: Date | null;
  memberUsed: number;
  memberCap: number | null;
  active: { id: string; state: string; prompt: string; progress: number }[];
}

/** For /dream-credits: the member's and the team's balance, the next reset and the member's active jobs. */
export async function memberSummary(runtime: Runtime, team: TeamRef, member: MemberRef, now = new Date()): Promise<MemberSummary> {
  const teamId = await teamIdFor(runtime, team);
  const credits = await teamCredits(runtime.db, teamId, now);
  const rows = await runtime.db.execute<Record<string, unknown>>(sql`
    select m.id, m.cap, coalesce(u.used, 0) as used from members m
    left join member_usage u on u.member_id = m.id and u.period_key = ${credits.periodKey}
    where m.team_id = ${teamId} and m.platform = ${team.platform} and m.external_id = ${member.externalId}`);
  const me = rows[0];
  const active = me ? await runtime.db.execute<Record<string, unknown>>(sql`
    select id, state, request->>'prompt' as prompt, progress from generations
    where member_id = ${String(me.id)} and state in ('queued','dispatched','running','succeeded') order by seq`) : [];
  return {
    teamAvailable: credits.available, teamLimit: credits.limit, period: credits.period, nextReset: credits.nextReset,
    memberUsed: me ? Number(me.used) : 0,
    memberCap: me && me.cap !== null ? Number(me.cap) : credits.memberCap,
    active: active.map((g) => ({ id: String(g.id), state: String(g.state), prompt: String(g.prompt ?? ''), progress: Number(g.progress) })),
  };
}

const LINK_TTL_MS = 30 * 60 * 1000;

/** A one-time code an admin of this team gives to an admin on the other platform (valid 30 minutes). */
export async function createLinkCode(runtime: Runtime, teamId: string, actor: string): Promise<string> {
  const code = randomBytes(6).toString('base64url').toUpperCase().replace(/[^A-Z0-9]/g, '7').slice(0, 8);
  await runtime.db.transaction(async (tx) => {
    await tx.execute(sql`insert into link_codes (code, team_id, created_by, expires_at) values (${code}, ${teamId}, ${actor}, ${new Date(Date.now() + LINK_TTL_MS).toISOString()})`);
    await audit(tx, teamId, actor, 'link.code', {});
  });
  return code;
}

/**
 * Moves this platform account (a Slack workspace or a Discord guild) into the code's team, so both
 * share one budget from now on. Credits left on the account's old team stay there, written nowhere else.
 */
export async function redeemLinkCode(runtime: Runtime, code: string, account: TeamRef, actor: string): Promise<{ teamId: string }> {
  return runtime.db.transaction(async (tx) => {
    const rows = await tx.execute<{ team_id: string }>(sql`
      update link_codes set used_at = now(), used_by = ${actor}
      where code = ${code.trim().toUpperCase()} and used_at is null and expires_at > now() returning team_id`);
    const teamId = rows[0] ? String(rows[0].team_id) : null;
    if (!teamId) throw userError(ErrorCode.NotFound, 'That link code is unknown, used or expired. Ask for a new one with `link` on the other platform.');
    const current = await findTeam(tx, account);
    if (current === teamId) throw userError(ErrorCode.InvalidRequest, 'This workspace is already part of that team.');
    await tx.execute(sql`
      insert into platform_accounts (team_id, platform, external_id, name) values (${teamId}, ${account.platform}, ${account.externalId}, ${account.name ?? null})
      on conflict (platform, external_id) do update set team_id = excluded.team_id`);
    await audit(tx, teamId, actor, 'link.redeem', { platform: account.platform, externalId: account.externalId, previousTeam: current });
    return { teamId };
  });
}
