import { copyFile, mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, permanentError } from '../errors.ts';
import { PREVIEW_CREDITS } from '../ledger/pricing.ts';
import type { MediaBinaries } from '../media/ffmpeg.ts';
import { firstFrame, lastFrame } from '../media/frames.ts';
import { renderPreview } from '../media/preview-render.ts';
import { aspectRatios, cameraMoves, durationSeconds, frameSize, resolutions } from '../media/sizes.ts';
import type { StoredRequest } from '../request.ts';
import type { Backend, BackendCapabilities, BackendJob, BackendOutcome, Progress, RunHooks } from './types.ts';

export interface PreviewBackendOptions {
  bins: MediaBinaries;
  fontPath: string;
  /** Renders at once; ffmpeg is CPU-bound, so about one per core. */
  slots: number;
}

const capabilities: BackendCapabilities = {
  operations: ['generate', 'extend'],
  models: ['preview'],
  aspects: aspectRatios,
  resolutions: resolutions.filter((r) => r === '540p' || r === '720p' || r === '1080p'),
  durations: ['5s', '9s'],
  cameraMoves,
  startImage: true,
  endImage: true,
  loop: true,
};

/**
 * The offline, free backend: ffmpeg animates the start image (or a title card of the prompt) with the
 * requested camera move, so the whole pipeline runs with no GPU and no API key. Its work is stateless and
 * deterministic, so the handle is just a name: resuming after a crash renders again, which costs
 * nothing and submits nothing anywhere.
 */
export class PreviewBackend implements Backend {
  readonly name = 'preview' as const;
  readonly limits;
  private readonly renders = new Map<string, { file: string; dir: string; progress: Progress; abort: AbortController }>();

  constructor(private readonly options: PreviewBackendOptions) {
    this.limits = { slots: options.slots };
  }

  capabilities(): BackendCapabilities {
    return capabilities;
  }

  estimate(request: StoredRequest): number | null {
    if (!capabilities.operations.includes(request.operation)) return null;
    return PREVIEW_CREDITS;
  }

  async submit(job: BackendJob): Promise<string> {
    return `preview-${job.generationId}`;
  }

  async resume(handle: string, job: BackendJob, hooks: RunHooks): Promise<BackendOutcome> {
    const { request, inputs } = job;
    const { width, height } = frameSize(request.aspect, request.resolution as (typeof resolutions)[number]);
    const durationS = durationSeconds(request.duration);
    let startImage = inputs.startImage;
    let endImage = inputs.endImage;
    if (request.operation === 'extend') {
      if (!inputs.parentClip) throw permanentError(ErrorCode.BackendFailed, 'the clip to extend is no longer stored');
      if (request.reverse) {
        // Leads into the parent: end on its first frame.
        endImage = path.join(job.workDir, 'parent-first.png');
        await firstFrame(this.options.bins, inputs.parentClip, endImage, { signal: hooks.signal });
      } else {
        startImage = path.join(job.workDir, 'parent-last.png');
        await lastFrame(this.options.bins, inputs.parentClip, startImage, { signal: hooks.signal });
      }
    }
    const dir = await mkdtemp(path.join(os.tmpdir(), 'dreambot-preview-'));
    const file = path.join(dir, 'clip.mp4');
    const abort = new AbortController();
    const signal = AbortSignal.any([hooks.signal, abort.signal]);
    const entry = { file, dir, abort, progress: { fraction: 0, state: 'running' as const } as Progress };
    this.renders.set(handle, entry);
    const started = Date.now();
    await renderPreview(this.options.bins, {
      width, height, durationS, camera: request.camera ?? 'static', fontPath: this.options.fontPath, out: file,
      ...(startImage ? { startImage } : { title: request.prompt }),
      ...(endImage ? { endImage } : {}),
    }, {
      signal,
      onProgress: (fraction) => {
        const elapsed = (Date.now() - started) / 1000;
        const etaSeconds = fraction > 0.05 ? Math.round((elapsed / fraction) * (1 - fraction)) : undefined;
        entry.progress = { fraction, state: 'running', ...(etaSeconds === undefined ? {} : { etaSeconds }) };
        hooks.onProgress(entry.progress);
      },
    });
    entry.progress = { fraction: 1, state: 'completed' };
    return { actualCredits: PREVIEW_CREDITS, meta: { preview: true, model: 'preview' } };
  }

  async progress(handle: string): Promise<Progress> {
    return this.renders.get(handle)?.progress ?? { fraction: 0, state: 'queued' };
  }

  async cancel(handle: string): Promise<void> {
    this.renders.get(handle)?.abort.abort();
  }

  async fetchResult(handle: string, job: BackendJob, destination: string, signal: AbortSignal): Promise<void> {
    let entry = this.renders.get(handle);
    if (!entry || !(await exists(entry.file))) {
      // Another process rendered it (or this one restarted): rendering again is the preview's "download".
      await this.resume(handle, job, { signal, onProgress: () => undefined });
      entry = this.renders.get(handle)!;
    }
    await copyFile(entry.file, destination);
    this.renders.delete(handle);
    await rm(entry.dir, { recursive: true, force: true });
  }
}

async function exists(file: string): Promise<boolean> {
  try {
    return (await stat(file)).size > 0;
  } catch {
    return false;
  }
}
