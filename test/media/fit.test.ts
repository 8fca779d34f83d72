import { copyFile } from 'node:fs/promises';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { ErrorCode } from '../../src/errors.ts';
import { type ResolvedBinaries, resolveBinaries, resolveFontPath, runFfmpeg } from '../../src/media/ffmpeg.ts';
import { fitUnderLimit } from '../../src/media/fit.ts';
import { lastFrame, posterFrame } from '../../src/media/frames.ts';
import { moovBeforeMdat, probe } from '../../src/media/probe.ts';
import { binaries, tempDir } from './helpers.ts';

let bins: ResolvedBinaries;
let dir: string;
let cleanup: () => Promise<void>;
/** 5 s of 720p noise with a tone, at a bitrate far above what any chat platform takes. */
let noisy: string;

beforeAll(async () => {
  bins = await binaries();
  ({ dir, cleanup } = await tempDir());
  noisy = path.join(dir, 'noisy.mp4');
  await runFfmpeg(bins.ffmpeg, [
    '-v', 'error', '-y',
    '-f', 'lavfi', '-i', 'testsrc2=s=1280x720:d=5,noise=alls=60:allf=t',
    '-f', 'lavfi', '-i', 'sine=frequency=440:duration=5',
    '-c:v', 'libx264', '-preset', 'ultrafast', '-b:v', '12M', '-pix_fmt', 'yuv420p', '-c:a', 'aac', '-shortest',
    noisy,
  ]);
});
afterAll(() => cleanup?.());

describe('resolveBinaries', () => {
  it('finds working ffmpeg and ffprobe without configuration', () => {
    expect(bins.version.ffmpeg).toMatch(/^ffmpeg version/);
    expect(bins.version.ffprobe).toMatch(/^ffprobe version/);
  });

  it('honours an explicit path', async () => {
    const explicit = await resolveBinaries({ ffmpegPath: bins.ffmpeg, ffprobePath: bins.ffprobe });
    expect(explicit.source).toEqual({ ffmpeg: 'env', ffprobe: 'env' });
    expect(explicit.ffmpeg).toBe(bins.ffmpeg);
  });

  it('rejects a bad explicit path, naming the variable to fix', async () => {
    const attempt = resolveBinaries({ ffmpegPath: path.join(dir, 'no-such-ffmpeg') });
    await expect(attempt).rejects.toMatchObject({ code: ErrorCode.Config, kind: 'permanent', message: expect.stringContaining('FFMPEG_PATH') });
  });

  it('finds a font for title cards', async () => {
    expect(await resolveFontPath()).toMatch(/DejaVuSans-Bold\.ttf$/);
    await expect(resolveFontPath(path.join(dir, 'nope.ttf'))).rejects.toMatchObject({ code: ErrorCode.Config });
  });
});

describe('runFfmpeg', () => {
  it('reports ffmpeg failures with the end of stderr', async () => {
    const attempt = runFfmpeg(bins.ffmpeg, ['-v', 'error', '-i', path.join(dir, 'missing.mp4'), '-f', 'null', '-']);
    await expect(attempt).rejects.toMatchObject({ code: ErrorCode.Internal, message: expect.stringMatching(/ffmpeg failed: .*No such file/) });
  });

  it('does not start when already aborted', async () => {
    const attempt = runFfmpeg(bins.ffmpeg, ['-version'], { signal: AbortSignal.abort() });
    await expect(attempt).rejects.toMatchObject({ code: ErrorCode.Cancelled });
  });
});

describe('probe', () => {
  it('tells faststart files from ones with moov at the end', async () => {
    const slow = path.join(dir, 'moov-last.mp4');
    await runFfmpeg(bins.ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=s=320x240:d=1', '-c:v', 'libx264', '-preset', 'ultrafast', '-pix_fmt', 'yuv420p', slow]);
    expect(await moovBeforeMdat(slow)).toBe(false);
    const info = await probe(bins.ffprobe, noisy);
    expect(info).toMatchObject({ width: 1280, height: 720, codec: 'h264', pixFmt: 'yuv420p', hasAudio: true, fps: 25 });
    expect(info.durationS).toBeCloseTo(5, 1);
  });
});

describe('fitUnderLimit', () => {
  it('re-encodes a clip that is too large to just under the limit', async () => {
    const limit = 2_000_000;
    const { sizeBytes: before } = await probe(bins.ffprobe, noisy);
    expect(before).toBeGreaterThan(limit);
    const out = path.join(dir, 'fit.mp4');
    const result = await fitUnderLimit(bins, noisy, out, limit, { tmpDir: dir });
    expect(result).toMatchObject({ reencoded: true, height: 720 });
    expect(result.sizeBytes).toBeLessThanOrEqual(limit);
    // Two-pass lands close to the target; a result far below it wasted quality.
    expect(result.sizeBytes).toBeGreaterThan(limit * 0.7);
    const info = await probe(bins.ffprobe, out);
    expect(info).toMatchObject({ codec: 'h264', pixFmt: 'yuv420p', width: 1280, height: 720, faststart: true, hasAudio: true, sizeBytes: result.sizeBytes });
  });

  it('downscales when the bitrate is too thin for the frame', async () => {
    const out = path.join(dir, 'fit-small.mp4');
    const result = await fitUnderLimit(bins, noisy, out, 300_000);
    expect(result.reencoded).toBe(true);
    expect(result.height).toBeLessThan(720);
    const info = await probe(bins.ffprobe, out);
    expect(info).toMatchObject({ height: result.height, faststart: true });
    expect(info.sizeBytes).toBeLessThanOrEqual(300_000);
  });

  it('returns a clip that already fits as it is, with faststart', async () => {
    const source = path.join(dir, 'small-source.mp4');
    await copyFile(path.join(dir, 'moov-last.mp4'), source);
    const out = path.join(dir, 'fit-copy.mp4');
    const result = await fitUnderLimit(bins, source, out, 10_000_000);
    expect(result.reencoded).toBe(false);
    expect(result.height).toBe(240);
    expect(await moovBeforeMdat(out)).toBe(true);
  });

  it('gives up on a limit no clip could meet', async () => {
    const attempt = fitUnderLimit(bins, noisy, path.join(dir, 'never.mp4'), 10_000);
    await expect(attempt).rejects.toMatchObject({ kind: 'permanent' });
  });
});

describe('frames', () => {
  it('extracts a poster JPEG and the last frame as PNG at the clip size', async () => {
    const poster = path.join(dir, 'poster.jpg');
    const last = path.join(dir, 'last.png');
    await posterFrame(bins, noisy, poster);
    await lastFrame(bins, noisy, last);
    expect(await probe(bins.ffprobe, poster)).toMatchObject({ codec: 'mjpeg', width: 1280, height: 720 });
    expect(await probe(bins.ffprobe, last)).toMatchObject({ codec: 'png', width: 1280, height: 720 });
  });
});
