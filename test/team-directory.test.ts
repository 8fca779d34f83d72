import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { blocklistAdd, createLinkCode, redeemLinkCode, setDefaults, setLimit, teamIdFor } from '../src/admin.ts';
import { periodKey } from '../src/ledger/periods.ts';
import { ErrorCode } from '../src/errors.ts';
import { getGeneration } from '../src/generations.ts';
import type { Runtime } from '../src/runtime.ts';
import type { TeamRef } from '../src/teams.ts';
import { createTestContext, type TestContext } from './support/context.ts';

// Admission keeps team settings in process memory (src/team-directory.ts). These tests change them
// through a second process and check that the first never acts on its old copy.
let ctx: TestContext;
let bot: Runtime;
let admin: Runtime;
let keys = 0;

beforeAll(async () => {
  ctx = await createTestContext();
  bot = await ctx.runtime();
  admin = await ctx.runtime();
});
afterAll(() => ctx.cleanup());

function dream(team: TeamRef, prompt: string, request: Record<string, unknown> = {}) {
  keys += 1;
  return bot.admit({ idempotencyKey: `dir-${keys}`, team, member: { externalId: 'u1' }, request: { prompt, ...request } });
}

async function available(teamId: string): Promise<number> {
  const rows = await bot.db.execute<{ balance: number }>(sql`select balance from accounts where team_id = ${teamId} and kind = 'available'`);
  return Number(rows[0]!.balance);
}

describe('team settings kept in memory', () => {
  it('a word blocked through another process is refused on the very next request, and nothing is charged', async () => {
    const team = { platform: 'discord' as const, externalId: 'guild-block' };
    await dream(team, 'a lighthouse in a storm'); // the bot now holds this team's settings
    const teamId = await teamIdFor(admin, team);
    const before = await available(teamId);
    await blocklistAdd(admin, teamId, 'storm', 'admin');
    await expect(dream(team, 'a lighthouse in a storm')).rejects.toMatchObject({ code: ErrorCode.BlockedWord });
    expect(await available(teamId)).toBe(before);
    await expect(dream(team, 'a lighthouse at dawn')).resolves.toMatchObject({ duplicate: false });
  });

  it('a redelivery of a request admitted before its word was blocked gets that clip back, not a refusal', async () => {
    const team = { platform: 'discord' as const, externalId: 'guild-redelivery' };
    const request = { idempotencyKey: 'dir-redelivered', team, member: { externalId: 'u1' }, request: { prompt: 'a comet over the harbour' } };
    const first = await bot.admit(request);
    await blocklistAdd(admin, await teamIdFor(admin, team), 'comet', 'admin');
    await expect(bot.admit(request)).resolves.toMatchObject({ generationId: first.generationId, duplicate: true });
  });

  it('team defaults changed through another process apply to the next request', async () => {
    const team = { platform: 'discord' as const, externalId: 'guild-defaults' };
    const first = await dream(team, 'a koi pond in the rain');
    expect((await getGeneration(bot.db, first.generationId))!.request).toMatchObject({ aspect: '16:9' });
    await setDefaults(admin, await teamIdFor(admin, team), { aspect: '9:16' }, 'admin');
    const second = await dream(team, 'a koi pond in the rain');
    expect((await getGeneration(bot.db, second.generationId))!.request).toMatchObject({ aspect: '9:16' });
  });

  it('a budget period changed through another process applies to the next hold', async () => {
    const team = { platform: 'discord' as const, externalId: 'guild-period' };
    await dream(team, 'a windmill turning at dusk'); // the bot now holds this team's period: monthly
    const teamId = await teamIdFor(admin, team);
    await setLimit(admin, teamId, { limit: 40, period: 'daily' }, 'admin');
    const before = await available(teamId);
    const next = await dream(team, 'a windmill turning at dusk');
    const rows = await bot.db.execute<{ period_key: string }>(sql`select period_key from holds where generation_id = ${next.generationId}`);
    expect(rows[0]!.period_key).toBe(periodKey('daily', new Date()));
    expect(next.creditsRemaining).toBe(before - next.credits);
  });

  it('a workspace linked into another team through another process is billed to that team at once', async () => {
    const slack = { platform: 'slack' as const, externalId: 'T-LINKED' };
    const discord = { platform: 'discord' as const, externalId: 'guild-owner' };
    await dream(slack, 'paper boats on a canal');
    const oldTeam = await teamIdFor(admin, slack);
    const newTeam = await teamIdFor(admin, discord);
    const code = await createLinkCode(admin, newTeam, 'owner');
    await redeemLinkCode(admin, code, slack, 'slack-admin');
    const [oldBefore, newBefore] = [await available(oldTeam), await available(newTeam)];
    const linked = await dream(slack, 'paper boats on a canal');
    expect((await getGeneration(bot.db, linked.generationId))!.teamId).toBe(newTeam);
    expect([await available(oldTeam), await available(newTeam)]).toEqual([oldBefore, newBefore - linked.credits]);
  });
});
