import { mkdtemp } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { resolveBinaries, runFfmpeg } from '../../../src/media/ffmpeg.ts';

/**
 * Real H.264 MP4s for the fake's SaveVideo: ffmpeg's test pattern at the size, length and rate the
 * graph asked for, rendered once per combination and shared by every fake server in the process.
 */
export interface ClipSpec {
  width: number;
  height: number;
  frames: number;
  fps: number;
}

const rendered = new Map<string, Promise<string>>();
let dir: Promise<string> | undefined;

export function renderClip(spec: ClipSpec): Promise<string> {
  const key = `${spec.width}x${spec.height}x${spec.frames}@${spec.fps}`;
  let file = rendered.get(key);
  if (!file) {
    file = (async () => {
      dir ??= mkdtemp(path.join(os.tmpdir(), 'fake-comfyui-clips-'));
      const out = path.join(await dir, `${key}.mp4`);
      const bins = await resolveBinaries({});
      await runFfmpeg(bins.ffmpeg, [
        '-hide_banner', '-v', 'error', '-y',
        '-f', 'lavfi', '-i', `testsrc2=size=${spec.width}x${spec.height}:rate=${spec.fps}`,
        '-frames:v', String(spec.frames), '-c:v', 'libx264', '-preset', 'ultrafast', '-crf', '32',
        '-pix_fmt', 'yuv420p', '-threads', '2', '-movflags', '+faststart', '-f', 'mp4', out,
      ]);
      return out;
    })();
    rendered.set(key, file);
    file.catch(() => rendered.delete(key));
  }
  return file;
}
