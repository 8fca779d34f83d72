import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { resolveBinaries, runFfmpeg, type MediaBinaries } from '../../../src/media/ffmpeg.ts';

/** The files the fake's CDN serves: one silent clip, the same with a sound track (for add_audio), a still. */
export interface FakeMedia {
  video: Buffer;
  videoWithAudio: Buffer;
  thumbnail: Buffer;
}

export interface FakeMediaOptions {
  width?: number;
  height?: number;
  seconds?: number;
  bins?: MediaBinaries;
}

/**
 * Renders the fake's clips once, at start, with ffmpeg's test pattern: real H.264 MP4s (moov first, as
 * a CDN would serve them), small enough to render in about a second on a busy machine.
 */
export async function renderFakeMedia(options: FakeMediaOptions = {}): Promise<FakeMedia> {
  const bins = options.bins ?? (await resolveBinaries({}));
  const { width = 256, height = 144, seconds = 5 } = options;
  const dir = await mkdtemp(path.join(os.tmpdir(), 'fake-luma-media-'));
  try {
    const pattern = ['-f', 'lavfi', '-i', `testsrc=size=${width}x${height}:rate=24:duration=${seconds}`];
    const h264 = ['-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', '-threads', '1', '-movflags', '+faststart', '-f', 'mp4'];
    const files = { video: path.join(dir, 'video.mp4'), audio: path.join(dir, 'audio.mp4'), thumb: path.join(dir, 'thumb.jpg') };
    await Promise.all([
      runFfmpeg(bins.ffmpeg, ['-v', 'error', '-y', ...pattern, '-an', ...h264, files.video]),
      runFfmpeg(bins.ffmpeg, [
        '-v', 'error', '-y', ...pattern, '-f', 'lavfi', '-i', `sine=frequency=440:duration=${seconds}`,
        '-map', '0:v', '-map', '1:a', '-c:a', 'aac', '-b:a', '64k', '-shortest', ...h264, files.audio,
      ]),
      runFfmpeg(bins.ffmpeg, ['-v', 'error', '-y', ...pattern, '-frames:v', '1', files.thumb]),
    ]);
    const [video, videoWithAudio, thumbnail] = await Promise.all([readFile(files.video), readFile(files.audio), readFile(files.thumb)]);
    return { video, videoWithAudio, thumbnail };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}
