import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createCanvas, loadImage } from '@napi-rs/canvas';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import {
  blocklistAdd, blocklistList, blocklistRemove, createLinkCode, grant, memberSummary, redeemLinkCode, setDefaults, setLimit,
  setMemberCap, teamIdFor, usageReport,
} from '../src/admin.ts';
import { renderUsageChart } from '../src/charts/usage-chart.ts';
import { ErrorCode } from '../src/errors.ts';
import { getGeneration } from '../src/generations.ts';
import { remix } from '../src/remix.ts';
import type { Runtime } from '../src/runtime.ts';
import { createTestContext, waitFor, type TestContext } from './support/context.ts';

let ctx: TestContext;
let rt: Runtime;
const guild = { platform: 'discord' as const, externalId: 'guild-42', name: 'Film Club' };
let teamId: string;
let keys = 0;

beforeAll(async () => {
  ctx = await createTestContext();
  rt = await ctx.runtime();
  await rt.startWorkers();
  teamId = await teamIdFor(rt, guild);
});
afterAll(() => ctx.cleanup());

async function delivered(id: string) {
  return waitFor(async () => {
    const g = await getGeneration(rt.db, id);
    return g && ['delivered', 'failed'].includes(g.state) ? g : null;
  }, 60_000, `generation ${id}`);
}

function dream(user: string, request: Record<string, unknown>) {
  keys += 1;
  return rt.admit({ idempotencyKey: `admin-${keys}`, team: guild, member: { externalId: user, displayName: user.toUpperCase() }, request: { resolution: '540p', ...request } });
}

describe('admin operations', () => {
  it('limit and grant are ledger entries with an audit trail', async () => {
    const afterLimit = await setLimit(rt, teamId, { limit: 200, period: 'weekly' }, 'discord:admin');
    expect(afterLimit).toMatchObject({ limit: 200, period: 'weekly', available: 200 });
    const afterGrant = await grant(rt, teamId, 25, 'discord:admin');
    expect(afterGrant.available).toBe(225);
    await expect(setLimit(rt, teamId, { limit: -1, period: 'weekly' }, 'x')).rejects.toMatchObject({ code: ErrorCode.InvalidRequest });
    await expect(setLimit(rt, teamId, { limit: 10, period: 'hourly' }, 'x')).rejects.toMatchObject({ code: ErrorCode.InvalidRequest });
    const log = await rt.db.execute(sql`select action, actor from audit_log where team_id = ${teamId} order by id`);
    expect(log.map((r) => r.action)).toEqual(['credits.limit', 'credits.grant']);
  });

  it('a member cap set for one user is enforced at admission, others are not affected', async () => {
    await setMemberCap(rt, teamId, { platform: 'discord', externalId: 'cappy' }, 1, 'discord:admin');
    const first = await dream('cappy', { prompt: 'first clip of cappy' });
    await expect(dream('cappy', { prompt: 'second clip of cappy' })).rejects.toMatchObject({ code: ErrorCode.MemberCapReached });
    await expect(dream('free', { prompt: 'a clip by someone else' })).resolves.toMatchObject({ duplicate: false });
    await delivered(first.generationId);
  });

  it('team defaults apply to requests that do not say otherwise', async () => {
    await expect(setDefaults(rt, teamId, { aspect: '5:4' }, 'x')).rejects.toMatchObject({ code: ErrorCode.InvalidRequest });
    expect(await setDefaults(rt, teamId, { aspect: '9:16', duration: '9s' }, 'discord:admin')).toEqual({ aspect: '9:16', duration: '9s' });
    const a = await dream('dee', { prompt: 'tall by default' });
    const g = await getGeneration(rt.db, a.generationId);
    expect(g?.request).toMatchObject({ aspect: '9:16', duration: '9s' });
    const b = await dream('dee', { prompt: 'wide on request', aspect: '16:9', duration: '5s' });
    expect((await getGeneration(rt.db, b.generationId))?.request).toMatchObject({ aspect: '16:9', duration: '5s' });
    await setDefaults(rt, teamId, { aspect: '', duration: '' }, 'discord:admin');
    await Promise.all([delivered(a.generationId), delivered(b.generationId)]);
  });

  it('blocklist add, list, remove', async () => {
    expect(await blocklistAdd(rt, teamId, '  Gore ', 'discord:admin')).toEqual(['gore']);
    await expect(dream('eve', { prompt: 'so much GORE here' })).rejects.toMatchObject({ code: ErrorCode.BlockedWord });
    expect(await blocklistList(rt, teamId)).toEqual(['gore']);
    expect(await blocklistRemove(rt, teamId, 'gore', 'discord:admin')).toEqual([]);
    await expect(blocklistRemove(rt, teamId, 'gore', 'discord:admin')).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });
});

