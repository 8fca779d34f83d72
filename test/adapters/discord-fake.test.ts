import { once } from 'node:events';
import { Client, DiscordAPIError, Events, GatewayIntentBits, MessageFlags, Partials, Routes, type ButtonInteraction, type ChatInputCommandInteraction, type Interaction } from 'discord.js';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { FakeDiscord, type FakeChannel, type FakeGuild, type FakeUser } from '../fakes/discord/index.ts';

/**
 * The fake Discord against a bare discord.js Client (no dreambot): the protocol facts in
 * platform-discord.md hold, so adapter tests that pass against it mean something.
 */
let fake: FakeDiscord;
let client: Client;
let guild: FakeGuild;
let channel: FakeChannel;
let ana: FakeUser;
let handler: (i: ChatInputCommandInteraction) => Promise<void> = async () => undefined;
let componentHandler: (i: ButtonInteraction) => Promise<void> = async () => undefined;

beforeAll(async () => {
  fake = await FakeDiscord.start({ heartbeatIntervalMs: 500 });
  ({ guild, channel } = fake.addGuild({ name: 'Protocol' }));
  ana = fake.addUser('ana');
  fake.addMember(guild, ana);
  client = new Client({
    intents: [GatewayIntentBits.Guilds, GatewayIntentBits.GuildMessageReactions],
    partials: [Partials.Message, Partials.Channel, Partials.Reaction],
    rest: { api: fake.apiUrl },
  });
  client.on(Events.InteractionCreate, (i: Interaction) => {
    if (i.isChatInputCommand()) void handler(i).catch(() => undefined);
    if (i.isButton()) void componentHandler(i).catch(() => undefined);
  });
  const ready = once(client, Events.ClientReady);
  await client.login(fake.token);
  await ready;
});
afterAll(async () => {
  await client?.destroy();
  await fake?.stop();
});

/** Runs `fn` on the next /test interaction and hands back what it returned or threw. */
function onNext<T>(fn: (i: ChatInputCommandInteraction) => Promise<T>): Promise<{ value?: T; error?: unknown }> {
  return new Promise((resolve) => {
    handler = async (i) => {
      handler = async () => undefined;
      try {
        resolve({ value: await fn(i) });
      } catch (error) {
        resolve({ error });
      }
    };
  });
}

const command = (extra: Partial<Parameters<FakeDiscord['sendCommand']>[0]> = {}) =>
  fake.sendCommand({ name: 'test', channel, user: ana, options: { text: 'hi' }, ...extra });

const api = (path: string, init: RequestInit = {}) => fetch(`${fake.apiUrl}/v10${path}`, init);

describe('gateway', () => {
  it('identifies with the intents asked for, gets READY with the application and the guild', () => {
    expect(client.application?.id).toBe(fake.applicationId);
    expect(client.user?.id).toBe(fake.bot.id);
    expect(client.guilds.cache.get(guild.id)?.channels.cache.has(channel.id)).toBe(true);
    const session = [...fake.gateway.sessions.values()][0]!;
    expect(session.intents).toBe((1 << 0) | (1 << 10));
  });

  it('acknowledges heartbeats', async () => {
    await fake.waitFor(() => fake.gateway.counters.heartbeats >= 2, 5000);
    expect(fake.gateway.counters.heartbeatAcks).toBe(fake.gateway.counters.heartbeats);
  });

  it('resumes after a drop, replaying what was missed, then RESUMED', async () => {
    const before = { ...fake.gateway.counters };
    fake.disconnect(4000);
    const seen = once(client, Events.InteractionCreate);
    command();
    await seen;
    expect(fake.gateway.counters.resumes).toBe(before.resumes + 1);
    expect(fake.gateway.counters.replayed).toBeGreaterThan(before.replayed);
    expect(fake.gateway.counters.identifies).toBe(before.identifies);
  });

  it('answers op 7 with a resume, and an unknown session with op 9 and a fresh IDENTIFY', async () => {
    const before = { ...fake.gateway.counters };
    fake.gateway.requestReconnect();
    await fake.waitFor(() => fake.gateway.counters.resumed === before.resumed + 1, 10_000, 'the resume');
    fake.disconnect(4000);
    fake.gateway.sessions.clear();
    await fake.waitFor(() => fake.gateway.counters.identifies === before.identifies + 1, 15_000, 'a new identify');
    expect(fake.gateway.counters.invalidSessions).toBe(before.invalidSessions + 1);
    await fake.connected();
  }, 30_000);
});

