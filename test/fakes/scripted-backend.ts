import { setTimeout as sleep } from 'node:timers/promises';
import { ErrorCode, permanentError, transientError } from '../../src/errors.ts';
import type { Backend, BackendCapabilities, BackendJob, BackendOutcome, Progress, RunHooks } from '../../src/backends/types.ts';
import type { StoredRequest } from '../../src/request.ts';

/**
 * A backend that does what its prompt tells it, for tests of the worker's retry and release rules:
 *   "#transient=N"  resume fails with a transient error the first N times for that generation
 *   "#refuse"       resume fails permanently, the way a moderation refusal does
 *   "#slow=MS"      resume waits MS before finishing
 * The clip itself comes from the real backend it wraps, and every call is counted.
 */
export class ScriptedBackend implements Backend {
  readonly name;
  readonly limits;
  readonly submits = new Map<string, number>();
  readonly resumes = new Map<string, number>();
  readonly cancels: string[] = [];

  constructor(private readonly inner: Backend, slots = 2) {
    this.name = inner.name;
    this.limits = { slots };
  }

  capabilities(): BackendCapabilities {
    return this.inner.capabilities();
  }

  estimate(request: StoredRequest): number | null {
    return this.inner.estimate(request);
  }

  async submit(job: BackendJob, signal: AbortSignal): Promise<string> {
    this.submits.set(job.generationId, (this.submits.get(job.generationId) ?? 0) + 1);
    return this.inner.submit(job, signal);
  }

  async resume(handle: string, job: BackendJob, hooks: RunHooks): Promise<BackendOutcome> {
    const count = (this.resumes.get(job.generationId) ?? 0) + 1;
    this.resumes.set(job.generationId, count);
    const prompt = job.request.prompt;
    const transient = /#transient=(\d+)/.exec(prompt);
    if (transient && count <= Number(transient[1])) throw transientError(ErrorCode.BackendTimeout, `scripted transient failure ${count}`);
    if (prompt.includes('#refuse')) throw permanentError(ErrorCode.ContentRefused, 'The video service refused this prompt (content rules). Rephrase it; nothing was charged.');
    const slow = /#slow=(\d+)/.exec(prompt);
    if (slow) await sleep(Number(slow[1]), undefined, { signal: hooks.signal });
    return this.inner.resume(handle, job, hooks);
  }

  progress(handle: string): Promise<Progress> {
    return this.inner.progress(handle);
  }

  async cancel(handle: string): Promise<void> {
    this.cancels.push(handle);
    await this.inner.cancel(handle);
  }

  fetchResult(handle: string, job: BackendJob, destination: string, signal: AbortSignal): Promise<void> {
    return this.inner.fetchResult(handle, job, destination, signal);
  }
}
