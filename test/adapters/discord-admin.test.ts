import { REST } from 'discord.js';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { adminCommandBody, commandBodies, syncCommands } from '../../adapters/discord/commands.ts';
import { commandsRegister } from '../../src/cli/commands-register.ts';
import { loadConfig } from '../../src/config.ts';
import { createDiscordHarness, type DiscordHarness } from '../fakes/discord/harness.ts';
import type { FakeChannel, FakeMessage, FakeUser, OptionValue, SentInteraction } from '../fakes/discord/index.ts';

/**
 * /dream-admin (Manage Server, re-checked on every call), /dream-credits, and command registration
 * that only sends what differs.
 */
let h: DiscordHarness;

beforeAll(async () => {
  h = await createDiscordHarness();
  // The team exists once someone dreamt.
  const sent = h.dream(h.ana, { prompt: 'a hummingbird hovers at a red flower, macro, slow motion', resolution: '540p' });
  const status = await h.fake.waitFor(() => sent.original()?.content.includes('Queued') && sent.original(), 15_000);
  await h.settled((await h.generationFor(status.id)).id);
}, 90_000);
afterAll(async () => {
  await h?.close();
});

function admin(user: FakeUser, subcommand: string, options: Record<string, OptionValue | undefined> = {}, extra: { group?: string; channel?: FakeChannel; permissions?: string } = {}): SentInteraction {
  return h.fake.sendCommand({
    name: 'dream-admin', channel: extra.channel ?? h.channel, user, subcommand, options,
    ...(extra.group ? { group: extra.group } : {}), ...(extra.permissions ? { permissions: extra.permissions } : {}),
  });
}

/** Admin answers are ephemeral: a deferred ephemeral reply edited, or a direct ephemeral reply. */
async function answer(sent: SentInteraction): Promise<FakeMessage> {
  const message = await h.fake.waitFor(() => {
    const m = sent.original();
    return m && m.content && !(m.flags & 128) ? m : undefined;
  }, 20_000, 'the admin answer');
  expect(message.flags & 64).toBe(64);
  return message;
}

async function budget() {
  const rows = await h.runtime.db.execute(sql`
    select b.limit_credits, b.period, (select balance from accounts a where a.team_id = b.team_id and a.kind = 'available') as available
    from budgets b join platform_accounts p on p.team_id = b.team_id where p.platform = 'discord' and p.external_id = ${h.guild.id}`);
  return { limit: Number(rows[0]!.limit_credits), period: String(rows[0]!.period), available: Number(rows[0]!.available) };
}

describe('/dream-admin', () => {
  it('is refused to a member without Manage Server, and changes nothing', async () => {
    const before = await budget();
    const sent = admin(h.bo, 'grant', { credits: 500 });
    expect((await sent.callback()).type).toBe(4);
    expect((await answer(sent)).content).toMatch(/Manage Server/);
    // The permission is read from this interaction, not from the command's default: a member whose
    // server overrode the default still cannot use it.
    const overridden = admin(h.bo, 'limit', { credits: 5, period: 'daily' });
    expect((await answer(overridden)).content).toMatch(/Manage Server/);
    expect(await budget()).toEqual(before);
  });

  it('sets the limit and grants credits', async () => {
    const limited = await answer(admin(h.boss, 'limit', { credits: 2000, period: 'weekly' }));
    expect(limited.content).toMatch(/Limit set to 2,000 credits, weekly/);
    const before = await budget();
    expect(before).toMatchObject({ limit: 2000, period: 'weekly' });
    const granted = await answer(admin(h.boss, 'grant', { credits: 250 }));
    expect(granted.content).toMatch(/Granted 250 credits/);
    expect((await budget()).available).toBe(before.available + 250);
  });

  it('caps a member and lifts the cap', async () => {
    expect((await answer(admin(h.boss, 'user-cap', { user: { user: h.bo }, credits: 3 }))).content).toMatch(/may spend 3 credits/);
    const rows = await h.runtime.db.execute(sql`select cap from members where platform = 'discord' and external_id = ${h.bo.id}`);
    expect(Number(rows[0]!.cap)).toBe(3);
    expect((await answer(admin(h.boss, 'user-cap', { user: { user: h.bo } }))).content).toMatch(/no personal cap/);
  });

  it('sets team defaults', async () => {
    const set = await answer(admin(h.boss, 'defaults', { resolution: '540p', duration: '5s' }));
    expect(set.content).toMatch(/resolution 540p/);
    const rows = await h.runtime.db.execute(sql`select t.preferences from teams t join platform_accounts p on p.team_id = t.id where p.external_id = ${h.guild.id}`);
    expect(rows[0]!.preferences).toMatchObject({ resolution: '540p', duration: '5s' });
    expect((await answer(admin(h.boss, 'defaults', { resolution: 'clear' }))).content).not.toMatch(/resolution/);
  });

  it('manages the blocklist, and a blocked word is refused privately without a charge', async () => {
    expect((await answer(admin(h.boss, 'add', { word: 'Zombie' }, { group: 'blocklist' }))).content).toMatch(/`zombie`/);
    expect((await answer(admin(h.boss, 'list', {}, { group: 'blocklist' }))).content).toMatch(/Blocked in prompts: `zombie`/);
    const before = await budget();
    const sent = h.dream(h.ana, { prompt: 'a zombie shuffles through an empty mall at night' });
    const refusal = await h.fake.waitFor(() => sent.followUps()[0], 15_000, 'the refusal');
    expect(refusal.flags & 64).toBe(64);
    expect(refusal.content).toMatch(/blocked "zombie"/);
    expect(sent.original()?.deleted).toBe(true);
    expect(await budget()).toEqual(before);
    expect((await answer(admin(h.boss, 'remove', { word: 'zombie' }, { group: 'blocklist' }))).content).toMatch(/empty/);
  });

  it('shows usage as a PNG chart', async () => {
    const sent = admin(h.boss, 'usage');
    const message = await answer(sent);
    expect(message.content).toMatch(/Usage .*credits? used/);
    const png = message.attachments[0]!;
    expect(png.filename).toMatch(/^usage-.*\.png$/);
    expect(png.data.subarray(0, 8).equals(Buffer.from('89504e470d0a1a0a', 'hex'))).toBe(true);
    expect(png.data.subarray(12, 16).toString('ascii')).toBe('IHDR');
    expect(png.data.readUInt32BE(16)).toBeGreaterThan(100);
    expect(png.data.readUInt32BE(20)).toBeGreaterThan(100);
  }, 30_000);

  it('links another server into the same team with a one-time code', async () => {
    const code = /`([A-Z0-9]{6,})`/.exec((await answer(admin(h.boss, 'link'))).content)?.[1];
    expect(code).toBeTruthy();
    const other = h.fake.addGuild({ name: 'Second Lab' });
    h.fake.addMember(other.guild, h.boss, { admin: true });
    await new Promise((r) => setTimeout(r, 200));
    const redeemed = await answer(admin(h.boss, 'link', { code }, { channel: other.channel }));
    expect(redeemed.content).toMatch(/Linked/);
    const rows = await h.runtime.db.execute(sql`select count(distinct team_id) as teams from platform_accounts where external_id in (${h.guild.id}, ${other.guild.id})`);
    expect(Number(rows[0]!.teams)).toBe(1);
  });
});

