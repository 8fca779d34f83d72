import { writeFile } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import { toRequest } from '../../commands/dream.ts';
import { aheadOf } from '../admission.ts';
import { readAsset } from '../assets.ts';
import { getGeneration, type Generation } from '../generations.ts';
import type { ImageSource } from '../request.ts';
import type { Runtime } from '../runtime.ts';
import { EXIT, ProgressLine, formatBytes } from './output.ts';

export interface DreamOptions {
  prompt: string;
  image?: string;
  endImage?: string;
  team?: string;
  user?: string;
  backend?: string;
  model?: string;
  aspect?: string;
  duration?: string;
  resolution?: string;
  camera?: string;
  loop?: boolean;
  out?: string;
  json?: boolean;
}

export interface DreamResult {
  id: string;
  state: string;
  backend: string;
  credits_charged: number;
  credits_remaining: number;
  out: string | null;
  error?: string;
}

function imageSource(value: string): ImageSource {
  return /^https?:\/\//i.test(value) ? { kind: 'url', url: value } : { kind: 'file', path: path.resolve(value) };
}

/** `dreambot dream`: the same admission as chat, then waits for a running worker (or this process's own). */
export async function dream(runtime: Runtime, options: DreamOptions, stderr = process.stderr): Promise<{ code: number; result: DreamResult }> {
  const request = toRequest({
    prompt: options.prompt, aspect: options.aspect, duration: options.duration, resolution: options.resolution,
    camera: options.camera, model: options.model, backend: options.backend, loop: options.loop,
    image: options.image ? imageSource(options.image) : undefined,
    end_image: options.endImage ? imageSource(options.endImage) : undefined,
  });

  const admitted = await runtime.admit({
    idempotencyKey: `cli-${randomUUID()}`,
    team: { platform: 'cli', externalId: options.team ?? 'local', name: options.team ?? 'local' },
    member: { externalId: options.user ?? os.userInfo().username },
    request,
    replyTo: { platform: 'cli' },
  });
  // After admission, so a refused request starts nothing.
  if ((await runtime.workersOnline()) === 0) await runtime.startWorkers();
  if (!options.json) {
    const ahead = await aheadOf(runtime.db, admitted.generationId);
    stderr.write(`Queued ${admitted.generationId} on ${admitted.backend}: ${admitted.credits} credit${admitted.credits === 1 ? '' : 's'} held, ${admitted.creditsRemaining} left${ahead > 0 ? `, ${ahead} ahead` : ''}.\n`);
    if (admitted.notice) stderr.write(`${admitted.notice}\n`);
  }
  const progress = new ProgressLine(stderr);
  const final = await waitForEnd(runtime, admitted.generationId, (g) => { if (!options.json) progress.update(g.state, g.progress, g.progressNote ?? undefined); });
  progress.done();
  const balance = await runtime.db.execute<{ balance: number }>(
    sql`select balance from accounts where team_id = ${final.teamId} and kind = 'available'`);
  const result: DreamResult = {
    id: final.id, state: final.state, backend: final.backend, credits_charged: final.chargedCredits ?? 0,
    credits_remaining: Number(balance[0]?.balance ?? 0), out: null,
  };
  if (final.state !== 'delivered' || !final.resultAssetId) {
    result.error = final.errorMessage ?? `ended ${final.state}`;
    return { code: EXIT.failed, result };
  }
  const out = path.resolve(options.out ?? `dream-${final.id.slice(0, 8)}.mp4`);
  const clip = await readAsset(runtime.db, final.resultAssetId);
  await writeFile(out, clip.data);
  result.out = out;
  if (!options.json) {
    const meta = final.resultMeta ?? {};
    const preview = final.backend === 'preview' ? ' [PREVIEW: offline render, not AI video]' : '';
    stderr.write(`Saved ${out} (${meta.width}x${meta.height}, ${Number(meta.durationS ?? 0).toFixed(1)} s, ${formatBytes(clip.size)}); charged ${result.credits_charged}, ${result.credits_remaining} left.${preview}\n`);
  }
  return { code: EXIT.ok, result };
}

async function waitForEnd(runtime: Runtime, id: string, onTick: (g: Generation) => void): Promise<Generation> {
  for (;;) {
    const generation = await getGeneration(runtime.db, id);
    if (!generation) throw new Error(`generation ${id} vanished`);
    onTick(generation);
    if (generation.state === 'delivered' || generation.state === 'failed' || generation.state === 'cancelled') return generation;
    await new Promise((r) => setTimeout(r, 250));
  }
}
