import os from 'node:os';
import { sql } from 'drizzle-orm';
import { changeBudget, grantCredits } from '../ledger/budget.ts';
import { periods, type Period } from '../ledger/periods.ts';
import type { Runtime } from '../runtime.ts';
import { ensureTeam, requireTeam, teamCredits, type TeamCredits } from '../teams.ts';
import { refuse } from './output.ts';

export interface CreditsOptions {
  action: string;
  team?: string;
  limit?: string;
  period?: string;
  amount?: string;
  json?: boolean;
}

function positiveInt(value: string | undefined, flag: string): number {
  if (value === undefined) refuse(`${flag} is required.`);
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 0) refuse(`${flag} must be a whole number of credits, got "${value}".`);
  return n;
}

function render(team: string, c: TeamCredits): string {
  const reset = c.nextReset ? `resets ${c.nextReset.toISOString().slice(0, 10)}` : 'never resets';
  return `${team}: ${c.available} available, ${c.held} held, ${c.consumed} spent; limit ${c.limit} ${c.period} (${reset})${c.memberCap === null ? '' : `; per-member cap ${c.memberCap}`}`;
}

/** `dreambot credits show|set|grant --team NAME`: the CLI team is platform "cli" with external id NAME. */
export async function credits(runtime: Runtime, options: CreditsOptions, out = process.stdout): Promise<void> {
  if (!options.team) refuse('--team NAME is required.');
  const ref = { platform: 'cli' as const, externalId: options.team, name: options.team };
  const now = new Date();
  const actor = `cli:${os.userInfo().username}`;
  let teamId: string;
  switch (options.action) {
    case 'show':
      teamId = await requireTeam(runtime.db, ref);
      break;
    case 'set': {
      const limit = positiveInt(options.limit, '--limit');
      const period = (options.period ?? 'monthly') as Period;
      if (!periods.includes(period)) refuse(`--period must be one of ${periods.join(', ')}.`);
      teamId = await ensureTeam(runtime.db, ref, runtime.config.DEFAULT_TEAM_CREDITS, now);
      await runtime.db.transaction(async (tx) => {
        await changeBudget(tx, teamId, { limitCredits: limit, period }, now);
        await tx.execute(sql`insert into audit_log (team_id, actor, action, details) values (${teamId}, ${actor}, 'credits.set', ${JSON.stringify({ limit, period })}::jsonb)`);
      });
      break;
    }
    case 'grant': {
      const amount = positiveInt(options.amount, '--amount');
      if (amount === 0) refuse('--amount must be at least 1.');
      teamId = await ensureTeam(runtime.db, ref, runtime.config.DEFAULT_TEAM_CREDITS, now);
      await runtime.db.transaction(async (tx) => {
        await grantCredits(tx, teamId, amount, `granted by ${actor}`, now);
        await tx.execute(sql`insert into audit_log (team_id, actor, action, details) values (${teamId}, ${actor}, 'credits.grant', ${JSON.stringify({ amount })}::jsonb)`);
      });
      break;
    }
    default:
      refuse(`Unknown credits action "${options.action}". Use: credits show|set|grant --team NAME.`);
  }
  const summary = await teamCredits(runtime.db, teamId, now);
  out.write(options.json ? `${JSON.stringify({ team: options.team, ...summary })}\n` : `${render(options.team, summary)}\n`);
}