describe('interactions', () => {
  it('defers, edits with a multipart upload, serves the attachment bytes', async () => {
    const done = onNext(async (i) => {
      const response = await i.deferReply({ withResponse: true });
      await i.editReply({ content: 'here', files: [{ attachment: Buffer.from('hello bytes'), name: 'a.txt' }] });
      return response.interaction.responseMessageId;
    });
    const sent = command();
    const { value: messageId, error } = await done;
    expect(error).toBeUndefined();
    expect(messageId).toBe(sent.original()!.id);
    const message = sent.original()!;
    expect(message).toMatchObject({ content: 'here', flags: 0 });
    expect(message.attachments[0]!.data.toString()).toBe('hello bytes');
    expect(await (await fetch(message.attachments[0]!.url)).text()).toBe('hello bytes');
    expect(sent.record.callback).toMatchObject({ type: 5 });
  });

  it('refuses a second callback (40060) and one after 3 s (10062)', async () => {
    const twice = onNext(async (i) => {
      await i.deferReply();
      return client.rest.post(Routes.interactionCallback(i.id, i.token), { body: { type: 4, data: { content: 'again' } }, auth: false });
    });
    command();
    expect(((await twice).error as DiscordAPIError).code).toBe(40060);

    fake.callbackDeadlineMs = 150;
    try {
      const late = onNext(async (i) => {
        await new Promise((r) => setTimeout(r, 400));
        return i.deferReply();
      });
      command();
      expect(((await late).error as DiscordAPIError).code).toBe(10062);
    } finally {
      fake.callbackDeadlineMs = 3000;
    }
  });

  it('ends a token after its 15 minutes: 401 with code 50027', async () => {
    const result = onNext(async (i) => {
      await i.deferReply();
      fake.expireToken(i.id);
      return i.editReply('too late');
    });
    const sent = command();
    const error = (await result).error as DiscordAPIError;
    expect(error.status).toBe(401);
    expect(error.code).toBe(50027);
    // And by age alone: an interaction created 15 min ago.
    const old = onNext(async (i) => {
      await i.deferReply();
      return i.editReply('too late');
    });
    command({ ageMs: 15 * 60_000 + 1000 });
    expect(((await old).error as DiscordAPIError).code).toBe(50027);
    expect(sent.record.expired).toBe(true);
  });

  it('refuses a file over the interaction\'s attachment_size_limit with 413 / 40005', async () => {
    const result = onNext(async (i) => {
      expect(i.attachmentSizeLimit).toBe(1000);
      await i.deferReply();
      return i.editReply({ files: [{ attachment: Buffer.alloc(2000), name: 'big.bin' }] });
    });
    command({ attachmentSizeLimit: 1000 });
    const error = (await result).error as DiscordAPIError;
    expect([error.status, error.code]).toEqual([413, 40005]);
  });

  it('checks component and modal limits like Discord (50035)', async () => {
    const rows = onNext(async (i) => {
      const buttons = Array.from({ length: 6 }, (_, n) => ({ type: 2, style: 1, label: `b${n}`, custom_id: `b${n}` }));
      return i.reply({ content: 'x', components: [{ type: 1, components: buttons }] });
    });
    command();
    expect(((await rows).error as DiscordAPIError).code).toBe(50035);
    const modal = onNext(async (i) => client.rest.post(Routes.interactionCallback(i.id, i.token), {
      auth: false, body: { type: 9, data: { custom_id: 'm', title: 'x'.repeat(46), components: [{ type: 18, label: 'L', component: { type: 4, custom_id: 'p', style: 1 } }] } },
    }));
    command();
    expect(((await modal).error as DiscordAPIError).code).toBe(50035);
  });

  it('updates the message a button is on (type 7), and edits it after a deferred update (type 6)', async () => {
    const posted = (await client.rest.post(Routes.channelMessages(channel.id), {
      body: { content: 'pick', components: [{ type: 1, components: [{ type: 2, style: 1, label: 'Go', custom_id: 'go' }] }] },
    })) as { id: string };
    const message = fake.message(posted.id)!;
    const updated = new Promise<void>((resolve) => {
      componentHandler = async (i) => {
        await i.update({ content: 'updated', components: [] });
        resolve();
      };
    });
    const click = fake.clickButton({ message, customId: 'go', user: ana });
    await updated;
    expect(click.record.callback?.type).toBe(7);
    expect(message).toMatchObject({ content: 'updated', components: [] });

    await client.rest.patch(Routes.channelMessage(channel.id, posted.id), { body: { components: [{ type: 1, components: [{ type: 2, style: 2, label: 'Again', custom_id: 'again' }] }] } });
    const edited = new Promise<void>((resolve) => {
      componentHandler = async (i) => {
        await i.deferUpdate();
        await i.editReply({ content: 'edited after a deferred update' });
        resolve();
      };
    });
    const second = fake.sendInteraction({ type: 3, data: { custom_id: 'again', component_type: 2 }, channel, user: ana, message });
    await edited;
    expect(second.record.callback?.type).toBe(6);
    expect(message.content).toBe('edited after a deferred update');
  });

  it('sends ephemeral replies as ephemeral, and follow-ups as their own messages', async () => {
    const result = onNext(async (i) => {
      await i.reply({ content: 'only you', flags: MessageFlags.Ephemeral });
      return i.followUp({ content: 'and this', flags: MessageFlags.Ephemeral });
    });
    const sent = command();
    await result;
    expect(sent.original()!.flags & 64).toBe(64);
    expect(sent.followUps().map((m) => m.content)).toEqual(['and this']);
  });
});

