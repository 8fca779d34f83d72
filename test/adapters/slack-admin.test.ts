import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { memberSummary } from '../../src/admin.ts';
import { FakeWorkspace } from '../fakes/slack/index.ts';
import { startSlackHarness, type SlackHarness } from '../fakes/slack/harness.ts';
import { waitFor } from '../support/context.ts';

let h: SlackHarness;
const team = { platform: 'slack' as const, externalId: 'T0FAKE0001' };

beforeAll(async () => {
  // No generation workers: nothing here renders. Cy is an admin by configuration only.
  h = await startSlackHarness({ workers: false, env: { SLACK_ADMIN_USER_IDS: 'U0CY, U0NOBODY' } });
});
afterAll(() => h?.close());

const ws = () => h.fake.ws;
const text = (blocks: unknown[]) => FakeWorkspace.textOf({ text: '', blocks });

async function lastNote(user: string, after: number): Promise<string> {
  const note = await waitFor(async () => ws().ephemeralsFor(user)[after], 10_000, `an ephemeral for ${user}`);
  return note.text;
}

async function admin(user: string, args: string): Promise<string> {
  const n = ws().ephemeralsFor(user).length;
  const res = await h.driver.command('/dream-admin', args, user, 'C0GENERAL');
  expect(res.status).toBe(200);
  return lastNote(user, n);
}

describe('slack: /dream-admin and /dream-credits', () => {
  it('refuses a member who is not an admin, and changes nothing', async () => {
    const before = await memberSummary(h.rt, team, { externalId: 'U0BO' });
    expect(await admin('U0BO', 'limit 5 daily')).toMatch(/Only workspace admins and owners.*Nothing changed/);
    expect(await admin('U0BO', 'grant 1000')).toMatch(/Only workspace admins/);
    const after = await memberSummary(h.rt, team, { externalId: 'U0BO' });
    expect(after).toMatchObject({ teamLimit: before.teamLimit, teamAvailable: before.teamAvailable, period: before.period });
  });

  it('lets a workspace admin set the limit and grant credits, and a configured admin too', async () => {
    expect(await admin('U0ANA', 'limit 500 weekly')).toMatch(/Limit set to 500 credits weekly/);
    expect(await admin('U0CY', 'grant 25')).toMatch(/Granted 25 credits\. The team has 525 credits available/);
    expect(await memberSummary(h.rt, team, { externalId: 'U0ANA' })).toMatchObject({ teamLimit: 500, period: 'weekly', teamAvailable: 525 });
  });

  it('checks the right on every call: an admin demoted in Slack is refused at once', async () => {
    ws().user('U0ANA').isAdmin = false;
    try {
      expect(await admin('U0ANA', 'grant 10')).toMatch(/Only workspace admins/);
    } finally {
      ws().user('U0ANA').isAdmin = true;
    }
    expect((await memberSummary(h.rt, team, { externalId: 'U0ANA' })).teamAvailable).toBe(525);
  });

  it('blocklist, caps, defaults, usage and help answer in words; a blocked word then refuses a dream', async () => {
    expect(await admin('U0ANA', 'blocklist add zombie')).toMatch(/Blocked in prompts: `zombie`/);
    expect(await admin('U0ANA', 'user-cap <@U0BO|bo> 3')).toMatch(/<@U0BO> may now spend up to 3 credits/);
    expect(await admin('U0ANA', 'defaults aspect=9:16 duration=9s')).toMatch(/aspect=9:16, duration=9s/);
    expect(await admin('U0ANA', 'usage')).toMatch(/Usage 20\d\d-W\d\d\*: 0 credits of 500 credits used/);
    expect(await admin('U0ANA', 'link')).toMatch(/Link code: `[A-Z0-9]{8}` \(valid 30 minutes, once\)/);
    expect(await admin('U0ANA', 'link NOPE1234')).toMatch(/unknown, used or expired/);
    expect(await admin('U0ANA', 'frobnicate')).toMatch(/I don't know `frobnicate`[\s\S]*\/dream-admin limit/);
    const n = ws().ephemeralsFor('U0BO').length;
    await h.driver.command('/dream', 'a zombie walks through the mall', 'U0BO', 'C0GENERAL');
    expect(await lastNote('U0BO', n)).toMatch(/blocked "zombie".*nothing was charged/i);
    expect(await h.generations()).toHaveLength(0);
  });

  it('/dream-credits tells the member the balance and their cap', async () => {
    const n = ws().ephemeralsFor('U0BO').length;
    await h.driver.command('/dream-credits', '', 'U0BO', 'C0GENERAL');
    expect(await lastNote('U0BO', n)).toMatch(/Your team has \*525 credits\* left of 500 credits this week.*You used 0 credits of your 3 credits cap/);
  });
});

describe('slack: App Home', () => {
  it('publishes the admin view (limit, usage chart, buttons) for an admin, and only the member view for a member', async () => {
    await h.driver.homeOpened('U0ANA');
    await h.driver.homeOpened('U0BO');
    const adminHome = await waitFor(async () => ws().homes.get('U0ANA'), 15_000, 'the admin Home');
    const memberHome = await waitFor(async () => ws().homes.get('U0BO'), 15_000, 'the member Home');

    const adminBlocks = adminHome.view.blocks as { type: string; slack_file?: { id: string }; elements?: { action_id?: string }[] }[];
    expect(text(adminBlocks)).toMatch(/Your team\* has \*525 credits\* left of 500 credits this week/);
    expect(text(adminBlocks)).toMatch(/\*Limit\*\n500 credits weekly/);
    const chart = adminBlocks.find((b) => b.type === 'image');
    expect(chart?.slack_file?.id).toBeDefined();
    const png = ws().files.get(chart!.slack_file!.id)!;
    expect(png.data!.subarray(1, 4).toString()).toBe('PNG');
    expect(png.shares).toEqual([]);
    expect(adminBlocks.find((b) => b.type === 'actions')!.elements!.map((e) => e.action_id)).toEqual(['dream_home_limit', 'dream_home_grant', 'dream_home_refresh']);

    const memberBlocks = memberHome.view.blocks as { type: string }[];
    expect(text(memberBlocks)).toMatch(/Your team\* has \*525 credits\*/);
    expect(text(memberBlocks)).toMatch(/your cap is 3 credits/);
    expect(text(memberBlocks)).not.toMatch(/Admin|Limit|Set limit/);
    expect(memberBlocks.some((b) => b.type === 'image' || b.type === 'actions')).toBe(false);
  });

  it('the Set limit form works for an admin and is refused, on the form, for anyone else', async () => {
    await h.driver.clickHomeButton('U0ANA', 'dream_home_limit');
    const view = await waitFor(async () => [...ws().views.values()].find((v) => v.view.callback_id === 'dream_limit_modal'), 10_000, 'the limit form');
    const refused = await h.driver.submitView('U0BO', view.id, { limit: '1', period: 'daily' });
    expect(refused.json).toMatchObject({ response_action: 'errors', errors: { limit: expect.stringMatching(/Only workspace admins/) } });
    const ok = await h.driver.submitView('U0ANA', view.id, { limit: '300', period: 'daily' });
    expect(ok.status).toBe(200);
    expect(await memberSummary(h.rt, team, { externalId: 'U0ANA' })).toMatchObject({ teamLimit: 300, period: 'daily' });
    await waitFor(async () => /300 credits daily/.test(text(ws().homes.get('U0ANA')!.view.blocks as unknown[])), 10_000, 'the Home to refresh');
  });
});
