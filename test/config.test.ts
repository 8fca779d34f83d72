import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { Writable } from 'node:stream';
import { describe, expect, it } from 'vitest';
import { ConfigError, configKeys, loadConfig, secretValues } from '../src/config.ts';
import { createLogger } from '../src/log.ts';

const root = path.resolve(import.meta.dirname, '..');

async function sourceFiles(dir: string): Promise<string[]> {
  const out: string[] = [];
  for (const entry of await readdir(path.join(root, dir), { withFileTypes: true })) {
    const rel = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...(await sourceFiles(rel)));
    else if (entry.name.endsWith('.ts')) out.push(rel);
  }
  return out;
}

describe('configuration', () => {
  it('.env.example lists exactly the variables the code reads, each with a comment', async () => {
    const text = await readFile(path.join(root, '.env.example'), 'utf8');
    const lines = text.split('\n');
    const keys = lines.flatMap((line, i) => {
      const m = /^([A-Z][A-Z0-9_]*)=/.exec(line);
      if (!m) return [];
      expect(lines[i - 1], `${m[1]} needs a one-line comment above it`).toMatch(/^# \S/);
      return [m[1]!];
    });
    expect([...keys].sort()).toEqual([...configKeys].sort());
  });

  it('nothing outside src/config.ts reads process.env', async () => {
    const offenders: string[] = [];
    for (const dir of ['src', 'commands', 'adapters']) {
      for (const file of await sourceFiles(dir).catch(() => [])) {
        if (file === path.join('src', 'config.ts')) continue;
        if ((await readFile(path.join(root, file), 'utf8')).includes('process.env')) offenders.push(file);
      }
    }
    expect(offenders).toEqual([]);
  });

  it('defaults need no keys: preview backend, local services', () => {
    const config = loadConfig({});
    expect(config).toMatchObject({ DEFAULT_BACKEND: 'preview', HTTP_PORT: 3000, DEFAULT_TEAM_CREDITS: 1000, MEMBER_ACTIVE_JOBS: 2, TEAM_ACTIVE_JOBS: 10 });
  });

  it.each([
    [{ HTTP_PORT: 'eighty' }, /HTTP_PORT is invalid.*\.env\.example/],
    [{ DEFAULT_BACKEND: 'sora' }, /DEFAULT_BACKEND is invalid/],
    [{ REDIS_PREFIX: 'a:b' }, /REDIS_PREFIX is invalid \(must not contain ":"\)/],
    [{ PUBLIC_BASE_URL: 'https://bot.example.com' }, /ASSET_SIGNING_SECRET is required when PUBLIC_BASE_URL is set/],
    [{ DEFAULT_BACKEND: 'luma' }, /LUMA_API_KEY is required when DEFAULT_BACKEND=luma/],
    [{ DEFAULT_BACKEND: 'comfyui' }, /COMFYUI_URLS is required/],
  ])('GIVEN %o THEN boot fails naming the variable', (env, message) => {
    expect(() => loadConfig(env)).toThrow(ConfigError);
    expect(() => loadConfig(env)).toThrow(message);
  });
});

describe('logging', () => {
  function capture() {
    const lines: string[] = [];
    const destination = new Writable({ write(chunk, _enc, done) { lines.push(String(chunk)); done(); } });
    return { lines, destination };
  }

  it('secrets never reach a log line, by field name or pasted into a message', () => {
    const config = loadConfig({
      DISCORD_TOKEN: 'MTIzNDU2Nzg5.discord-token-value', SLACK_BOT_TOKEN: 'xoxb-1111-2222-slacktoken',
      SLACK_SIGNING_SECRET: 'signing-secret-value', LUMA_API_KEY: 'luma-key-0123456789',
      ADMIN_PASSWORD: 'board-password', DATABASE_URL: 'postgres://app:db-password-99@db:5432/dreambot',
      PUBLIC_BASE_URL: 'https://bot.example.com', ASSET_SIGNING_SECRET: 'asset-secret-abcdef',
    });
    const { lines, destination } = capture();
    const log = createLogger({ level: 'info', secrets: secretValues(config), destination });
    log.info({ config }, 'booted');
    log.info({ token: 'xoxb-1111-2222-slacktoken', headers: { authorization: 'Bearer luma-key-0123456789' } }, 'request');
    log.error({ err: new Error('connect to postgres://app:db-password-99@db failed with key luma-key-0123456789') }, 'oops');
    log.warn(`discord said no to MTIzNDU2Nzg5.discord-token-value and signing-secret-value, board-password, asset-secret-abcdef`);
    const all = lines.join('');
    expect(lines).toHaveLength(4);
    for (const secret of ['discord-token-value', 'xoxb-1111', 'signing-secret-value', 'luma-key-0123456789', 'board-password', 'db-password-99', 'asset-secret-abcdef']) {
      expect(all).not.toContain(secret);
    }
    expect(all).toContain('[REDACTED]');
    expect(all).toContain('booted');
  });
});