describe('REST', () => {
  it('requires the bot token', async () => {
    const res = await api(`/channels/${channel.id}`);
    expect(res.status).toBe(401);
    expect(await res.json()).toMatchObject({ code: 0, message: '401: Unauthorized' });
  });

  it('returns one message per nonce with enforce_nonce, one thread per message (160004)', async () => {
    const body = { content: 'once', nonce: 'n-1', enforce_nonce: true };
    const a = (await client.rest.post(Routes.channelMessages(channel.id), { body })) as { id: string };
    const b = (await client.rest.post(Routes.channelMessages(channel.id), { body })) as { id: string };
    expect(b.id).toBe(a.id);
    const thread = (await client.rest.post(Routes.threads(channel.id, a.id), { body: { name: 'talk', auto_archive_duration: 1440 } })) as { id: string; type: number };
    expect(thread).toMatchObject({ id: a.id, type: 11 });
    const again = await client.rest.post(Routes.threads(channel.id, a.id), { body: { name: 'again' } }).catch((e: unknown) => e);
    expect((again as DiscordAPIError).code).toBe(160004);
  });

  it('answers 429 with Discord\'s headers and body; discord.js waits and retries', async () => {
    fake.rateLimit({ route: 'GET /channels/:channel', times: 1, retryAfter: 0.2 });
    const res = await api(`/channels/${channel.id}`, { headers: { Authorization: `Bot ${fake.token}` } });
    expect(res.status).toBe(429);
    expect(res.headers.get('retry-after')).toBe('1');
    expect(res.headers.get('x-ratelimit-remaining')).toBe('0');
    expect(res.headers.get('x-ratelimit-scope')).toBe('user');
    expect(res.headers.get('x-ratelimit-bucket')).toMatch(/^[0-9a-f]{16}$/);
    expect(await res.json()).toEqual({ message: 'You are being rate limited.', retry_after: 0.2, global: false });
    fake.rateLimit({ route: 'GET /channels/:channel', times: 1, retryAfter: 0.2 });
    const started = Date.now();
    await client.rest.get(Routes.channel(channel.id));
    expect(Date.now() - started).toBeGreaterThanOrEqual(180);
    expect(fake.requests((r) => r.route === 'GET /channels/:channel').slice(-2).map((r) => r.status)).toEqual([429, 200]);
  });

  it('stores application commands, global and per guild, and validates them', async () => {
    const body = { name: 'ping', description: 'Ping', type: 1, options: [{ type: 3, name: 'text', description: 'Text', required: true }] };
    const created = (await client.rest.post(Routes.applicationCommands(fake.applicationId), { body })) as { id: string };
    expect(((await client.rest.get(Routes.applicationCommands(fake.applicationId))) as { id: string }[]).map((c) => c.id)).toContain(created.id);
    const put = (await client.rest.put(Routes.applicationGuildCommands(fake.applicationId, guild.id), { body: [body] })) as { name: string }[];
    expect(put.map((c) => c.name)).toEqual(['ping']);
    const patched = (await client.rest.patch(Routes.applicationCommand(fake.applicationId, created.id), { body: { description: 'Pong' } })) as { description: string };
    expect(patched.description).toBe('Pong');
    await client.rest.delete(Routes.applicationCommand(fake.applicationId, created.id));
    const bad = await client.rest.post(Routes.applicationCommands(fake.applicationId), { body: { name: 'Bad Name', description: 'x' } }).catch((e: unknown) => e);
    expect((bad as DiscordAPIError).code).toBe(50035);
  });
});
