import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { performance } from 'node:perf_hooks';
import { pathToFileURL } from 'node:url';
import { resolveBinaries, resolveFontPath, runFfmpeg } from '../src/media/ffmpeg.ts';
import { buildPreviewArgs, type PreviewSpec, renderPreview } from '../src/media/preview-render.ts';
import { frameSize } from '../src/media/sizes.ts';

/**
 * What does the Node wrapper (spawn, stderr tail, abort wiring, cleanup) cost over running the
 * same ffmpeg command line by hand? Runs alternate so that thermal or cache drift hits both sides.
 * Usage: node --import tsx bench/preview.bench.ts [runs]
 */
export interface PreviewBenchResult {
  bench: 'preview';
  wrapperMedianMs: number;
  bareMedianMs: number;
  ratio: number;
}

function median(values: number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  const mid = Math.floor(sorted.length / 2);
  return sorted.length % 2 ? sorted[mid]! : (sorted[mid - 1]! + sorted[mid]!) / 2;
}

function spawnBare(ffmpeg: string, args: string[]): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(ffmpeg, args, { stdio: 'ignore' });
    child.on('error', reject);
    child.on('close', (code) => (code === 0 ? resolve() : reject(new Error(`ffmpeg exited ${code}`))));
  });
}

async function timed(run: () => Promise<void>): Promise<number> {
  const start = performance.now();
  await run();
  return performance.now() - start;
}

export async function main(runs = 5): Promise<PreviewBenchResult> {
  const bins = await resolveBinaries({});
  const dir = await mkdtemp(path.join(os.tmpdir(), 'dreambot-bench-preview-'));
  try {
    const startImage = path.join(dir, 'start.png');
    await runFfmpeg(bins.ffmpeg, ['-v', 'error', '-y', '-f', 'lavfi', '-i', 'testsrc2=s=1280x720', '-frames:v', '1', startImage]);
    const spec: PreviewSpec = {
      ...frameSize('16:9', '720p'),
      durationS: 5,
      camera: 'push_in',
      startImage,
      fontPath: await resolveFontPath(),
      out: path.join(dir, 'wrapper.mp4'),
    };
    const bareArgs = buildPreviewArgs({ ...spec, out: path.join(dir, 'bare.mp4') });
    // One untimed run of each warms the page cache for the 68 MB static binary.
    await renderPreview(bins, spec);
    await spawnBare(bins.ffmpeg, bareArgs);

    const wrapper: number[] = [];
    const bare: number[] = [];
    for (let i = 0; i < runs; i++) {
      const wrapperRun = () => timed(() => renderPreview(bins, spec));
      const bareRun = () => timed(() => spawnBare(bins.ffmpeg, bareArgs));
      // Alternate which goes first, so neither side always runs on a machine just woken up.
      if (i % 2 === 0) {
        wrapper.push(await wrapperRun());
        bare.push(await bareRun());
      } else {
        bare.push(await bareRun());
        wrapper.push(await wrapperRun());
      }
    }
    const wrapperMedianMs = Math.round(median(wrapper) * 10) / 10;
    const bareMedianMs = Math.round(median(bare) * 10) / 10;
    const result: PreviewBenchResult = {
      bench: 'preview',
      wrapperMedianMs,
      bareMedianMs,
      ratio: Math.round((wrapperMedianMs / bareMedianMs) * 1000) / 1000,
    };
    console.log(JSON.stringify(result));
    return result;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

const invokedDirectly = process.argv[1] !== undefined && import.meta.url === pathToFileURL(path.resolve(process.argv[1])).href;
if (invokedDirectly) {
  const runs = Number(process.argv[2] ?? 5);
  main(Number.isInteger(runs) && runs > 0 ? runs : 5).catch((error: unknown) => {
    console.error(error);
    process.exitCode = 1;
  });
}
