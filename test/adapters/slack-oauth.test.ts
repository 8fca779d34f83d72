import { readFile } from 'node:fs/promises';
import path from 'node:path';
import { webApi } from '@slack/bolt';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { HttpServer } from '../../src/http/server.ts';
import { BOT_SCOPES } from '../../adapters/slack/installations.ts';
import { slackAdapterFactory } from '../../adapters/slack/index.ts';
import { memberSummary } from '../../src/admin.ts';
import { ConfigError, loadConfig } from '../../src/config.ts';
import { createLogger } from '../../src/log.ts';
import type { Runtime } from '../../src/runtime.ts';
import { SlackInstallationStore } from '../../src/slack-installations.ts';
import { ScriptedBackend } from '../fakes/scripted-backend.ts';
import { FakeWorkspace, type FakeMessage } from '../fakes/slack/index.ts';
import { startSlackHarness, type SlackHarness, clipInThread } from '../fakes/slack/harness.ts';
import { waitFor } from '../support/context.ts';

/**
 * Multi-workspace OAuth mode, end to end: the real Bolt App with its InstallProvider on our HTTP server,
 * installs done the way a browser does them, the installation store in a real Postgres, the workers on
 * the preview backend, and a fake Slack with three workspaces (one of them in an Enterprise Grid org).
 */
let h: SlackHarness;
const logLines: string[] = [];

let alpha: FakeWorkspace;
let beta: FakeWorkspace;
let gamma: FakeWorkspace;
const ORG = 'E0ORG00001';

beforeAll(async () => {
  // Everything the app logs, debug included, so the test can say no token ever reached a log line.
  const log = createLogger({ level: 'debug', destination: { write: (line: string) => void logLines.push(line) } });
  h = await startSlackHarness({ oauth: true, log, backends: (defaults) => new Map([['preview', new ScriptedBackend(defaults.get('preview')!, 4)]]) });
  alpha = h.fake.ws;
  beta = h.fake.addWorkspace({ teamId: 'T0BETA0002', teamDomain: 'betas' });
  beta.addUser({ id: 'U1BEA', name: 'bea', isAdmin: true });
  beta.addChannel({ id: 'C1BETA', name: 'beta-general' });
  gamma = h.fake.addWorkspace({ teamId: 'T0GAMMA003', teamDomain: 'gammas', enterpriseId: ORG });
  gamma.addUser({ id: 'U2GIA', name: 'gia' });
  gamma.addChannel({ id: 'C2GAMMA', name: 'gamma-general' });
});
afterAll(() => h?.close());

const text = (m: { text: string; blocks?: unknown[] }) => FakeWorkspace.textOf(m);
const rows = () => h.rt.database.sql<Record<string, unknown>[]>`select * from slack_installations order by install_key`;
const row = async (key: string) => (await rows()).find((r) => r.install_key === key);

/** What a browser does: open our install page, follow it to Slack, approve there, come back with the code and the state cookie. */
async function install(ws: FakeWorkspace, user: string, options: { orgWide?: boolean; state?: (real: string) => string; cookie?: (real: string) => string } = {}) {
  const start = await fetch(`${h.url}/slack/install`, { redirect: 'manual' });
  expect(start.status).toBe(302);
  const authorize = start.headers.get('location')!;
  const cookie = start.headers.getSetCookie().map((c) => c.split(';')[0]!).join('; ');
  expect(cookie).toMatch(/^slack-app-oauth-state=\S+$/);
  const approval = h.fake.oauth.approve(authorize, { workspace: ws, user, orgWide: !!options.orgWide });
  const state = options.state ? options.state(approval.state!) : approval.state!;
  const back = await fetch(`${h.url}/slack/oauth_redirect?${new URLSearchParams({ code: approval.code, state })}`, {
    redirect: 'manual', headers: { cookie: options.cookie ? options.cookie(cookie) : cookie },
  });
  return { authorize: new URL(authorize), approval, back, html: await back.text() };
}

function jobMessage(ws: FakeWorkspace, channel: string, prompt: string): Promise<FakeMessage> {
  return waitFor(async () => ws.history(channel).find((m) => m.user === ws.botUserId && text(m).includes(prompt)), 15_000, `the job message for "${prompt}"`);
}

const clipIn = (ws: FakeWorkspace, channel: string, thread: string) => clipInThread(ws, channel, thread, 30_000);

const generationFor = (prompt: string) => waitFor(async () => (await h.generations()).find((g) => g.request.prompt === prompt), 15_000, `a generation for "${prompt}"`);

