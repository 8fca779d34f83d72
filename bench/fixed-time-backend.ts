import { copyFile } from 'node:fs/promises';
import { setTimeout as sleep } from 'node:timers/promises';
import type { Backend, BackendCapabilities, BackendJob, BackendOutcome, Progress, RunHooks } from '../src/backends/types.ts';
import type { StoredRequest } from '../src/request.ts';

/**
 * A backend whose every job takes exactly `ms` and returns the same pre-rendered clip: what a benchmark
 * of scheduling needs, with the generation cost taken out. It borrows the real backend's capabilities.
 */
export class FixedTimeBackend implements Backend {
  readonly name;
  readonly limits;
  readonly started: { generationId: string; at: number }[] = [];

  constructor(private readonly like: Backend, slots: number, private readonly ms: number, private readonly clip: string) {
    this.name = like.name;
    this.limits = { slots };
  }

  capabilities(): BackendCapabilities {
    return this.like.capabilities();
  }

  estimate(request: StoredRequest): number | null {
    return this.like.estimate(request);
  }

  async submit(job: BackendJob): Promise<string> {
    this.started.push({ generationId: job.generationId, at: performance.now() });
    return `fixed-${job.generationId}`;
  }

  async resume(_handle: string, _job: BackendJob, hooks: RunHooks): Promise<BackendOutcome> {
    await sleep(this.ms, undefined, { signal: hooks.signal });
    return {};
  }

  async progress(): Promise<Progress> {
    return { fraction: 0, state: 'running' };
  }

  async cancel(): Promise<void> {}

  async fetchResult(_handle: string, _job: BackendJob, destination: string): Promise<void> {
    await copyFile(this.clip, destination);
  }
}
