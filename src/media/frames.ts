import { type MediaBinaries, runFfmpeg } from './ffmpeg.ts';
import { probe } from './probe.ts';

export interface FrameOptions {
  signal?: AbortSignal;
}

/**
 * A JPEG to show before the clip plays. One second in skips the fade-from-black many generators
 * start with; clips shorter than two seconds use their middle instead, so the seek never lands past
 * the end (which yields no frame at all).
 */
export async function posterFrame(
  bins: MediaBinaries,
  input: string,
  outJpg: string,
  opts: FrameOptions = {},
): Promise<void> {
  const { durationS } = await probe(bins.ffprobe, input, opts);
  const at = durationS >= 2 ? 1 : Math.max(0, durationS / 2);
  // -ss before -i seeks on the demuxer (fast) and ffmpeg still decodes to the exact frame.
  await runFfmpeg(
    bins.ffmpeg,
    ['-v', 'error', '-y', '-ss', at.toFixed(3), '-i', input, '-map', '0:v:0', '-frames:v', '1', '-q:v', '3', outJpg],
    opts,
  );
}

/**
 * The final frame as a lossless PNG, used as the start image when extending a clip on a backend
 * without native extend. The frame count is not known without decoding the whole file, so ffmpeg
 * decodes the last second and `-update 1` keeps overwriting the one image until the final frame.
 */
export async function lastFrame(
  bins: MediaBinaries,
  input: string,
  outPng: string,
  opts: FrameOptions = {},
): Promise<void> {
  await runFfmpeg(
    bins.ffmpeg,
    ['-v', 'error', '-y', '-sseof', '-1', '-i', input, '-map', '0:v:0', '-update', '1', '-f', 'image2', outPng],
    opts,
  );
}

/** The first frame as a lossless PNG: the end image of a reverse extend on a backend without native extend. */
export async function firstFrame(bins: MediaBinaries, input: string, outPng: string, opts: FrameOptions = {}): Promise<void> {
  await runFfmpeg(bins.ffmpeg, ['-v', 'error', '-y', '-i', input, '-map', '0:v:0', '-frames:v', '1', '-f', 'image2', outPng], opts);
}
