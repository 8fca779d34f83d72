import { randomUUID } from 'node:crypto';
import type { AudioRequest, Keyframe, UpscaleRequest, VideoRequest } from './validate.ts';
import type { FakeLumaStats } from './stats.ts';

export type FakeState = 'queued' | 'dreaming' | 'completed' | 'failed';
export type FakeKind = 'video' | 'upscale_video' | 'add_audio';

export interface GenerationPlan {
  failure?: string;
  dreamingMs?: number;
  silent: boolean;
}

export interface ImageFetch {
  generationId: string;
  url: string;
  status: number | null;
  contentType: string | null;
  bytes: number;
  ok: boolean;
}

/** One generation as the fake keeps it; `view()` turns it into the API's Generation object. */
export interface FakeGeneration {
  id: string;
  kind: FakeKind;
  state: FakeState;
  createdAt: Date;
  request: VideoRequest | UpscaleRequest | AudioRequest;
  parentId?: string;
  failureReason: string | null;
  plan: GenerationPlan;
  /** GET /generations/{id} calls for this generation, and when the first one saw it completed. */
  reads: number;
  completedAt?: number;
  completedSeenAt?: number;
  timers: NodeJS.Timeout[];
  running: boolean;
}

export interface LifecycleDeps {
  stats: FakeLumaStats;
  timing: () => { queuedMs: number; dreamingMs: number };
  /** Called after each state change (dreaming, completed, failed): callbacks go out from here. */
  onChange: (generation: FakeGeneration) => void;
  log: (line: string) => void;
}

/** The internal model names the API may report instead of the request's enum (backend-luma.md §4). */
const internalModel: Record<string, string> = { 'ray-2': 'ray-v2', 'ray-flash-2': 'ray-flash-v2' };

/**
 * Generations and their states: queued → dreaming → completed | failed, on timers. Entering dreaming,
 * a video generation reads its image keyframes over HTTP, as the real service must; one it cannot read
 * fails with "Failed to read user input frames".
 */
export class GenerationLifecycle {
  readonly generations = new Map<string, FakeGeneration>();
  readonly imageFetches: ImageFetch[] = [];

  constructor(private readonly deps: LifecycleDeps) {}

  add(kind: FakeKind, request: FakeGeneration['request'], plan: GenerationPlan, parentId?: string): FakeGeneration {
    const generation: FakeGeneration = {
      id: randomUUID(), kind, state: 'queued', createdAt: new Date(), request, failureReason: null, plan,
      reads: 0, timers: [], running: true, ...(parentId ? { parentId } : {}),
    };
    this.generations.set(generation.id, generation);
    this.deps.stats.started();
    this.later(generation, this.deps.timing().queuedMs, () => void this.startDreaming(generation));
    return generation;
  }

  get(id: string): FakeGeneration | undefined {
    return this.generations.get(id);
  }

  /** Newest first. */
  list(limit: number, offset: number): { page: FakeGeneration[]; total: number } {
    const all = [...this.generations.values()].reverse();
    return { page: all.slice(offset, offset + limit), total: all.length };
  }

  delete(id: string): boolean {
    const generation = this.generations.get(id);
    if (!generation) return false;
    this.stop(generation);
    this.generations.delete(id);
    return true;
  }

  runningCount(): number {
    let n = 0;
    for (const g of this.generations.values()) if (g.running) n++;
    return n;
  }

  stopAll(): void {
    for (const g of this.generations.values()) this.stop(g);
  }

  private stop(generation: FakeGeneration): void {
    for (const timer of generation.timers) clearTimeout(timer);
    generation.timers = [];
    if (generation.running) {
      generation.running = false;
      this.deps.stats.ended();
    }
  }

  private later(generation: FakeGeneration, ms: number, fn: () => void): void {
    const timer = setTimeout(fn, Math.max(0, ms));
    timer.unref();
    generation.timers.push(timer);
  }

  private async startDreaming(generation: FakeGeneration): Promise<void> {
    if (!this.generations.has(generation.id)) return;
    this.transition(generation, 'dreaming');
    const images = generation.kind === 'video' ? imageKeyframes(generation.request as VideoRequest) : [];
    const results = await Promise.all(images.map((url) => this.fetchImage(generation.id, url)));
    if (!this.generations.has(generation.id) || generation.state !== 'dreaming') return;
    if (results.some((ok) => !ok)) {
      this.finish(generation, 'Failed to read user input frames');
      return;
    }
    const dreamingMs = generation.plan.dreamingMs ?? this.deps.timing().dreamingMs;
    this.later(generation, dreamingMs, () => this.finish(generation, generation.plan.failure ?? null));
  }

  private finish(generation: FakeGeneration, failure: string | null): void {
    if (!this.generations.has(generation.id)) return;
    generation.failureReason = failure;
    this.stop(generation);
    if (!failure) generation.completedAt = Date.now();
    this.transition(generation, failure ? 'failed' : 'completed');
  }

  private transition(generation: FakeGeneration, state: FakeState): void {
    generation.state = state;
    this.deps.log(`${generation.id} ${state}${generation.failureReason ? ` (${generation.failureReason})` : ''}`);
    this.deps.onChange(generation);
  }

  private async fetchImage(generationId: string, url: string): Promise<boolean> {
    const record: ImageFetch = { generationId, url, status: null, contentType: null, bytes: 0, ok: false };
    this.imageFetches.push(record);
    try {
      const res = await fetch(url, { signal: AbortSignal.timeout(5000), headers: { 'user-agent': 'fake-luma-image-fetch' } });
      record.status = res.status;
      record.contentType = res.headers.get('content-type');
      const body = Buffer.from(await res.arrayBuffer());
      record.bytes = body.length;
      record.ok = res.ok && body.length > 0 && (record.contentType ?? '').startsWith('image/');
    } catch (error) {
      this.deps.log(`image fetch failed for ${generationId}: ${(error as Error).message}`);
    }
    return record.ok;
  }

  /** The Generation object as the API returns it. Every field may be null or missing in the real thing. */
  view(generation: FakeGeneration, cdnBase: string): Record<string, unknown> {
    const model = 'model' in generation.request ? (internalModel[generation.request.model] ?? generation.request.model) : null;
    const assets = generation.state === 'completed'
      ? { video: `${cdnBase}/${generation.id}.mp4`, image: `${cdnBase}/${generation.id}.jpg` }
      : generation.state === 'dreaming' ? { progress_video: `${cdnBase}/${generation.id}.mp4` } : null;
    return {
      id: generation.id,
      generation_type: 'video',
      state: generation.state,
      failure_reason: generation.failureReason,
      created_at: generation.createdAt.toISOString(),
      assets,
      model,
      request: generation.request,
    };
  }
}

function imageKeyframes(request: VideoRequest): string[] {
  const frames = [request.keyframes?.frame0, request.keyframes?.frame1].filter((k): k is Keyframe => k !== undefined);
  return frames.flatMap((k) => (k.type === 'image' ? [k.url] : []));
}
