import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, readdir, rm, writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import postgres from 'postgres';
import { sql } from 'drizzle-orm';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { getGeneration } from '../src/generations.ts';
import { resolveBinaries } from '../src/media/ffmpeg.ts';
import { probe } from '../src/media/probe.ts';
import type { Runtime } from '../src/runtime.ts';
import { createTestContext, PG_ADMIN_URL, type TestContext } from './support/context.ts';

/** The `dreambot` CLI as a person runs it: a real process, against this file's own Postgres database and Redis prefix. */
const ROOT = fileURLToPath(new URL('..', import.meta.url));
const PROMPT = 'a drone rises slowly above a misty forest at dawn';

let ctx: TestContext;
let rt: Runtime;
let dir: string;
const dreamIds: string[] = [];
const extraDatabases: string[] = [];

interface Ran {
  code: number;
  stdout: string;
  stderr: string;
}

function cli(args: string[], env: Record<string, string> = {}, timeoutMs = 45_000): Promise<Ran> {
  return new Promise((resolve) => {
    execFile(process.execPath, ['bin/dreambot.js', ...args], {
      cwd: ROOT, env: { ...process.env, ...ctx.env, ...env }, timeout: timeoutMs, maxBuffer: 16 * 1024 * 1024,
    }, (error, stdout, stderr) => {
      const code = error ? (typeof error.code === 'number' ? error.code : -1) : 0;
      resolve({ code, stdout: String(stdout), stderr: String(stderr) });
    });
  });
}

function lastJson(out: string): Record<string, unknown> {
  const lines = out.trim().split('\n');
  return JSON.parse(lines[lines.length - 1]!) as Record<string, unknown>;
}

/** The one line a refusal prints on stderr (and nothing else there: no stack, no log noise). */
function oneLine(r: Ran): string {
  const lines = r.stderr.split('\n').filter((l) => l.trim() !== '');
  expect(lines, `stderr was:\n${r.stderr}`).toHaveLength(1);
  return lines[0]!;
}

async function creditsOf(team: string): Promise<Record<string, unknown>> {
  const r = await cli(['credits', 'show', '--team', team, '--json']);
  expect(r.code, r.stderr).toBe(0);
  return lastJson(r.stdout);
}

async function dropDatabase(name: string): Promise<void> {
  const admin = postgres(PG_ADMIN_URL, { max: 1, onnotice: () => {} });
  try {
    await admin.unsafe(`drop database if exists "${name}" with (force)`);
  } finally {
    await admin.end();
  }
}

beforeAll(async () => {
  ctx = await createTestContext();
  // Creates and migrates the database; it never starts workers, so what it admits stays queued.
  rt = await ctx.runtime();
  dir = await mkdtemp(path.join(os.tmpdir(), 'dreambot-cli-'));
});
afterAll(async () => {
  for (const name of extraDatabases) await dropDatabase(name).catch(() => undefined);
  await ctx?.cleanup();
  if (dir) await rm(dir, { recursive: true, force: true });
});

