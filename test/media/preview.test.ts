import { existsSync } from 'node:fs';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { AppError, ErrorCode } from '../../src/errors.ts';
import { type ResolvedBinaries, resolveFontPath } from '../../src/media/ffmpeg.ts';
import { buildPreviewArgs, escapeFilterValue, type PreviewSpec, renderPreview, wrapText } from '../../src/media/preview-render.ts';
import { probe } from '../../src/media/probe.ts';
import {
  type AspectRatio,
  type CameraMove,
  aspectRatios,
  cameraMoves,
  durationSeconds,
  frameSize,
  resolutions,
} from '../../src/media/sizes.ts';
import { binaries, makeImage, meanColor, tempDir } from './helpers.ts';

let bins: ResolvedBinaries;
let fontPath: string;
let dir: string;
let cleanup: () => Promise<void>;
let testImage: string;

beforeAll(async () => {
  bins = await binaries();
  fontPath = await resolveFontPath();
  ({ dir, cleanup } = await tempDir());
  testImage = await makeImage(bins.ffmpeg, 'testsrc2=s=800x600', path.join(dir, 'start.png'));
});
afterAll(() => cleanup?.());

async function expectValidClip(file: string, width: number, height: number, durationS: number) {
  const info = await probe(bins.ffprobe, file);
  expect(info).toMatchObject({ codec: 'h264', pixFmt: 'yuv420p', width, height, faststart: true, hasAudio: false });
  expect(Math.abs(info.durationS - durationS)).toBeLessThanOrEqual(0.1);
  expect(info.fps).toBe(24);
}

describe('sizes', () => {
  it('uses Luma 720p frames, scaled and rounded to even numbers', () => {
    expect(frameSize('16:9', '720p')).toEqual({ width: 1280, height: 720 });
    expect(frameSize('21:9', '540p')).toEqual({ width: 1164, height: 492 });
    expect(frameSize('9:16', '1080p')).toEqual({ width: 1080, height: 1920 });
    expect(frameSize('16:9', '4k')).toEqual({ width: 3840, height: 2160 });
    for (const a of aspectRatios) {
      for (const r of resolutions) {
        const { width, height } = frameSize(a, r);
        expect(width % 2 + (height % 2)).toBe(0);
      }
    }
    expect(durationSeconds('5s')).toBe(5);
    expect(durationSeconds('9s')).toBe(9);
  });
});

describe('title text', () => {
  it('wraps on words, cuts words longer than a line and keeps paragraphs', () => {
    expect(wrapText('a bb ccc dddd', 6)).toEqual(['a bb', 'ccc', 'dddd']);
    expect(wrapText('abcdefghij x', 4)).toEqual(['abcd', 'efgh', 'ij x']);
    expect(wrapText('one\ntwo', 20)).toEqual(['one', 'two']);
  });

  it('escapes for both the option and the filtergraph level', () => {
    expect(escapeFilterValue("a:b")).toBe('a\\\\:b');
    expect(escapeFilterValue("it's")).toBe("it\\\\\\'s");
    expect(escapeFilterValue('a,b;[c]')).toBe('a\\,b\\;\\[c\\]');
    expect(escapeFilterValue('a\\b')).toBe('a\\\\\\\\b');
  });
});

describe('buildPreviewArgs', () => {
  it('is pure: the same spec gives the same argv and the spec is untouched', () => {
    const spec: PreviewSpec = Object.freeze({
      ...frameSize('16:9', '540p'), durationS: 5, camera: 'orbit_left', title: 'a cat, surfing', fontPath: '/f.ttf', out: '/o.mp4',
    });
    const first = buildPreviewArgs(spec);
    expect(buildPreviewArgs({ ...spec })).toEqual(first);
    expect(first).toContain('+faststart');
    expect(first.slice(first.indexOf('-frames:v'), first.indexOf('-frames:v') + 2)).toEqual(['-frames:v', '120']);
    expect(first.at(-1)).toBe('/o.mp4');
  });

  it('refuses odd frame sizes', () => {
    expect(() => buildPreviewArgs({ width: 641, height: 360, durationS: 5, camera: 'static', fontPath: '/f', out: '/o' })).toThrow(AppError);
  });
});

