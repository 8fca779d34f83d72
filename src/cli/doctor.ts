import { readdir } from 'node:fs/promises';
import LumaAI from 'lumaai';
import postgres from 'postgres';
import { Redis } from 'ioredis';
import type { Config } from '../config.ts';
import { migrationsFolder } from '../db/migrate.ts';
import { resolveBinaries, resolveFontPath } from '../media/ffmpeg.ts';

export interface Check {
  name: string;
  ok: boolean;
  /** false for advice that does not stop dreambot from working. */
  required: boolean;
  detail: string;
}

function safeUrl(url: string): string {
  try {
    const u = new URL(url);
    if (u.password) u.password = '***';
    return u.toString();
  } catch {
    return '(unparseable URL)';
  }
}

async function checkPostgres(config: Config): Promise<Check[]> {
  const sql = postgres(config.DATABASE_URL, { max: 1, connect_timeout: 3, onnotice: () => {} });
  try {
    await sql`select 1`;
    const files = (await readdir(migrationsFolder)).filter((f) => f.endsWith('.sql')).length;
    let applied = 0;
    try {
      const rows = await sql`select count(*)::int as n from drizzle.__drizzle_migrations`;
      applied = Number(rows[0]?.n ?? 0);
    } catch {
      applied = 0;
    }
    return [
      { name: 'postgres', ok: true, required: true, detail: `reachable at ${safeUrl(config.DATABASE_URL)}` },
      { name: 'migrations', ok: applied >= files, required: true, detail: applied >= files ? `${applied}/${files} applied` : `${applied}/${files} applied: run \`dreambot migrate\` (start and dream also apply them)` },
    ];
  } catch (error) {
    const message = (error as Error).message;
    const missingDb = /does not exist/.test(message);
    return [{
      name: 'postgres', ok: missingDb, required: true,
      detail: missingDb ? `server reachable, database missing: \`dreambot migrate\` creates it` : `${message} at ${safeUrl(config.DATABASE_URL)}. Start Postgres (pg_ctlcluster <version> main start, or docker compose up postgres) or set DATABASE_URL.`,
    }];
  } finally {
    await sql.end({ timeout: 1 });
  }
}

async function checkRedis(config: Config): Promise<Check[]> {
  const redis = new Redis(config.REDIS_URL, { lazyConnect: true, maxRetriesPerRequest: 0, connectTimeout: 3000, retryStrategy: () => null });
  // The first connection error is the useful one ("ECONNREFUSED"); ioredis would also print it unhandled.
  let firstError: Error | undefined;
  redis.on('error', (error: Error) => { firstError ??= error; });
  try {
    await redis.connect();
    await redis.ping();
    const policy = (await redis.config('GET', 'maxmemory-policy').catch(() => [])) as string[];
    const value = policy[1] ?? 'unknown';
    return [
      { name: 'redis', ok: true, required: true, detail: `reachable at ${safeUrl(config.REDIS_URL)}` },
      { name: 'redis eviction', ok: value === 'noeviction' || value === 'unknown', required: false, detail: `maxmemory-policy ${value}${value === 'noeviction' || value === 'unknown' ? '' : ': BullMQ needs noeviction, or jobs can silently vanish'}` },
    ];
  } catch (error) {
    return [{ name: 'redis', ok: false, required: true, detail: `${(firstError ?? (error as Error)).message} at ${safeUrl(config.REDIS_URL)}. Start Redis (redis-server --daemonize yes) or set REDIS_URL.` }];
  } finally {
    redis.disconnect();
  }
}

async function checkMedia(config: Config): Promise<Check[]> {
  const checks: Check[] = [];
  try {
    const bins = await resolveBinaries({ ffmpegPath: config.FFMPEG_PATH, ffprobePath: config.FFPROBE_PATH });
    checks.push({ name: 'ffmpeg', ok: true, required: true, detail: `${bins.version.ffmpeg} (${bins.source.ffmpeg}: ${bins.ffmpeg})` });
    checks.push({ name: 'ffprobe', ok: true, required: true, detail: `${bins.version.ffprobe} (${bins.source.ffprobe})` });
  } catch (error) {
    checks.push({ name: 'ffmpeg', ok: false, required: true, detail: (error as Error).message });
  }
  try {
    checks.push({ name: 'font', ok: true, required: true, detail: await resolveFontPath(config.FONT_PATH) });
  } catch (error) {
    checks.push({ name: 'font', ok: false, required: true, detail: `${(error as Error).message}. Set FONT_PATH to a .ttf file.` });
  }
  return checks;
}