describe('dreambot dream', () => {
  it('renders a clip, saves it where --out says and reports it as one JSON line', async () => {
    const out = path.join(dir, 'clip.mp4');
    const r = await cli(['dream', PROMPT, '--team', 'studio', '--out', out, '--json', '--resolution', '540p']);
    expect(r.code, r.stderr).toBe(0);
    const result = lastJson(r.stdout);
    expect(Object.keys(result).sort()).toEqual(['backend', 'credits_charged', 'credits_remaining', 'id', 'out', 'state']);
    expect(result).toMatchObject({ state: 'delivered', backend: 'preview', credits_charged: 1, credits_remaining: 999, out });
    expect(path.isAbsolute(result.out as string)).toBe(true);
    expect(existsSync(out)).toBe(true);
    dreamIds.push(result.id as string);

    const bins = await resolveBinaries();
    const info = await probe(bins.ffprobe, out);
    expect(info).toMatchObject({ codec: 'h264', width: 960, height: 540 });
    expect(Math.abs(info.durationS - 5)).toBeLessThanOrEqual(0.1);
  });

  it('each dream spends from its own team: a second one for the same team, a first one for another', async () => {
    const again = await cli(['dream', 'a paper boat drifts down a stream', '--team', 'studio', '--out', path.join(dir, 'boat.mp4'), '--json', '--resolution', '540p']);
    expect(again.code, again.stderr).toBe(0);
    expect(lastJson(again.stdout)).toMatchObject({ state: 'delivered', credits_charged: 1, credits_remaining: 998 });
    dreamIds.push(lastJson(again.stdout).id as string);

    const other = await cli(['dream', 'a kite over a beach', '--team', 'other', '--out', path.join(dir, 'kite.mp4'), '--json', '--resolution', '540p']);
    expect(other.code, other.stderr).toBe(0);
    expect(lastJson(other.stdout)).toMatchObject({ state: 'delivered', credits_charged: 1, credits_remaining: 999 });
    dreamIds.push(lastJson(other.stdout).id as string);
  });

  it('refuses bad input with one line that says what is wrong, a JSON refusal with --json, and charges nothing', async () => {
    const pdf = path.join(dir, 'doc.pdf');
    await writeFile(pdf, '%PDF-1.4\n1 0 obj << /Type /Catalog >> endobj\n%%EOF\n');
    const cases: [string, string[], RegExp][] = [
      ['an unknown aspect', ['dream', 'a fox in the snow', '--aspect', '5:4'], /16:9/],
      ['a 6,000-character prompt', ['dream', 'a'.repeat(6000)], /6,000 characters.*5,000/],
      ['a PDF as the image', ['dream', 'animate this', '--image', pdf], /PDF/],
      ['an image URL in a private network', ['dream', 'animate this', '--image', 'http://10.0.0.1/x.png'], /private network/],
      ['an unknown flag', ['dream', 'a fox in the snow', '--fps', '60'], /--fps/],
      ['a missing prompt', ['dream'], /prompt/i],
    ];
    const before = await creditsOf('studio');
    const runs = await Promise.all(cases.map(async ([, args]) => {
      const withTeam = [...args, '--team', 'studio'];
      const [plain, json] = await Promise.all([cli(withTeam), cli([...withTeam, '--json'])]);
      return { plain, json };
    }));
    for (const [i, [name, , message]] of cases.entries()) {
      const { plain, json } = runs[i]!;
      expect(plain.code, `${name}: ${plain.stderr}`).not.toBe(0);
      expect(plain.code, name).toBe(2);
      expect(plain.stdout, name).toBe('');
      expect(oneLine(plain), name).toMatch(message);
      expect(oneLine(plain), name).toMatch(/^dreambot: /);

      expect(json.code, `${name}: ${json.stderr}`).toBe(2);
      const refusal = lastJson(json.stdout);
      expect(refusal, name).toMatchObject({ state: 'refused', error: expect.any(String) });
      expect(refusal.error as string, name).toMatch(message);
    }
    const after = await creditsOf('studio');
    expect(after).toMatchObject({ available: before.available, held: before.held, consumed: before.consumed });
    const generations = await rt.db.execute(sql`select count(*)::int as n from generations`);
    expect(Number(generations[0]!.n)).toBe(dreamIds.length);
  }, 90_000);
});

