import { z } from 'zod';
import { AppError, ErrorCode } from './errors.ts';

/**
 * Every environment variable the service reads, parsed once at boot. Nothing else in the code reads
 * process.env (test/config.test.ts checks that, and that .env.example lists exactly these keys).
 */
const bool = z
  .enum(['1', '0', 'true', 'false', 'yes', 'no', ''])
  .transform((v) => v === '1' || v === 'true' || v === 'yes');
const int = (min: number) => z.coerce.number().int().min(min);
const optionalString = z
  .string()
  .optional()
  .transform((v) => (v === undefined || v.trim() === '' ? undefined : v.trim()));

export const backendNames = ['preview', 'luma', 'comfyui'] as const;
export type BackendName = (typeof backendNames)[number];

export const configSchema = z.object({
  DATABASE_URL: z.string().url().default('postgres://postgres@127.0.0.1:5432/dreambot'),
  REDIS_URL: z.string().url().default('redis://127.0.0.1:6379'),
  REDIS_PREFIX: z.string().regex(/^[^:]+$/, 'must not contain ":"').default('{dreambot}'),
  HTTP_PORT: int(0).max(65535).default(3000),
  PUBLIC_BASE_URL: optionalString.pipe(z.string().url().optional()),
  ASSET_SIGNING_SECRET: optionalString,
  ADMIN_PASSWORD: optionalString,
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
  DEFAULT_TEAM_CREDITS: int(0).default(1000),
  DEFAULT_BACKEND: z.enum(['auto', ...backendNames]).default('preview'),
  MEMBER_ACTIVE_JOBS: int(1).default(2),
  TEAM_ACTIVE_JOBS: int(1).default(10),
  PREVIEW_CONCURRENCY: int(1).default(2),
  JOB_ATTEMPTS: int(1).default(3),
  JOB_BACKOFF_MS: int(0).default(2000),
  WORKER_LOCK_MS: int(1000).default(30000),
  SHUTDOWN_GRACE_MS: int(0).default(25000),
  RECONCILE_INTERVAL_MS: int(1000).default(30000),
  HOLD_SWEEP_AFTER_MS: int(1000).default(6 * 60 * 60 * 1000),
  MAX_IMAGE_BYTES: int(1024).default(10 * 1024 * 1024),
  MAX_CLIP_BYTES: int(1024).default(200 * 1024 * 1024),
  ALLOW_PRIVATE_IMAGE_URLS: bool.default(false),
  FFMPEG_PATH: optionalString,
  FFPROBE_PATH: optionalString,
  FONT_PATH: optionalString,
  LUMA_API_KEY: optionalString,
  LUMA_BASE_URL: z.string().url().default('https://api.lumalabs.ai/dream-machine/v1'),
  LUMA_POLL_MS: int(100).default(3000),
  LUMA_CONCURRENCY: int(1).default(10),
  LUMA_CREATES_PER_MINUTE: int(1).default(20),
  COMFYUI_URLS: optionalString,
  COMFYUI_WORKFLOW: z.string().default('wan2.2-ti2v-5b'),
  COMFYUI_CREDITS_PER_GPU_SECOND: z.coerce.number().positive().default(1),
  AUTO_GPU_MAX_WAIT_S: int(0).default(120),
  DISCORD_TOKEN: optionalString,
  DISCORD_APPLICATION_ID: optionalString,
  DISCORD_API_URL: z.string().url().default('https://discord.com/api'),
  DISCORD_ALLOW_DMS: bool.default(false),
  DISCORD_CLIP_IN_THREAD: bool.default(true),
  SLACK_BOT_TOKEN: optionalString,
  SLACK_SIGNING_SECRET: optionalString,
  SLACK_APP_TOKEN: optionalString,
  SLACK_API_URL: z.string().url().default('https://slack.com/api/'),
  SLACK_CLIENT_ID: optionalString,
  SLACK_CLIENT_SECRET: optionalString,
  SLACK_STATE_SECRET: optionalString,
  SLACK_ADMIN_USER_IDS: optionalString,
});

export type RawConfig = z.infer<typeof configSchema>;
export interface Config extends RawConfig {
  /** Signing key for asset URLs; random per process when neither secret nor public URL is set. */
  assetSecret: string;
  /** LOG_LEVEL was set, rather than defaulted: one-shot CLI commands are quieter by default. */
  logLevelSet: boolean;
}

export const configKeys = Object.keys(configSchema.shape) as (keyof RawConfig)[];

export class ConfigError extends AppError {
  constructor(message: string) {
    super(ErrorCode.Config, message, { kind: 'permanent' });
    this.name = 'ConfigError';
  }
}

export function loadConfig(env: Record<string, string | undefined> = process.env): Config {
  const input: Record<string, string> = {};
  for (const key of configKeys) {
    const value = env[key];
    if (value !== undefined && value !== '') input[key] = value;
  }
  const parsed = configSchema.safeParse(input);
  if (!parsed.success) {
    const lines = parsed.error.issues.map((issue) => {
      const key = String(issue.path[0] ?? '?');
      return `${key} is invalid (${issue.message}); set it in .env (see .env.example)`;
    });
    throw new ConfigError(lines.join('\n'));
  }
  const raw = parsed.data;
  if (raw.PUBLIC_BASE_URL && !raw.ASSET_SIGNING_SECRET) {
    throw new ConfigError(
      'ASSET_SIGNING_SECRET is required when PUBLIC_BASE_URL is set (any long random string, the same in every process); see .env.example',
    );
  }
  if ((raw.DEFAULT_BACKEND === 'luma') && !raw.LUMA_API_KEY) {
    throw new ConfigError('LUMA_API_KEY is required when DEFAULT_BACKEND=luma; see .env.example');
  }
  if ((raw.DEFAULT_BACKEND === 'comfyui') && !raw.COMFYUI_URLS) {
    throw new ConfigError('COMFYUI_URLS is required when DEFAULT_BACKEND=comfyui; see .env.example');
  }
  const assetSecret = raw.ASSET_SIGNING_SECRET ?? crypto.randomUUID() + crypto.randomUUID();
  return { ...raw, assetSecret, logLevelSet: input.LOG_LEVEL !== undefined };
}

/** Values that must never reach a log line, whatever field they hide in. */
export function secretValues(config: Config): string[] {
  const passwordInUrl = (url: string) => {
    try {
      return decodeURIComponent(new URL(url).password);
    } catch {
      return '';
    }
  };
  return [
    config.ASSET_SIGNING_SECRET,
    config.assetSecret,
    config.ADMIN_PASSWORD,
    config.LUMA_API_KEY,
    config.DISCORD_TOKEN,
    config.SLACK_BOT_TOKEN,
    config.SLACK_SIGNING_SECRET,
    config.SLACK_APP_TOKEN,
    config.SLACK_CLIENT_SECRET,
    config.SLACK_STATE_SECRET,
    passwordInUrl(config.DATABASE_URL),
    passwordInUrl(config.REDIS_URL),
  ].filter((v): v is string => typeof v === 'string' && v.length >= 4);
}