// Every camera move once and every aspect at least once, half from an image and half as title cards.
const cases: [AspectRatio, CameraMove, 'image' | 'title'][] = [
  ['16:9', 'push_in', 'image'],
  ['9:16', 'pull_out', 'title'],
  ['1:1', 'pan_left', 'image'],
  ['4:3', 'pan_right', 'title'],
  ['3:4', 'orbit_left', 'image'],
  ['21:9', 'orbit_right', 'title'],
  ['9:21', 'crane_up', 'image'],
  ['16:9', 'crane_down', 'title'],
  ['1:1', 'static', 'image'],
];

describe('renderPreview', () => {
  it('covers every camera move and aspect', () => {
    expect(new Set(cases.map((c) => c[1]))).toEqual(new Set(cameraMoves));
    expect(new Set(cases.map((c) => c[0]))).toEqual(new Set(aspectRatios));
  });

  it.each(cases)('renders %s %s from %s at 540p', async (aspect, camera, from) => {
    const { width, height } = frameSize(aspect, '540p');
    const out = path.join(dir, `${aspect.replace(':', 'x')}-${camera}.mp4`);
    const fractions: number[] = [];
    await renderPreview(
      bins,
      { width, height, durationS: 5, camera, fontPath, out, ...(from === 'image' ? { startImage: testImage } : { title: `a ${camera} shot` }) },
      { onProgress: (f) => fractions.push(f) },
    );
    await expectValidClip(out, width, height, 5);
    // ffmpeg's own final progress block, parsed from out_time_ms, comes before the closing 1.
    expect(fractions.at(-2)).toBeGreaterThan(0.9);
    expect(fractions.at(-1)).toBe(1);
    expect(fractions.every((f, i) => f >= 0 && f <= 1 && (i === 0 || f >= fractions[i - 1]!))).toBe(true);
  });

  it('renders 9 s at 720p', async () => {
    const { width, height } = frameSize('16:9', '720p');
    const out = path.join(dir, 'long.mp4');
    await renderPreview(bins, { width, height, durationS: durationSeconds('9s'), camera: 'push_in', startImage: testImage, fontPath, out });
    await expectValidClip(out, width, height, 9);
  });

  it('crossfades from the start image to the end image', async () => {
    const red = await makeImage(bins.ffmpeg, 'color=c=red:s=640x480', path.join(dir, 'red.png'));
    const blue = await makeImage(bins.ffmpeg, 'color=c=blue:s=480x640', path.join(dir, 'blue.jpg'));
    const { width, height } = frameSize('16:9', '540p');
    const out = path.join(dir, 'fade.mp4');
    await renderPreview(bins, { width, height, durationS: 5, camera: 'pan_right', startImage: red, endImage: blue, fontPath, out });
    await expectValidClip(out, width, height, 5);

    const early = await meanColor(bins.ffmpeg, out, { ss: 0.3 });
    expect(early.r).toBeGreaterThan(200);
    expect(early.b).toBeLessThan(60);
    const middle = await meanColor(bins.ffmpeg, out, { ss: 2.75 });
    expect(middle.r).toBeGreaterThan(60);
    expect(middle.b).toBeGreaterThan(60);
    const last = await meanColor(bins.ffmpeg, out, { sseof: -0.3 });
    expect(last.b).toBeGreaterThan(200);
    expect(last.r).toBeLessThan(60);
  });

  it('renders a title card whatever the prompt contains', async () => {
    const { width, height } = frameSize('1:1', '540p');
    const out = path.join(dir, 'nasty.mp4');
    const title = String.raw`it's 50% "done": a\b, c;d [x]` + '\n%{pts} \'quoted\' \\\\ ;; ,, ]] [[ ::\ttab ' + 'long'.repeat(40);
    await renderPreview(bins, { width, height, durationS: 5, camera: 'pull_out', title, fontPath, out });
    await expectValidClip(out, width, height, 5);
  });

  it('stops ffmpeg on abort, rejects with CANCELLED and leaves no file', async () => {
    const { width, height } = frameSize('16:9', '1080p');
    const out = path.join(dir, 'cancelled.mp4');
    const controller = new AbortController();
    const rendering = renderPreview(
      bins,
      { width, height, durationS: 9, camera: 'push_in', startImage: testImage, fontPath, out },
      { signal: controller.signal, onProgress: (f) => f > 0 && controller.abort() },
    );
    setTimeout(() => controller.abort(), 3000).unref();
    await expect(rendering).rejects.toMatchObject({ code: ErrorCode.Cancelled, kind: 'permanent' });
    expect(existsSync(out)).toBe(false);
  });
});