describe('dreambot credits', () => {
  it('sets a weekly limit, grants extra credits, shows the result, and audits each change', async () => {
    const set = await cli(['credits', 'set', '--team', 'acme', '--limit', '500', '--period', 'weekly', '--json']);
    expect(set.code, set.stderr).toBe(0);
    expect(lastJson(set.stdout)).toMatchObject({ team: 'acme', available: 500, limit: 500, period: 'weekly' });

    const grant = await cli(['credits', 'grant', '--team', 'acme', '--amount', '50', '--json']);
    expect(grant.code, grant.stderr).toBe(0);
    expect(lastJson(grant.stdout)).toMatchObject({ available: 550, limit: 500, period: 'weekly' });

    const shown = await creditsOf('acme');
    expect(shown).toMatchObject({ team: 'acme', available: 550, held: 0, consumed: 0, limit: 500, period: 'weekly' });

    const audit = await rt.db.execute<{ action: string; details: Record<string, unknown>; actor: string }>(sql`
      select a.action, a.details, a.actor from audit_log a
      join platform_accounts p on p.team_id = a.team_id and p.platform = 'cli' and p.external_id = 'acme'
      order by a.id`);
    expect(audit.map((row) => [row.action, row.details])).toEqual([
      ['credits.set', { limit: 500, period: 'weekly' }],
      ['credits.grant', { amount: 50 }],
    ]);
    for (const row of audit) expect(row.actor).toMatch(/^cli:/);
  });

  it('refuses to show a team that does not exist yet, and refuses a negative limit without changing anything', async () => {
    const [nobody, negative, negativeEq] = await Promise.all([
      cli(['credits', 'show', '--team', 'nobody']),
      cli(['credits', 'set', '--team', 'acme', '--limit', '-5']),
      cli(['credits', 'set', '--team', 'acme', '--limit=-5']),
    ]);
    expect(nobody.code).not.toBe(0);
    expect(oneLine(nobody)).toMatch(/No team "nobody".*yet/);
    const created = await rt.db.execute(sql`select 1 from platform_accounts where external_id = 'nobody'`);
    expect(created).toHaveLength(0);

    expect(negative.code).toBe(2);
    expect(oneLine(negative)).toMatch(/--limit/);
    expect(negativeEq.code).toBe(2);
    expect(oneLine(negativeEq)).toMatch(/--limit must be a whole number of credits, got "-5"/);

    expect(await creditsOf('acme')).toMatchObject({ available: 550, limit: 500, period: 'weekly' });
    const audit = await rt.db.execute(sql`
      select count(*)::int as n from audit_log a join platform_accounts p on p.team_id = a.team_id where p.external_id = 'acme'`);
    expect(Number(audit[0]!.n)).toBe(2);
  });
});

