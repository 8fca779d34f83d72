import { setTimeout as sleep } from 'node:timers/promises';
import { REST } from 'discord.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { suggest } from '../../adapters/discord/autocomplete.ts';
import { commandBodies, dreamCommandBody, syncCommands } from '../../adapters/discord/commands.ts';
import { teamPreferences } from '../../src/admin.ts';
import type { Backend, BackendCapabilities } from '../../src/backends/types.ts';
import type { BackendName } from '../../src/config.ts';
import type { Operation } from '../../src/ledger/pricing.ts';
import { createDiscordHarness, type DiscordHarness } from '../fakes/discord/harness.ts';
import type { FakeChannel, FakeUser, OptionValue, SentInteraction } from '../fakes/discord/index.ts';

/**
 * /dream's `model` and `backend` suggest what this deployment and team may use: the real discord.js Client
 * against the fake Discord, a Runtime whose backends are the (scripted) preview plus two stand-ins that
 * only declare capabilities: a Luma-named one that generates with ray-2 and ray-flash-2, and a
 * ComfyUI-named one that can only upscale, so it is configured but never suggested.
 */
let h: DiscordHarness;

function standIn(name: BackendName, operations: Operation[], models: string[]): Backend {
  const capabilities: BackendCapabilities = {
    operations, models, aspects: ['16:9'], resolutions: ['720p'], durations: ['5s'], cameraMoves: [], startImage: false, endImage: false, loop: false,
  };
  const refuse = (): never => {
    throw new Error(`${name} stand-in: not for rendering`);
  };
  return {
    name, limits: { slots: 1 }, capabilities: () => capabilities, estimate: () => null,
    submit: async () => refuse(), resume: async () => refuse(), progress: async () => refuse(), cancel: async () => undefined, fetchResult: async () => refuse(),
  };
}

beforeAll(async () => {
  h = await createDiscordHarness({
    backends: (preview) => new Map<BackendName, Backend>([
      ['preview', preview],
      ['luma', standIn('luma', ['generate', 'extend'], ['ray-2', 'ray-flash-2'])],
      ['comfyui', standIn('comfyui', ['upscale'], ['upscaler-4x'])],
    ]),
  });
}, 60_000);
afterAll(async () => {
  await h?.close();
});

function complete(focused: 'model' | 'backend', typed: string, options: Record<string, OptionValue | undefined> = {}, extra: { user?: FakeUser; channel?: FakeChannel } = {}): SentInteraction {
  return h.fake.sendAutocomplete({
    name: 'dream', channel: extra.channel ?? h.channel, user: extra.user ?? h.ana, options: { prompt: 'a fox in the snow', ...options }, focused, typed,
  });
}

async function values(sent: SentInteraction): Promise<string[]> {
  const { choices } = await h.fake.autocompleteChoices(sent);
  return choices.map((c) => String(c.value));
}

async function setTeamDefaults(options: Record<string, string>): Promise<void> {
  const sent = h.fake.sendCommand({ name: 'dream-admin', channel: h.channel, user: h.boss, subcommand: 'defaults', options });
  const answer = await h.fake.waitFor(() => (sent.original()?.content ? sent.original() : undefined), 15_000, 'the defaults answer');
  expect(answer.content).toMatch(/^(Team defaults|No team defaults)/);
}

