import { mkdtemp, rm, stat } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { ErrorCode, permanentError } from '../errors.ts';
import { type MediaBinaries, runFfmpeg } from './ffmpeg.ts';
import { probe } from './probe.ts';

export interface FitOptions {
  signal?: AbortSignal;
  /** Where the two-pass log goes; the system temp dir by default. */
  tmpDir?: string;
}

export interface FitResult {
  sizeBytes: number;
  reencoded: boolean;
  height: number;
}

const AUDIO_BPS = 128_000;
/** The muxer's overhead and x264's rate control both overshoot a little; aim 5% under. */
const HEADROOM = 0.95;
/** Below this many bits per pixel per frame H.264 turns to mush; fewer, larger pixels look better. */
const MIN_BPP = 0.04;
/** Short sides to step down to, largest first. Never used to scale up. */
const DOWNSCALE_STEPS = [540, 360];
/** Under this the clip is a slideshow of blocks at any size; refusing is more honest. */
const MIN_VIDEO_BPS = 40_000;
/** x264 spends this much more effort per frame than veryfast: worth it when bits are scarce. */
const PRESET = 'fast';

interface Plan {
  videoBps: number;
  width: number;
  height: number;
  filter: string | undefined;
}

/** Picks the output frame: the source size unless the bitrate is too thin for it. */
function plan(videoBps: number, width: number, height: number, fps: number): Plan {
  const portrait = height > width;
  let short = Math.min(width, height);
  let long = Math.max(width, height);
  let filter: string | undefined;
  for (const step of DOWNSCALE_STEPS) {
    if (videoBps / (width * height * fps) >= MIN_BPP || short <= step) break;
    long = Math.round((long * step) / short / 2) * 2;
    short = step;
    width = portrait ? short : long;
    height = portrait ? long : short;
    // -2 keeps the aspect with an even size on the other side.
    filter = portrait ? `scale=${step}:-2` : `scale=-2:${step}`;
  }
  if (!filter && (width % 2 !== 0 || height % 2 !== 0)) {
    // yuv420p needs even dimensions; clips from other backends are not guaranteed to have them.
    filter = 'scale=trunc(iw/2)*2:trunc(ih/2)*2';
  }
  return { videoBps: Math.floor(videoBps), width, height, filter };
}

/**
 * Makes `output` an MP4 no larger than `limitBytes` (a chat platform's upload limit), re-encoding
 * with two-pass target bitrate only when the input does not fit as it is. Two passes because a
 * single CRF or capped-CRF pass on short clips routinely overshoots (queue-and-credits.md §6).
 */
export async function fitUnderLimit(
  bins: MediaBinaries,
  input: string,
  output: string,
  limitBytes: number,
  opts: FitOptions = {},
): Promise<FitResult> {
  const info = await probe(bins.ffprobe, input, opts);
  if (info.sizeBytes <= limitBytes) {
    // Remuxing is cheap and guarantees faststart whatever produced the file.
    await runFfmpeg(
      bins.ffmpeg,
      ['-v', 'error', '-y', '-i', input, '-map', '0:v:0', '-map', '0:a:0?', '-c', 'copy', '-movflags', '+faststart', '-f', 'mp4', output],
      opts,
    );
    const { size } = await stat(output);
    if (size <= limitBytes) return { sizeBytes: size, reencoded: false, height: info.height };
  }

  if (!(info.durationS > 0)) {
    throw permanentError(ErrorCode.Internal, `cannot fit ${path.basename(input)}: unknown duration`);
  }
  const audioBps = info.hasAudio ? AUDIO_BPS : 0;
  const targetBps = ((limitBytes * 8) / info.durationS - audioBps) * HEADROOM;
  const fps = info.fps > 0 ? info.fps : 24;

  const workDir = await mkdtemp(path.join(opts.tmpDir ?? os.tmpdir(), 'dreambot-fit-'));
  let lastSize = info.sizeBytes;
  try {
    // The second try only happens when the first overshot, which x264 does on very short clips.
    for (const factor of [1, 0.85]) {
      const p = plan(targetBps * factor, info.width, info.height, fps);
      if (p.videoBps < MIN_VIDEO_BPS) break;
      // A passlogfile per call: the default name collides between concurrent jobs in one directory.
      const passlog = path.join(workDir, `pass-${factor}`);
      const common = [
        '-map', '0:v:0',
        ...(p.filter ? ['-vf', p.filter] : []),
        '-c:v', 'libx264', '-preset', PRESET, '-b:v', String(p.videoBps),
        '-pix_fmt', 'yuv420p', '-passlogfile', passlog, '-threads', '2',
      ];
      await runFfmpeg(
        bins.ffmpeg,
        ['-v', 'error', '-y', '-i', input, ...common, '-pass', '1', '-an', '-f', 'null', '-'],
        opts,
      );
      const audio = info.hasAudio ? ['-map', '0:a:0', '-c:a', 'aac', '-b:a', '128k'] : ['-an'];
      await runFfmpeg(
        bins.ffmpeg,
        ['-v', 'error', '-y', '-i', input, ...common, '-pass', '2', ...audio, '-movflags', '+faststart', '-f', 'mp4', output],
        opts,
      );
      lastSize = (await stat(output)).size;
      if (lastSize <= limitBytes) return { sizeBytes: lastSize, reencoded: true, height: p.height };
    }
  } finally {
    await rm(workDir, { recursive: true, force: true });
  }
  // Leave no oversized file behind for a caller to upload by mistake.
  await rm(output, { force: true });
  throw permanentError(
    ErrorCode.Internal,
    `cannot fit a ${info.durationS.toFixed(1)} s clip under ${limitBytes} bytes (best attempt ${lastSize} bytes)`,
    { context: { limitBytes, durationS: info.durationS, lastSize } },
  );
}