describe('dreambot jobs', () => {
  it('lists the dreams, shows one with its prompt, and says a delivered one had already ended', async () => {
    expect(dreamIds).toHaveLength(3);
    const list = await cli(['jobs', 'list', '--json']);
    expect(list.code, list.stderr).toBe(0);
    const listed = (JSON.parse(list.stdout) as { id: string }[]).map((g) => g.id);
    expect(listed.sort()).toEqual([...dreamIds].sort());

    const [plainList, show, cancel] = await Promise.all([
      cli(['jobs', 'list']),
      cli(['jobs', 'show', dreamIds[0]!]),
      cli(['jobs', 'cancel', dreamIds[0]!]),
    ]);
    expect(plainList.code, plainList.stderr).toBe(0);
    for (const id of dreamIds) expect(plainList.stdout).toContain(id);
    expect(show.code, show.stderr).toBe(0);
    expect(show.stdout).toContain(PROMPT);
    expect(show.stdout).toContain('delivered');
    expect(cancel.code, cancel.stderr).toBe(0);
    expect(cancel.stdout).toMatch(/had already ended \(delivered\)/);
    expect((await getGeneration(rt.db, dreamIds[0]!))?.state).toBe('delivered');
  });

  it('cancels a queued job and gives its credits back', async () => {
    const before = await creditsOf('studio');
    const admitted = await rt.admit({
      idempotencyKey: `cli-test-${ctx.id}-queued`, team: { platform: 'cli', externalId: 'studio', name: 'studio' },
      member: { externalId: 'tester' }, request: { prompt: 'a queued clip nobody renders', resolution: '540p' }, replyTo: { platform: 'cli' },
    });
    expect(admitted.state).toBe('queued');
    expect((await creditsOf('studio')).available).toBe(Number(before.available) - admitted.credits);

    const r = await cli(['jobs', 'cancel', admitted.generationId]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(new RegExp(`^Cancelled ${admitted.generationId}`));
    const g = await getGeneration(rt.db, admitted.generationId);
    expect(g).toMatchObject({ state: 'cancelled', chargedCredits: 0 });
    expect(await creditsOf('studio')).toMatchObject({ available: before.available, held: before.held });
    const holds = await rt.db.execute(sql`select state from holds where generation_id = ${admitted.generationId}`);
    expect(holds.map((h) => h.state)).toEqual(['released']);

    const again = await cli(['jobs', 'cancel', admitted.generationId]);
    expect(again.stdout).toMatch(/had already ended \(cancelled\)/);
    expect(await creditsOf('studio')).toMatchObject({ available: before.available });
  });
});

describe('dreambot doctor', () => {
  it('passes with a good environment, names the broken dependency and its fix, and never prints a password', async () => {
    const withPassword = new URL(ctx.env.DATABASE_URL!);
    withPassword.password = 's3cretpw';
    const [good, secret, broken] = await Promise.all([
      cli(['doctor']),
      cli(['doctor'], { DATABASE_URL: withPassword.toString() }),
      cli(['doctor'], { DATABASE_URL: withPassword.toString(), REDIS_URL: 'redis://:r3dispw@127.0.0.1:1' }),
    ]);
    expect(good.code, good.stdout + good.stderr).toBe(0);
    for (const name of ['postgres', 'redis', 'ffmpeg']) expect(good.stdout).toMatch(new RegExp(`^ok\\s+${name}\\s`, 'm'));
    expect(good.stdout).not.toMatch(/^FAIL/m);

    // Postgres trusts local connections, so the password is ignored by the server and the checks pass.
    expect(secret.code, secret.stdout + secret.stderr).toBe(0);
    expect(secret.stdout).toMatch(/^ok\s+postgres\s/m);

    expect(broken.code).toBe(1);
    const redisLine = broken.stdout.split('\n').find((l) => /^\S+\s+redis\s/.test(l));
    expect(redisLine).toMatch(/^FAIL\s+redis\s.*REDIS_URL/);
    expect(broken.stdout).toMatch(/^ok\s+postgres\s/m);

    for (const r of [secret, broken]) {
      expect(r.stdout + r.stderr).not.toContain('s3cretpw');
      expect(r.stdout + r.stderr).not.toContain('r3dispw');
    }
  });
});

describe('dreambot usage', () => {
  it('--help lists every command; an unknown command is refused with exit code 2', async () => {
    const [help, unknown] = await Promise.all([cli(['--help']), cli(['frobnicate'])]);
    expect(help.code).toBe(0);
    for (const command of ['migrate', 'start', 'dream', 'credits', 'jobs', 'doctor']) {
      expect(help.stdout).toMatch(new RegExp(`^\\s*dreambot ${command}\\b`, 'm'));
    }
    expect(unknown.code).toBe(2);
    expect(oneLine(unknown)).toMatch(/Unknown command "frobnicate"/);
  });
});

describe('dreambot migrate', () => {
  async function appliedMigrations(url: string): Promise<number> {
    const client = postgres(url, { max: 1, onnotice: () => {} });
    try {
      const rows = await client`select count(*)::int as n from drizzle.__drizzle_migrations`;
      return Number(rows[0]!.n);
    } finally {
      await client.end();
    }
  }

  function urlFor(name: string): string {
    const url = new URL(PG_ADMIN_URL);
    url.pathname = `/${name}`;
    return url.toString();
  }

  it('creates a database that does not exist yet; three at once against another new one all succeed', async () => {
    const files = (await readdir(path.join(ROOT, 'migrations'))).filter((f) => f.endsWith('.sql')).length;
    const single = `dreambot_test_${ctx.id}_mig1`;
    const racing = `dreambot_test_${ctx.id}_mig3`;
    extraDatabases.push(single, racing);

    const first = await cli(['migrate'], { DATABASE_URL: urlFor(single) });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stdout).toMatch(/Database is up to date/);
    expect(await appliedMigrations(urlFor(single))).toBe(files);

    const three = await Promise.all([1, 2, 3].map(() => cli(['migrate'], { DATABASE_URL: urlFor(racing) })));
    for (const r of three) expect(r.code, r.stderr).toBe(0);
    expect(await appliedMigrations(urlFor(racing))).toBe(files);
  });
});
