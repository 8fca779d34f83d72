import { z } from 'zod';
import { ErrorCode, transientError } from '../../errors.ts';
import type { Progress } from '../types.ts';

/**
 * Luma's Generation object. Every field is optional in the SDK's type and may be null on the wire
 * (backend-luma.md §4), so it is validated here rather than trusted: the rest of the backend only sees
 * what this parse lets through.
 */
const text = z.string().nullish();

export const generationSchema = z.looseObject({
  id: text,
  state: text,
  failure_reason: text,
  created_at: text,
  generation_type: text,
  /** The docs' examples call it `type`; which key the live API sends is unverified. */
  type: text,
  /** May be an internal name (e.g. "ray-v2"), not the request's enum: informational only. */
  model: text,
  assets: z.looseObject({ video: text, image: text, progress_video: text }).nullish(),
  request: z.record(z.string(), z.unknown()).nullish(),
});

export type LumaGeneration = z.infer<typeof generationSchema>;
export type LumaState = 'queued' | 'dreaming' | 'completed' | 'failed' | 'unknown';

export function parseGeneration(raw: unknown, what: string): LumaGeneration {
  const parsed = generationSchema.safeParse(raw);
  if (!parsed.success) {
    throw transientError(ErrorCode.BackendFailed, `Luma sent a ${what} that is not a Generation object`, { context: { issue: parsed.error.issues[0]?.message } });
  }
  return parsed.data;
}

/** A create's answer without an id cannot be tracked: the caller treats it like a lost answer. */
export function idOf(generation: LumaGeneration): string | undefined {
  return generation.id && generation.id.length > 0 ? generation.id : undefined;
}

export function stateOf(generation: LumaGeneration): LumaState {
  const state = generation.state;
  return state === 'queued' || state === 'dreaming' || state === 'completed' || state === 'failed' ? state : 'unknown';
}

export function createdAtMs(generation: LumaGeneration): number | undefined {
  const ms = generation.created_at ? Date.parse(generation.created_at) : NaN;
  return Number.isFinite(ms) ? ms : undefined;
}

/**
 * Luma reports states, not fractions. Dreaming is shown as time spent against a typical duration
 * (15–60 s for a 5 s clip, backend-luma.md §7), capped below 1 until it completes.
 */
export function toProgress(state: LumaState, dreamingSinceMs: number | undefined, expectedS: number, now = Date.now()): Progress {
  switch (state) {
    case 'completed':
      return { fraction: 1, state: 'completed', note: 'completed' };
    case 'failed':
      return { fraction: 1, state: 'failed', note: 'failed' };
    case 'dreaming': {
      const elapsed = dreamingSinceMs === undefined ? 0 : (now - dreamingSinceMs) / 1000;
      const fraction = Math.min(0.95, 0.1 + 0.85 * (elapsed / expectedS));
      return { fraction, state: 'running', etaSeconds: Math.max(1, Math.round(expectedS - elapsed)), note: 'dreaming' };
    }
    default:
      return { fraction: 0.02, state: 'queued', note: 'queued at Luma' };
  }
}

/** A rough typical dreaming time, for the progress bar and its ETA only. */
export function expectedSeconds(model: string, duration: string, resolution: string): number {
  const base = model === 'ray-flash-2' ? 20 : 40;
  const length = duration === '9s' ? 1.8 : 1;
  const size = resolution === '1080p' ? 1.5 : resolution === '4k' ? 2.5 : 1;
  return base * length * size;
}
