import os from 'node:os';
import type { BackendName, Config } from '../config.ts';
import type { Logger } from '../log.ts';
import type { MediaBinaries } from '../media/ffmpeg.ts';
import { createComfyUIBackend } from './comfyui/index.ts';
import { createLumaBackend } from './luma/backend.ts';
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
  if (config.LUMA_API_KEY) backends.set('luma', createLumaBackend(config, log));
  if (config.COMFYUI_URLS) backends.set('comfyui', createComfyUIBackend(config, media, log));
  return backends;
}
