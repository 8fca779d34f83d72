import os from 'node:os';
import type { BackendName, Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { MediaBinaries } from '../media/ffmpeg.ts';
import { PreviewBackend } from './preview.ts';
import type { Backend } from './types.ts';

/**
 * Builds the backends this deployment has configured. The preview backend is always there: it is the
 * embedded default that needs no key and no GPU.
 */
export function createBackends(config: Config, media: { bins: MediaBinaries; fontPath: string }, log: Logger): Map<BackendName, Backend> {
  const backends = new Map<BackendName, Backend>();
  const slots = Math.max(1, Math.min(config.PREVIEW_CONCURRENCY, os.availableParallelism()));
  backends.set('preview', new PreviewBackend({ bins: media.bins, fontPath: media.fontPath, slots }));
  if (config.LUMA_API_KEY) log.warn('LUMA_API_KEY is set, but this build has no luma backend yet; requests for it are refused');
  if (config.COMFYUI_URLS) log.warn('COMFYUI_URLS is set, but this build has no comfyui backend yet; requests for it are refused');
  return backends;
}