describe('remix operations', () => {
  it('re-roll, remix and extend are new generations linked to the parent, charged to whoever asked', async () => {
    const parent = await delivered((await dream('ana', { prompt: 'a red kite over dunes', camera: 'pan_left' })).generationId);
    const before = await memberSummary(rt, guild, { externalId: 'bob' });
    const reroll = await remix(rt, { idempotencyKey: 'reaction-1', action: 'reroll', parentId: parent.id, team: guild, member: { externalId: 'bob' } });
    const again = await remix(rt, { idempotencyKey: 'reaction-1', action: 'reroll', parentId: parent.id, team: guild, member: { externalId: 'bob' } });
    expect(again).toMatchObject({ duplicate: true, generationId: reroll.generationId });
    const edited = await remix(rt, { idempotencyKey: 'modal-1', action: 'remix', parentId: parent.id, team: guild, member: { externalId: 'bob' }, prompt: 'a blue kite over dunes', options: { camera: 'static' } });
    const extended = await remix(rt, { idempotencyKey: 'button-1', action: 'extend', parentId: parent.id, team: guild, member: { externalId: 'cy' } });
    const [r, e, x] = await Promise.all([delivered(reroll.generationId), delivered(edited.generationId), delivered(extended.generationId)]);
    expect(r).toMatchObject({ state: 'delivered', parentId: parent.id, request: expect.objectContaining({ prompt: 'a red kite over dunes', camera: 'pan_left' }) });
    expect(e).toMatchObject({ state: 'delivered', parentId: parent.id, request: expect.objectContaining({ prompt: 'a blue kite over dunes', camera: 'static' }) });
    expect(x).toMatchObject({ state: 'delivered', parentId: parent.id, operation: 'extend' });
    const bob = await rt.db.execute(sql`select id from members where external_id = 'bob'`);
    expect(r.memberId).toBe(String(bob[0]!.id));
    const after = await memberSummary(rt, guild, { externalId: 'bob' });
    expect(after.memberUsed - before.memberUsed).toBe(2);
    await expect(remix(rt, { idempotencyKey: 'u-1', action: 'upscale', parentId: parent.id, team: guild, member: { externalId: 'bob' } })).rejects.toMatchObject({ code: ErrorCode.UnsupportedOperation });
    await expect(remix(rt, { idempotencyKey: 'n-1', action: 'reroll', parentId: parent.id, team: { platform: 'discord', externalId: 'other-guild' }, member: { externalId: 'bob' } })).rejects.toMatchObject({ code: ErrorCode.NotFound });
  });
});

describe('usage and credits views', () => {
  it('the usage report adds up the captures, and the chart is a real PNG', async () => {
    const report = await usageReport(rt, teamId);
    expect(report.total).toBeGreaterThanOrEqual(7);
    expect(report.byMember.reduce((s, m) => s + m.credits, 0)).toBe(report.total);
    expect(report.byDay.reduce((s, d) => s + d.credits, 0)).toBe(report.total);
    expect(report.byMember.map((m) => m.name)).toContain('ANA');
    const png = await renderUsageChart(report);
    expect(png.subarray(0, 8).toString('hex')).toBe('89504e470d0a1a0a');
    expect([png.readUInt32BE(16), png.readUInt32BE(20)]).toEqual([1000, 680]);
    await writeFile(path.join(os.tmpdir(), 'dreambot-usage-chart.png'), png);
    // Not blank: a good share of pixels are drawn (bars, axes, labels), in both panels.
    const image = await loadImage(png);
    const canvas = createCanvas(image.width, image.height);
    canvas.getContext('2d').drawImage(image, 0, 0);
    const inked = (top: number) => {
      const { data } = canvas.getContext('2d').getImageData(0, top, 1000, 340);
      let n = 0;
      for (let i = 0; i < data.length; i += 4) if (data[i]! < 200 || data[i + 1]! < 200 || data[i + 2]! < 200) n++;
      return n;
    };
    expect(inked(0)).toBeGreaterThan(5000);
    expect(inked(340)).toBeGreaterThan(5000);
  });

  it('memberSummary shows balances, the cap and active jobs', async () => {
    const summary = await memberSummary(rt, guild, { externalId: 'cappy' });
    expect(summary).toMatchObject({ memberUsed: 1, memberCap: 1, period: 'weekly', teamLimit: 200 });
    expect(summary.nextReset).toBeInstanceOf(Date);
  });
});

describe('linking a Slack workspace into a Discord team', () => {
  it('one code, used once, then both platforms draw on one budget', async () => {
    const code = await createLinkCode(rt, teamId, 'discord:admin');
    const slack = { platform: 'slack' as const, externalId: 'T0123', name: 'Film Club Slack' };
    await teamIdFor(rt, slack);
    expect(await redeemLinkCode(rt, code, slack, 'slack:U1')).toEqual({ teamId });
    await expect(redeemLinkCode(rt, code, slack, 'slack:U1')).rejects.toMatchObject({ code: ErrorCode.NotFound });
    const before = (await memberSummary(rt, guild, { externalId: 'x' })).teamAvailable;
    const viaSlack = await rt.admit({ idempotencyKey: 'slack-evt-1', team: slack, member: { externalId: 'U9' }, request: { prompt: 'made from slack', resolution: '540p' } });
    expect(viaSlack.creditsRemaining).toBe(before - 1);
    await delivered(viaSlack.generationId);
  });
});

describe('reverse extend', () => {
  it('a clip that leads into the parent: it ends on the parent\'s first frame', async () => {
    const parent = await delivered((await dream('rev', { prompt: 'a door swings open onto a garden' })).generationId);
    const back = await remix(rt, { idempotencyKey: 'reverse-1', action: 'extend', reverse: true, parentId: parent.id, team: guild, member: { externalId: 'rev' } });
    const g = await delivered(back.generationId);
    expect(g).toMatchObject({ state: 'delivered', operation: 'extend', parentId: parent.id, request: expect.objectContaining({ reverse: true }) });
    await expect(dream('rev', { prompt: 'not an extend', reverse: true })).rejects.toMatchObject({ code: ErrorCode.InvalidRequest });
  });
});
