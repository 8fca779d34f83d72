import type { BackendName } from '../config.ts';
import type { Operation } from '../ledger/pricing.ts';
import type { StoredRequest } from '../request.ts';

export interface BackendCapabilities {
  operations: readonly Operation[];
  models: readonly string[];
  aspects: readonly string[];
  resolutions: readonly string[];
  durations: readonly string[];
  cameraMoves: readonly string[];
  startImage: boolean;
  endImage: boolean;
  loop: boolean;
}

/** Global limits for one backend, honoured across every worker process. */
export interface BackendLimits {
  /** Jobs running at once (Luma: 10; ComfyUI: one per server; preview: CPU cores). */
  slots: number;
  /** Creates per minute, when the provider limits them (Luma: 20). */
  createsPerMinute?: number;
}

/** Local files the worker materialised for this job from stored assets. */
export interface BackendInputs {
  startImage?: string;
  endImage?: string;
  /** The parent generation's clip, for extend/upscale on backends that need the pixels. */
  parentClip?: string;
  /** The parent's backend handle, for backends that extend natively (Luma keyframe type "generation"). */
  parentHandle?: string;
}

export interface BackendJob {
  generationId: string;
  request: StoredRequest;
  inputs: BackendInputs;
  /** A scratch folder owned by this attempt; removed afterwards. */
  workDir: string;
  /**
   * Which submission this is (1 = first). Above 1, an earlier submit may have reached the backend before
   * its process died, so a backend without idempotent submission should look for that work first.
   */
  submitAttempt?: number;
}

export interface Progress {
  /** 0..1 */
  fraction: number;
  state: 'queued' | 'running' | 'completed' | 'failed';
  etaSeconds?: number;
  note?: string;
}

export interface BackendOutcome {
  /** Credits to capture; the hold caps it. Undefined means "the estimate". */
  actualCredits?: number;
  meta?: Record<string, unknown>;
}

export interface RunHooks {
  signal: AbortSignal;
  onProgress: (progress: Progress) => void;
}

/**
 * The seam every generator sits behind. `submit` starts work and returns a handle the worker records
 * before waiting; `resume` waits on a handle, after a crash just as after a submit, so a restarted job
 * never pays twice. Failures are thrown as AppError: user/permanent ones are not retried.
 */
export interface Backend {
  readonly name: BackendName;
  readonly limits: BackendLimits;
  capabilities(): BackendCapabilities;
  /** Credits to hold for this request, or null when the backend cannot price (so cannot do) it. */
  estimate(request: StoredRequest): number | null;
  /**
   * Refuses, with a user error, what this backend cannot do for this request in this deployment (e.g.
   * images on Luma without PUBLIC_BASE_URL). Runs in admission, before anything is held.
   */
  check?(request: StoredRequest, inputs: { startImage: boolean; endImage: boolean; parent: boolean }): void;
  /** Seconds until a new job would start here (for "auto" routing); undefined when unknown. */
  estimatedWaitSeconds?(): Promise<number | undefined>;
  submit(job: BackendJob, signal: AbortSignal): Promise<string>;
  resume(handle: string, job: BackendJob, hooks: RunHooks): Promise<BackendOutcome>;
  progress(handle: string): Promise<Progress>;
  cancel(handle: string): Promise<void>;
  /** Writes the finished clip to `destination` (an MP4 path). */
  fetchResult(handle: string, job: BackendJob, destination: string, signal: AbortSignal): Promise<void>;
  close?(): Promise<void>;
}

export type BackendRegistry = ReadonlyMap<BackendName, Backend>;