describe('commands register', () => {
  it('declares model and backend as autocomplete, and backend without fixed choices', () => {
    const options = dreamCommandBody({ allowDms: false }).options! as unknown as Record<string, unknown>[];
    const byName = new Map(options.map((o) => [o.name, o]));
    expect(byName.get('model')).toMatchObject({ type: 3, autocomplete: true });
    expect(byName.get('backend')).toMatchObject({ type: 3, autocomplete: true });
    expect(byName.get('backend')).not.toHaveProperty('choices');
    expect(byName.get('model')).not.toHaveProperty('choices');
    // The other string options keep their fixed choices.
    expect(byName.get('aspect')).toHaveProperty('choices');
    expect(byName.get('aspect')).not.toHaveProperty('autocomplete');
  });

  it('sends autocomplete: true for both to Discord, which accepts it, and a re-run sends nothing', async () => {
    const sent = h.fake.requests((r) => r.route === 'POST /applications/:app/guilds/:guild/commands' && r.body?.name === 'dream');
    expect(sent).toHaveLength(1);
    expect(sent[0]!.status).toBe(201);
    const options = sent[0]!.body!.options as Record<string, unknown>[];
    for (const name of ['model', 'backend']) {
      const option = options.find((o) => o.name === name)!;
      expect(option.autocomplete).toBe(true);
      expect(option).not.toHaveProperty('choices');
    }
    // What Discord stored has it too, and diffing against it finds nothing to change.
    const stored = h.fake.state.commands.get(h.guild.id)!.find((c) => c.name === 'dream')!;
    expect((stored.options as Record<string, unknown>[]).filter((o) => o.autocomplete === true).map((o) => o.name)).toEqual(['model', 'backend']);
    const rest = new REST({ api: h.fake.apiUrl }).setToken(h.fake.token);
    const again = await syncCommands(rest, h.fake.applicationId, commandBodies({ allowDms: false }), h.guild.id);
    expect(again.unchanged).toContain('dream');
    expect(again.updated).toEqual([]);
  });

  it('updates a /dream registered before autocomplete (backend with fixed choices)', async () => {
    const { guild } = h.fake.addGuild({ name: 'Old Registration' });
    const rest = new REST({ api: h.fake.apiUrl }).setToken(h.fake.token);
    const old = dreamCommandBody({ allowDms: false });
    old.options = old.options!.map((o) => (o.name === 'backend' ? { ...o, autocomplete: false, choices: [{ name: 'auto', value: 'auto' }, { name: 'preview', value: 'preview' }] } : o.name === 'model' ? { ...o, autocomplete: false } : o)) as typeof old.options;
    await syncCommands(rest, h.fake.applicationId, [old], guild.id);
    const result = await syncCommands(rest, h.fake.applicationId, [dreamCommandBody({ allowDms: false })], guild.id);
    expect(result.updated).toEqual(['dream']);
    const stored = h.fake.state.commands.get(guild.id)!.find((c) => c.name === 'dream')!;
    expect((stored.options as Record<string, unknown>[]).find((o) => o.name === 'backend')).toMatchObject({ autocomplete: true });
  });
});

