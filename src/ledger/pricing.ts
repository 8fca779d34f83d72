import type { BackendName } from '../config.ts';

/**
 * The one price list. 1 dreambot credit is priced on the Dream Machine web-app scale (backend-luma.md §7),
 * which members may already know; usage rounds up, so 9 s costs what 10 s does.
 *
 * Rows the web-app table does not list are derived and marked: 540p is 720p scaled by its pixel count
 * (0.5625, rounded up), 4k is 1080p plus the 20-credit upscale. ComfyUI rows are estimates for the hold;
 * the capture is measured GPU seconds × rate and never exceeds the hold.
 */
export type Operation = 'generate' | 'extend' | 'upscale' | 'add_audio';

export interface PriceQuery {
  backend: BackendName;
  operation: Operation;
  model?: string;
  resolution: string;
  duration: string;
}

type ByDuration = Record<string, number>;
type ByResolution = Record<string, ByDuration>;

const luma: Record<string, ByResolution> = {
  'ray-2': {
    '540p': { '5s': 90, '9s': 180 }, // derived
    '720p': { '5s': 160, '9s': 320 },
    '1080p': { '5s': 170, '9s': 340 },
    '4k': { '5s': 190, '9s': 360 }, // derived
  },
  'ray-flash-2': {
    '540p': { '5s': 31, '9s': 62 }, // derived
    '720p': { '5s': 55, '9s': 110 },
    '1080p': { '5s': 65, '9s': 130 },
    '4k': { '5s': 85, '9s': 150 }, // derived
  },
};

const comfyui: ByResolution = {
  '540p': { '5s': 60, '9s': 110 },
  '720p': { '5s': 120, '9s': 220 },
};

export const LUMA_UPSCALE_CREDITS = 20;
export const PREVIEW_CREDITS = 1;

/** Returns the price in credits, or null when this backend has no price for the combination. */
export function priceOf(query: PriceQuery): number | null {
  switch (query.backend) {
    case 'preview':
      return PREVIEW_CREDITS;
    case 'luma': {
      if (query.operation === 'upscale') return LUMA_UPSCALE_CREDITS;
      if (query.operation === 'add_audio') return 0;
      const model = query.model ?? 'ray-2';
      return luma[model]?.[query.resolution]?.[query.duration] ?? null;
    }
    case 'comfyui':
      if (query.operation === 'upscale' || query.operation === 'add_audio') return null;
      return comfyui[query.resolution]?.[query.duration] ?? null;
  }
}
