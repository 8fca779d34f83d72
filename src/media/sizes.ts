/**
 * The request vocabulary shared by every backend: aspect ratios, resolutions, durations and camera
 * moves. Pixel sizes follow Luma's 720p table so a preview clip has exactly the frame a real
 * generation of the same request would have, and a swap of backends changes nothing downstream.
 */
export const aspectRatios = ['16:9', '9:16', '1:1', '4:3', '3:4', '21:9', '9:21'] as const;
export type AspectRatio = (typeof aspectRatios)[number];

export const resolutions = ['540p', '720p', '1080p', '4k'] as const;
export type Resolution = (typeof resolutions)[number];

export const durations = ['5s', '9s'] as const;
export type Duration = (typeof durations)[number];

export const cameraMoves = [
  'static',
  'push_in',
  'pull_out',
  'pan_left',
  'pan_right',
  'orbit_left',
  'orbit_right',
  'crane_up',
  'crane_down',
] as const;
export type CameraMove = (typeof cameraMoves)[number];

export interface FrameSize {
  width: number;
  height: number;
}

/** Luma's 720p frames; other resolutions scale from these. */
const base720: Record<AspectRatio, FrameSize> = {
  '16:9': { width: 1280, height: 720 },
  '9:16': { width: 720, height: 1280 },
  '1:1': { width: 1024, height: 1024 },
  '4:3': { width: 1152, height: 864 },
  '3:4': { width: 864, height: 1152 },
  '21:9': { width: 1552, height: 656 },
  '9:21': { width: 656, height: 1552 },
};

const resolutionScale: Record<Resolution, number> = {
  '540p': 0.75,
  '720p': 1,
  '1080p': 1.5,
  '4k': 3,
};

/** H.264 with 4:2:0 chroma needs even dimensions, so every size is rounded to the nearest even number. */
export function even(n: number): number {
  return Math.max(2, Math.round(n / 2) * 2);
}

export function frameSize(aspect: AspectRatio, resolution: Resolution): FrameSize {
  const base = base720[aspect];
  const scale = resolutionScale[resolution];
  return { width: even(base.width * scale), height: even(base.height * scale) };
}

export function durationSeconds(duration: Duration): number {
  return Number.parseInt(duration, 10);
}