describe('/dream autocomplete', () => {
  it('suggests the backends that can generate here, plus auto, as callback type 8 within 3 s', async () => {
    const sent = complete('backend', '');
    const callback = await sent.callback();
    expect(callback.type).toBe(8);
    expect(callback.latencyMs).toBeLessThan(3000);
    const { choices } = await h.fake.autocompleteChoices(sent);
    expect(choices.length).toBeLessThanOrEqual(25);
    // comfyui is configured but can only upscale: not offered for a new clip.
    expect(choices).toEqual([{ name: 'auto', value: 'auto' }, { name: 'preview', value: 'preview' }, { name: 'luma', value: 'luma' }]);
    // Nothing but the choices: no message, no defer.
    expect(sent.original()).toBeUndefined();
  });

  it('filters backends by what was typed, case-insensitively, prefixes first', async () => {
    expect(await values(complete('backend', 'PRE'))).toEqual(['preview']);
    expect(await values(complete('backend', 'view'))).toEqual(['preview']);
    expect(await values(complete('backend', 'u'))).toEqual(['auto', 'luma']);
    expect(await values(complete('backend', 'a'))).toEqual(['auto', 'luma']);
    expect(await values(complete('backend', 'L'))).toEqual(['luma']);
    expect(await values(complete('backend', 'comfy'))).toEqual([]);
    expect(await values(complete('backend', 'nothing like it'))).toEqual([]);
  });

  it('suggests the models of the backend chosen in the same interaction, else of all that generate', async () => {
    expect(await values(complete('model', '', { backend: 'luma' }))).toEqual(['ray-2', 'ray-flash-2']);
    expect(await values(complete('model', 'FLASH', { backend: 'luma' }))).toEqual(['ray-flash-2']);
    expect(await values(complete('model', '', { backend: 'preview' }))).toEqual(['preview']);
    expect(await values(complete('model', 'ray', { backend: 'preview' }))).toEqual([]);
    // No backend, "auto", or one not configured here: every generating backend's models, each named with its backend.
    for (const backend of [undefined, 'auto', 'no-such-backend']) {
      const { choices } = await h.fake.autocompleteChoices(complete('model', '', { backend }));
      expect(choices).toEqual([
        { name: 'preview · preview', value: 'preview' }, { name: 'ray-2 · luma', value: 'ray-2' }, { name: 'ray-flash-2 · luma', value: 'ray-flash-2' },
      ]);
    }
    expect(await values(complete('model', '2'))).toEqual(['ray-2', 'ray-flash-2']);
    expect(await values(complete('model', 'upscaler'))).toEqual([]);
  });

  it("puts the team's default backend and model first", async () => {
    await setTeamDefaults({ model: 'ray-flash-2', backend: 'luma' });
    expect(await teamPreferences(h.runtime, { platform: 'discord', externalId: h.guild.id })).toMatchObject({ model: 'ray-flash-2', backend: 'luma' });
    const backends = (await h.fake.autocompleteChoices(complete('backend', ''))).choices;
    expect(backends[0]).toEqual({ name: 'luma (team default)', value: 'luma' });
    expect(backends.map((c) => c.value)).toEqual(['luma', 'auto', 'preview']);
    // Still filtered: a default that does not match what was typed is left out.
    expect(await values(complete('backend', 'pre'))).toEqual(['preview']);
    const models = (await h.fake.autocompleteChoices(complete('model', '', { backend: 'luma' }))).choices;
    expect(models).toEqual([{ name: 'ray-flash-2 (team default)', value: 'ray-flash-2' }, { name: 'ray-2', value: 'ray-2' }]);
    expect((await values(complete('model', '')))[0]).toBe('ray-flash-2');
    // A default the chosen backend does not offer is not suggested there.
    expect(await values(complete('model', '', { backend: 'preview' }))).toEqual(['preview']);
    // "api" as the team's backend means luma.
    await setTeamDefaults({ backend: 'api', model: 'clear' });
    expect((await values(complete('backend', '')))[0]).toBe('luma');
    expect(await values(complete('model', '', { backend: 'luma' }))).toEqual(['ray-2', 'ray-flash-2']);
    await setTeamDefaults({ backend: 'clear' });
    expect(await values(complete('backend', ''))).toEqual(['auto', 'preview', 'luma']);
  });

  it('answers at once while the after-ack work queue is full', async () => {
    // 64 pieces of slow post-ack work: with 16 at a time the queue stays busy for several seconds.
    for (let i = 0; i < 64; i++) h.adapter.later.run(() => sleep(1500));
    expect(h.adapter.later.pending).toBeGreaterThan(16);
    const started = Date.now();
    const sent = complete('backend', 'lu');
    const { choices, latencyMs } = await h.fake.autocompleteChoices(sent);
    expect(choices.map((c) => c.value)).toEqual(['luma']);
    expect(latencyMs).toBeLessThan(1000);
    expect(Date.now() - started).toBeLessThan(1500);
    expect(h.adapter.later.pending).toBeGreaterThan(0);
    await h.adapter.later.idle();
  }, 30_000);

  it('suggests nothing for a team it does not serve (a DM with DMs off) or an option it does not complete', async () => {
    const dm = h.fake.dmChannel(h.ana);
    const inDm = h.fake.sendAutocomplete({ name: 'dream', channel: dm, user: h.ana, options: {}, focused: 'backend', typed: '' });
    expect(await h.fake.autocompleteChoices(inDm)).toMatchObject({ choices: [] });
    expect(await values(complete('backend', '', {}, { user: h.bo }))).toEqual(['auto', 'preview', 'luma']);
    const prompt = h.fake.sendAutocomplete({ name: 'dream', channel: h.channel, user: h.ana, focused: 'prompt', typed: 'a fox' });
    expect(await h.fake.autocompleteChoices(prompt)).toMatchObject({ choices: [] });
  });

  it('still refuses a typed backend that is not one, now that the option has no fixed choices', async () => {
    const sent = h.dream(h.ana, { prompt: 'a fox trots through fresh snow at dawn', backend: 'nonsense' });
    expect((await sent.callback()).type).toBe(4);
    const reply = await h.fake.waitFor(() => sent.original(), 10_000, 'the private refusal');
    expect(reply.flags & 64).toBe(64);
    expect(reply.content).toMatch(/backend/i);
  });
});

describe('suggest', () => {
  it('never offers more than 25, and keeps names within 100 characters', () => {
    const models = Array.from({ length: 40 }, (_, i) => `model-${String(i).padStart(2, '0')}`);
    const long = `m-${'x'.repeat(98)}`;
    const choices = suggest({ focused: 'model', typed: '', backends: [{ name: 'luma', models: [long, ...models] }, { name: 'preview', models: ['preview'] }], preferences: { model: long } });
    expect(choices).toHaveLength(25);
    expect(choices[0]!.value).toBe(long);
    for (const c of choices) expect(c.name.length).toBeLessThanOrEqual(100);
    expect(choices[0]!.name).toMatch(/… · luma \(team default\)$/);
  });
});