/** Luma: the key works and how much prepaid balance is left (GET /credits, in US cents). */
async function checkLuma(config: Config): Promise<Check> {
  if (!config.LUMA_API_KEY) return { name: 'backend luma', ok: true, required: false, detail: 'not configured (set LUMA_API_KEY)' };
  const client = new LumaAI({ authToken: config.LUMA_API_KEY, baseURL: config.LUMA_BASE_URL, maxRetries: 0, timeout: 5000 });
  try {
    const credits = await client.credits.get();
    return { name: 'backend luma', ok: true, required: false, detail: `key accepted at ${config.LUMA_BASE_URL}; balance $${(Number(credits.credit_balance ?? 0) / 100).toFixed(2)}` };
  } catch (error) {
    const status = (error as { status?: number }).status;
    const why = status === 401 || status === 403 ? 'LUMA_API_KEY was rejected: create a new key in the Luma dashboard' : `${(error as Error).message}: check LUMA_BASE_URL and the network`;
    return { name: 'backend luma', ok: false, required: true, detail: why };
  }
}

/** ComfyUI: every server in COMFYUI_URLS answers /system_stats. */
async function checkComfyUI(config: Config): Promise<Check[]> {
  if (!config.COMFYUI_URLS) return [{ name: 'backend comfyui', ok: true, required: false, detail: 'not configured (set COMFYUI_URLS)' }];
  const urls = config.COMFYUI_URLS.split(',').map((u) => u.trim()).filter(Boolean);
  return Promise.all(urls.map(async (url): Promise<Check> => {
    try {
      const res = await fetch(new URL('/system_stats', url), { signal: AbortSignal.timeout(3000) });
      if (!res.ok) return { name: 'backend comfyui', ok: false, required: true, detail: `${url} answered ${res.status} to /system_stats` };
      const stats = (await res.json()) as { devices?: { name?: string; vram_free?: number }[] };
      const device = stats.devices?.[0];
      return { name: 'backend comfyui', ok: true, required: true, detail: `${url} up${device?.name ? ` (${device.name})` : ''}; workflow ${config.COMFYUI_WORKFLOW}` };
    } catch (error) {
      return { name: 'backend comfyui', ok: false, required: true, detail: `${url}: ${(error as Error).message}. Start ComfyUI there or fix COMFYUI_URLS` };
    }
  }));
}

function checkBackendsAndPlatforms(config: Config): Check[] {
  return [
    { name: 'backend preview', ok: true, required: true, detail: `always on; default backend is ${config.DEFAULT_BACKEND}` },
    { name: 'discord', ok: true, required: false, detail: config.DISCORD_TOKEN ? 'DISCORD_TOKEN set' : 'not configured (set DISCORD_TOKEN to serve Discord)' },
    { name: 'slack', ok: !(config.SLACK_BOT_TOKEN && !config.SLACK_SIGNING_SECRET), required: false, detail: config.SLACK_BOT_TOKEN ? (config.SLACK_SIGNING_SECRET ? 'SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET set' : 'SLACK_SIGNING_SECRET is missing: requests cannot be verified') : 'not configured (set SLACK_BOT_TOKEN and SLACK_SIGNING_SECRET)' },
    { name: 'public url', ok: true, required: false, detail: config.PUBLIC_BASE_URL ? `assets served at ${config.PUBLIC_BASE_URL}/assets/…` : 'PUBLIC_BASE_URL unset: fine for preview; Luma needs it to fetch input images' },
  ];
}

/** `dreambot doctor`: every dependency, what is wrong with it, and how to fix it. */
export async function doctor(config: Config, out = process.stdout): Promise<number> {
  const checks = [
    ...(await checkPostgres(config)), ...(await checkRedis(config)), ...(await checkMedia(config)),
    ...checkBackendsAndPlatforms(config), await checkLuma(config), ...(await checkComfyUI(config)),
  ];
  for (const c of checks) out.write(`${c.ok ? 'ok  ' : c.required ? 'FAIL' : 'warn'}  ${c.name.padEnd(16)} ${c.detail}\n`);
  const failed = checks.filter((c) => !c.ok && c.required);
  out.write(failed.length === 0 ? 'All required checks passed.\n' : `${failed.length} required check(s) failed.\n`);
  return failed.length === 0 ? 0 : 1;
}
