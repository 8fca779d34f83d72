import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { type ResolvedBinaries, resolveBinaries, runFfmpeg } from '../../src/media/ffmpeg.ts';

/** Real binaries, resolved the way the service does it: no mocks anywhere in the media suite. */
export function binaries(): Promise<ResolvedBinaries> {
  return resolveBinaries({});
}

export async function tempDir(): Promise<{ dir: string; cleanup: () => Promise<void> }> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dreambot-media-test-'));
  return { dir, cleanup: () => rm(dir, { recursive: true, force: true }) };
}

/** A still from a lavfi source, e.g. `testsrc2=s=800x600` or `color=c=red:s=640x480`. */
export async function makeImage(ffmpeg: string, source: string, out: string): Promise<string> {
  await runFfmpeg(ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', source, '-frames:v', '1', out]);
  return out;
}

export interface Rgb {
  r: number;
  g: number;
  b: number;
}

/**
 * Mean colour of one frame, averaged down to a single pixel: the frame at `ss` seconds, or with
 * `sseof` every frame from that far before the end is decoded and the last one wins.
 */
export function meanColor(ffmpeg: string, file: string, at: { ss: number } | { sseof: number }): Promise<Rgb> {
  const seek = 'ss' in at ? ['-ss', String(at.ss)] : ['-sseof', String(at.sseof)];
  const frames = 'ss' in at ? ['-frames:v', '1'] : [];
  const args = ['-v', 'error', ...seek, '-i', file, '-vf', 'scale=1:1:flags=area', ...frames, '-f', 'rawvideo', '-pix_fmt', 'rgb24', '-'];
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpeg, args, { stdio: ['ignore', 'pipe', 'pipe'] });
    const chunks: Buffer[] = [];
    let stderr = '';
    child.stdout.on('data', (c: Buffer) => chunks.push(c));
    child.stderr.on('data', (c: Buffer) => (stderr += c.toString()));
    child.on('error', reject);
    child.on('close', (code) => {
      const out = Buffer.concat(chunks);
      if (code !== 0 || out.length < 3) return reject(new Error(`meanColor failed (${code}): ${stderr}`));
      resolve({ r: out[out.length - 3]!, g: out[out.length - 2]!, b: out[out.length - 1]! });
    });
  });
}