/** The team (platform account) a generation was admitted to. */
async function billedTo(generationId: string): Promise<string> {
  const [r] = await h.rt.database.sql<{ external_id: string }[]>`
    select pa.external_id from generations g join platform_accounts pa on pa.team_id = g.team_id and pa.platform = 'slack' where g.id = ${generationId}`;
  return r!.external_id;
}

/** /dream → job message → clip in its thread, delivered; returns what it took. */
async function dreamIn(ws: FakeWorkspace, user: string, channel: string, prompt: string) {
  const res = await h.driverFor(ws).command('/dream', `${prompt} --res 540p`, user, channel);
  expect(res.status).toBe(200);
  const job = await jobMessage(ws, channel, prompt);
  const clip = await clipIn(ws, channel, job.ts);
  const g = await generationFor(prompt);
  expect((await h.settled(g.id)).state).toBe('delivered');
  return { g, job, ...clip };
}

describe('slack OAuth: installing', () => {
  it('asks Slack for the manifest\'s bot scopes', async () => {
    const manifest = await readFile(path.resolve(import.meta.dirname, '../../slack/manifest.yml'), 'utf8');
    const bot = /\noauth_config:[\s\S]*?\n {2}scopes:\s*\n {4}bot:\s*\n((?: {6}(?:#.*|- \S+)\n)+)/.exec(manifest)![1]!;
    const scopes = [...bot.matchAll(/- (\S+)/g)].map((m) => m[1]);
    expect([...BOT_SCOPES].sort()).toEqual(scopes.sort());
  });

  it('two workspaces install through /slack/install → Slack → /slack/oauth_redirect; tokens are sealed in Postgres', async () => {
    const a = await install(alpha, 'U0ANA');
    expect(a.authorize.origin + a.authorize.pathname).toBe('https://slack.com/oauth/v2/authorize');
    expect(a.authorize.searchParams.get('client_id')).toBe(h.fake.oauth.clientId);
    expect(a.authorize.searchParams.get('scope')!.split(',')).toEqual([...BOT_SCOPES]);
    expect(a.back.status).toBe(200);
    expect(a.html).toContain('Thank you!');
    // The state cookie is spent on the way back.
    expect(a.back.headers.getSetCookie().join(';')).toMatch(/slack-app-oauth-state=deleted/);
    const b = await install(beta, 'U1BEA');
    expect(b.back.status).toBe(200);

    // A fresh token per workspace, each accepted by its own workspace only.
    expect(alpha.botToken).toMatch(/^xoxb-T0FAKE0001-/);
    expect(beta.botToken).toMatch(/^xoxb-T0BETA0002-/);
    expect(alpha.botToken).not.toBe(beta.botToken);
    expect(h.fake.ws.callsTo('oauth.v2.access').filter((c) => c.ok)).toHaveLength(1);
    expect(beta.callsTo('oauth.v2.access')[0]!.args).toMatchObject({ client_id: h.fake.oauth.clientId, code: b.approval.code });
    expect(beta.callsTo('auth.test').map((c) => c.token)).toEqual([beta.botToken]);

    const stored = await rows();
    expect(stored.map((r) => r.install_key)).toEqual(['T:T0BETA0002', 'T:T0FAKE0001']);
    const dump = JSON.stringify(stored);
    for (const token of [alpha.botToken, beta.botToken]) expect(dump).not.toContain(token);
    const alphaRow = stored.find((r) => r.install_key === 'T:T0FAKE0001')!;
    expect(alphaRow).toMatchObject({
      team_id: 'T0FAKE0001', enterprise_id: null, is_enterprise_install: false, installer_user_id: 'U0ANA', bot_user_id: alpha.botUserId,
      bot_id: alpha.botId, app_id: alpha.appId, bot_scopes: [...BOT_SCOPES], uninstalled_at: null,
    });
    expect(alphaRow.bot_token).toMatch(/^v1\.[\w-]+\.[\w-]+\.[\w-]+$/);
    // Only SLACK_CLIENT_SECRET opens them, and a sealed token is bound to its own row.
    const store = new SlackInstallationStore(h.rt.db, h.rt.config.SLACK_CLIENT_SECRET!);
    expect((await store.findInstallation({ teamId: 'T0BETA0002' }))?.bot?.token).toBe(beta.botToken);
    await expect(new SlackInstallationStore(h.rt.db, 'another-secret').findInstallation({ teamId: 'T0BETA0002' })).rejects.toThrow();
    await h.rt.database.sql`update slack_installations set bot_token = ${alphaRow.bot_token as string} where install_key = 'T:T0BETA0002'`;
    await expect(store.findInstallation({ teamId: 'T0BETA0002' })).rejects.toThrow();
    await h.rt.database.sql`update slack_installations set bot_token = ${stored.find((r) => r.install_key === 'T:T0BETA0002')!.bot_token as string} where install_key = 'T:T0BETA0002'`;
  });

  it('refuses a redirect whose state is not the one this browser was given, or not ours', async () => {
    const before = JSON.stringify(await rows());
    const tampered = await install(beta, 'U1BEA', { state: (s) => `${s.slice(0, -2)}xx` });
    const noCookie = await install(beta, 'U1BEA', { cookie: () => '' });
    // A state and cookie that agree but were never signed with SLACK_STATE_SECRET.
    const forged = await install(beta, 'U1BEA', { state: () => 'forged.state', cookie: () => 'slack-app-oauth-state=forged.state' });
    for (const r of [tampered, noCookie, forged]) {
      expect(r.back.status).toBe(400);
      expect(r.html).toMatch(/slack_oauth_invalid_state/);
      // The code was never exchanged.
      expect(h.fake.oauth.grants.get(r.approval.code)!.used).toBe(false);
    }
    expect(JSON.stringify(await rows())).toBe(before);
  });

  it('an org-wide (Enterprise Grid) install is the org\'s: one installation, keyed by enterprise_id', async () => {
    const g = await install(gamma, 'U2GIA', { orgWide: true });
    expect(g.back.status).toBe(200);
    expect(gamma.botToken).toMatch(new RegExp(`^xoxb-${ORG}-`));
    expect(await row(`E:${ORG}`)).toMatchObject({ enterprise_id: ORG, team_id: null, is_enterprise_install: true, installer_user_id: 'U2GIA' });
    expect(JSON.stringify(await rows())).not.toContain(gamma.botToken);
  });
});

describe('slack OAuth: each team with its own token', () => {
  it('/dream from each workspace is admitted to that workspace\'s team and delivered with that workspace\'s token', async () => {
    const [a, b] = await Promise.all([
      dreamIn(alpha, 'U0BO', 'C0GENERAL', 'a red kite over dunes'),
      dreamIn(beta, 'U1BEA', 'C1BETA', 'a blue whale in the clouds'),
    ]);
    expect(await billedTo(a.g.id)).toBe('T0FAKE0001');
    expect(await billedTo(b.g.id)).toBe('T0BETA0002');
    expect(a.g.replyTo).toMatchObject({ platform: 'slack', channelId: 'C0GENERAL', workspaceId: 'T0FAKE0001' });
    expect(b.g.replyTo).toMatchObject({ platform: 'slack', channelId: 'C1BETA', workspaceId: 'T0BETA0002' });
    expect((await memberSummary(h.rt, { platform: 'slack', externalId: 'T0FAKE0001' }, { externalId: 'U0BO' })).memberUsed).toBe(1);
    expect((await memberSummary(h.rt, { platform: 'slack', externalId: 'T0BETA0002' }, { externalId: 'U1BEA' })).memberUsed).toBe(1);

    // Each clip went up, and its card was posted, with its own workspace's token; no call ever crossed over.
    for (const [ws, clip] of [[alpha, a], [beta, b]] as const) {
      const upload = ws.callsTo('files.completeUploadExternal').find((c) => c.ok && c.args.thread_ts === clip.job.ts)!;
      const card = ws.callsTo('chat.postMessage').find((c) => c.ok && c.result?.ts === clip.card.ts)!;
      expect(upload.token).toBe(ws.botToken);
      expect(card.token).toBe(ws.botToken);
      expect(ws.files.get(clip.file.files![0]!)).toMatchObject({ mimetype: 'video/mp4', completed: true });
      expect(new Set(ws.calls.filter((c) => c.token).map((c) => c.token))).toEqual(new Set([ws.botToken]));
    }
  });

  it('an org-wide install bills the org (enterprise_id), and its token delivers in the org\'s workspace', async () => {
    const { g, card } = await dreamIn(gamma, 'U2GIA', 'C2GAMMA', 'a paper lantern drifting up');
    expect(await billedTo(g.id)).toBe(ORG);
    expect(g.replyTo).toMatchObject({ workspaceId: 'T0GAMMA003', enterpriseId: ORG, enterpriseInstall: true });
    expect((await memberSummary(h.rt, { platform: 'slack', externalId: ORG }, { externalId: 'U2GIA' })).memberUsed).toBe(1);
    expect((await h.rt.database.sql`select 1 from platform_accounts where external_id = 'T0GAMMA003'`).length).toBe(0);
    expect(gamma.callsTo('chat.postMessage').find((c) => c.result?.ts === card.ts)!.token).toBe(gamma.botToken);
  });
});

describe('slack OAuth: uninstalling', () => {
  it('app_uninstalled removes the installation; a clip still rendering for that workspace fails cleanly and its credits come back', async () => {
    const before = await memberSummary(h.rt, { platform: 'slack', externalId: 'T0BETA0002' }, { externalId: 'U1BEA' });
    const prompt = 'a slow tide under the moon #slow=3000';
    await h.driverFor(beta).command('/dream', `${prompt} --res 540p`, 'U1BEA', 'C1BETA');
    await jobMessage(beta, 'C1BETA', prompt);
    const g = await generationFor(prompt);
    expect((await memberSummary(h.rt, { platform: 'slack', externalId: 'T0BETA0002' }, { externalId: 'U1BEA' })).teamAvailable).toBe(before.teamAvailable - 1);

    const uninstalledAt = Date.now();
    h.fake.oauth.uninstall(beta);
    expect((await h.driverFor(beta).appUninstalled()).status).toBe(200);
    await waitFor(async () => (await row('T:T0BETA0002'))?.uninstalled_at, 10_000, 'the installation to be marked uninstalled');
    expect(await row('T:T0BETA0002')).toMatchObject({ bot_token: '', bot_refresh_token: null });
    expect(await row('T:T0FAKE0001')).toMatchObject({ uninstalled_at: null });

    const ended = await h.settled(g.id);
    expect(ended).toMatchObject({ state: 'failed', chargedCredits: 0 });
    expect(ended.errorCode).toBe('BACKEND_FAILED');
    const released = logLines.map((l) => JSON.parse(l) as { msg: string; generationId?: string; err?: { message?: string } }).find((l) => l.generationId === g.id && /releasing its credits/.test(l.msg));
    expect(released?.err?.message).toMatch(/not installed in that Slack workspace/);
    expect((await memberSummary(h.rt, { platform: 'slack', externalId: 'T0BETA0002' }, { externalId: 'U1BEA' })).teamAvailable).toBe(before.teamAvailable);
    // The deliverer knew: it did not even try to upload there.
    expect(beta.calls.filter((c) => c.at >= uninstalledAt && c.method.startsWith('files.'))).toEqual([]);

    // A request from there now is not authorized: Bolt acks it and nothing is admitted.
    const count = (await h.generations()).length;
    expect((await h.driverFor(beta).command('/dream', 'anyone home?', 'U1BEA', 'C1BETA')).status).toBe(200);
    await new Promise((r) => setTimeout(r, 500));
    expect((await h.generations()).length).toBe(count);
    expect(logLines.some((l) => l.includes('request from a team without an installation; ignored') && l.includes('T:T0BETA0002'))).toBe(true);

    // The other workspaces carry on.
    await dreamIn(alpha, 'U0CY', 'C0GENERAL', 'a green comet after the uninstall');
  });

  it('installing again brings the workspace back with a new token', async () => {
    const old = h.fake.oauth.issued.filter((t) => t.teamId === 'T0BETA0002').map((t) => t.token);
    expect((await install(beta, 'U1BEA')).back.status).toBe(200);
    expect(old).not.toContain(beta.botToken);
    expect(await row('T:T0BETA0002')).toMatchObject({ uninstalled_at: null, is_enterprise_install: false });
    await dreamIn(beta, 'U1BEA', 'C1BETA', 'a returning swallow');
  });

  it('tokens_revoked for the bot removes an org-wide installation', async () => {
    expect((await h.driverFor(gamma).tokensRevoked({ bot: [gamma.botUserId] })).status).toBe(200);
    await waitFor(async () => (await row(`E:${ORG}`))?.uninstalled_at, 10_000, 'the org installation to be marked uninstalled');
    expect(await row(`E:${ORG}`)).toMatchObject({ bot_token: '' });
  });

  it('no bot token ever reached a log line', () => {
    expect(logLines.length).toBeGreaterThan(50);
    const all = logLines.join('\n');
    expect(h.fake.oauth.issued.length).toBe(4);
    for (const { token } of h.fake.oauth.issued) expect(all).not.toContain(token);
  });
});

describe('slack OAuth: configuration', () => {
  const boot = (env: Record<string, string>) => () => slackAdapterFactory(
    { config: loadConfig({ SLACK_SIGNING_SECRET: 's3cret', ...env }), log: createLogger({ level: 'silent' }) } as unknown as Runtime,
    {} as HttpServer,
  );

  it('refuses a partial OAuth configuration at boot, naming what is missing', () => {
    expect(boot({ SLACK_CLIENT_ID: '1.2', SLACK_CLIENT_SECRET: 'x' })).toThrow(ConfigError);
    expect(boot({ SLACK_CLIENT_ID: '1.2', SLACK_CLIENT_SECRET: 'x' })).toThrow(/^SLACK_STATE_SECRET is required for Slack multi-workspace OAuth mode/);
    expect(boot({ SLACK_CLIENT_ID: '1.2', SLACK_STATE_SECRET: 'y' })).toThrow(/^SLACK_CLIENT_SECRET is required/);
    expect(boot({ SLACK_CLIENT_SECRET: 'x', SLACK_STATE_SECRET: 'y' })).toThrow(/^SLACK_CLIENT_ID is required/);
    expect(boot({ SLACK_STATE_SECRET: 'y' })).toThrow(/^SLACK_CLIENT_ID and SLACK_CLIENT_SECRET are required/);
    expect(boot({})()).toBeNull();
  });

  it('refuses OAuth mode without a signing secret, or over Socket Mode', () => {
    const all = { SLACK_CLIENT_ID: '1.2', SLACK_CLIENT_SECRET: 'x', SLACK_STATE_SECRET: 'y' };
    expect(() => slackAdapterFactory({ config: loadConfig(all), log: createLogger({ level: 'silent' }) } as unknown as Runtime, {} as HttpServer)).toThrow(/SLACK_SIGNING_SECRET is required/);
    expect(boot({ ...all, SLACK_APP_TOKEN: 'xapp-1' })).toThrow(/unset SLACK_APP_TOKEN/);
  });
});

describe('the fake\'s side of OAuth', () => {
  const quiet = { debug() {}, info() {}, warn() {}, error() {}, setLevel() {}, getLevel: () => webApi.LogLevel.ERROR, setName() {} };
  const client = (token?: string) => new webApi.WebClient(token, { slackApiUrl: h.fake.apiUrl, retryConfig: { retries: 0 }, logger: quiet });
  const slackError = (p: Promise<unknown>) => p.then(() => null, (e: { data?: Record<string, unknown> }) => e.data ?? e);

  it('trades a code once, only with the app\'s client secret; a revoked token answers token_revoked', async () => {
    const delta = h.fake.addWorkspace({ teamId: 'T0DELTA004' });
    delta.addUser({ id: 'U3DEE', name: 'dee' });
    const { code } = h.fake.oauth.approve(`https://slack.com/oauth/v2/authorize?scope=commands,chat:write&client_id=${h.fake.oauth.clientId}&state=s`, { workspace: delta, user: 'U3DEE' });
    const { clientId, clientSecret } = h.fake.oauth;
    expect(await slackError(client().oauth.v2.access({ client_id: clientId, client_secret: 'nope', code }))).toMatchObject({ ok: false, error: 'bad_client_secret' });
    expect(await slackError(client().oauth.v2.access({ client_id: 'other', client_secret: clientSecret, code }))).toMatchObject({ ok: false, error: 'invalid_client_id' });
    const granted = await client().oauth.v2.access({ client_id: clientId, client_secret: clientSecret, code });
    expect(granted).toMatchObject({
      ok: true, token_type: 'bot', scope: 'commands,chat:write', bot_user_id: delta.botUserId, app_id: delta.appId,
      team: { id: 'T0DELTA004' }, enterprise: null, authed_user: { id: 'U3DEE' }, is_enterprise_install: false,
    });
    expect(await client(granted.access_token).auth.test()).toMatchObject({ ok: true, team_id: 'T0DELTA004', user_id: delta.botUserId });
    expect(await slackError(client(granted.access_token).users.info({ user: 'U3DEE' }))).toMatchObject({ error: 'missing_scope', needed: 'users:read' });
    expect(await slackError(client().oauth.v2.access({ client_id: clientId, client_secret: clientSecret, code }))).toMatchObject({ ok: false, error: 'invalid_code' });

    const revoked = h.fake.oauth.issued.find((t) => t.teamId === 'T0BETA0002')!.token;
    expect(await slackError(client(revoked).auth.test())).toMatchObject({ ok: false, error: 'token_revoked' });
    expect(await slackError(client('xoxb-never-issued').auth.test())).toMatchObject({ ok: false, error: 'invalid_auth' });
  });
});
