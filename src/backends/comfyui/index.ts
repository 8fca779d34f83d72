import { Redis } from 'ioredis';
import { ConfigError, type Config } from '../../config.ts';
import type { Logger } from '../../log.ts';
import type { MediaBinaries } from '../../media/ffmpeg.ts';
import { ComfyUIBackend } from './backend.ts';

export { ComfyUIBackend, defaultTiming, type ComfyUIBackendOptions, type ComfyUITiming } from './backend.ts';

/** COMFYUI_URLS: comma-separated base URLs, one ComfyUI process (GPU) each. */
export function parseServerUrls(value: string): string[] {
  const urls = value.split(',').map((s) => s.trim()).filter(Boolean).map((raw) => {
    let url: URL;
    try {
      url = new URL(raw);
    } catch {
      throw new ConfigError(`COMFYUI_URLS has "${raw}", which is not a URL (expected e.g. http://gpu-1:8188)`);
    }
    if (url.protocol !== 'http:' && url.protocol !== 'https:') throw new ConfigError(`COMFYUI_URLS has "${raw}": use http:// or https://`);
    url.search = '';
    url.hash = '';
    if (!url.pathname.endsWith('/')) url.pathname += '/';
    return url.toString();
  });
  if (urls.length === 0) throw new ConfigError('COMFYUI_URLS names no server');
  if (new Set(urls).size !== urls.length) throw new ConfigError('COMFYUI_URLS names a server twice');
  return urls;
}

/**
 * The registry's factory: its own Redis connection (closed with the backend), and the startup check
 * (workflow against every reachable server's /object_info) logged loudly when it fails; admission then
 * refuses comfyui requests with a clear message instead of holding credits for jobs that cannot run.
 */
export function createComfyUIBackend(config: Config, media: { bins: MediaBinaries }, log: Logger): ComfyUIBackend {
  const redis = new Redis(config.REDIS_URL, { maxRetriesPerRequest: 3 });
  redis.on('error', (err: Error) => log.debug({ err }, 'comfyui redis connection error'));
  const backend = new ComfyUIBackend({
    urls: parseServerUrls(config.COMFYUI_URLS ?? ''), workflow: config.COMFYUI_WORKFLOW,
    creditsPerGpuSecond: config.COMFYUI_CREDITS_PER_GPU_SECOND, redis, ownsRedis: true,
    redisPrefix: config.REDIS_PREFIX, bins: media.bins, log,
  });
  backend.ready().catch((err: unknown) => log.error({ err }, 'comfyui backend cannot start; comfyui requests are refused'));
  return backend;
}