describe('/dream-credits', () => {
  it('answers privately with the team balance and the member’s use', async () => {
    // The limit above switched the period to weekly, which starts member usage afresh.
    const dreamt = h.dream(h.ana, { prompt: 'a koi pond in autumn, leaves drifting, top-down view' });
    const status = await h.fake.waitFor(() => dreamt.original()?.content.includes('Queued') && dreamt.original(), 15_000);
    await h.settled((await h.generationFor(status.id)).id);
    const sent = h.fake.sendCommand({ name: 'dream-credits', channel: h.channel, user: h.ana });
    const message = await answer(sent);
    expect(message.content).toMatch(/\*\*Team:\*\* [\d,]+ credits left of 2,000 this week/);
    expect(message.content).toMatch(/\*\*You:\*\* 1 credit used this week/);
  });
});

describe('dreambot commands register', () => {
  it('creates what is missing, then changes only what differs', async () => {
    const { guild } = h.fake.addGuild({ name: 'Fresh Server' });
    const config = loadConfig({ ...h.ctx.env, ...h.fake.env() });
    const out = { text: '', write(chunk: string) { this.text += chunk; return true; } };
    const first = await commandsRegister(config, { guild: guild.id }, out as unknown as NodeJS.WritableStream);
    expect(first.created.sort()).toEqual(['dream', 'dream-admin', 'dream-credits']);
    expect(out.text).toMatch(/created \/dream/);

    const posts = () => h.fake.requests((r) => r.path.includes(`/guilds/${guild.id}/commands`) && r.method !== 'GET').length;
    const writes = posts();
    const second = await commandsRegister(config, { guild: guild.id }, out as unknown as NodeJS.WritableStream);
    expect(second).toMatchObject({ created: [], updated: [], deleted: [] });
    expect(posts()).toBe(writes);

    // Someone edited one command by hand and added a stray one: one PATCH, one DELETE.
    const rest = new REST({ api: h.fake.apiUrl }).setToken(h.fake.token);
    const stored = h.fake.state.commands.get(guild.id)!;
    stored.find((c) => c.name === 'dream-admin')!.description = 'old text';
    await rest.post(`/applications/${h.fake.applicationId}/guilds/${guild.id}/commands`, { body: { name: 'stray', description: 'left over', type: 1 } });
    const third = await syncCommands(rest, h.fake.applicationId, commandBodies({ allowDms: false }), guild.id);
    expect(third).toMatchObject({ created: [], updated: ['dream-admin'], deleted: ['stray'] });
    expect(h.fake.state.commands.get(guild.id)!.find((c) => c.name === 'dream-admin')!.description).toBe(adminCommandBody().description);
    expect(h.fake.state.commands.get(guild.id)!.find((c) => c.name === 'dream-admin')!.default_member_permissions).toBe('32');
  });
});
