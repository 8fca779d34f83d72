import { randomUUID } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import type { Backend, Progress } from '../../src/backends/types.ts';
import { operations } from '../../src/request.ts';
import { probe } from '../../src/media/probe.ts';
import { aspectRatios, cameraMoves, durations, resolutions } from '../../src/media/sizes.ts';
import type { StoredRequest } from '../../src/request.ts';

export interface ContractSubject {
  backend: Backend;
  /** ffprobe, to check that what fetchResult wrote is a real clip. */
  ffprobe: string;
  cleanup?: () => Promise<void>;
}

/**
 * What every backend promises the worker, whatever it runs on: sane capabilities, a price for a basic
 * request, a submit → resume → fetchResult cycle that leaves a playable MP4, progress that can be read
 * once work has started, and a cancel that does not throw. Each implementation's test file calls this
 * with a factory (the real backend, or the real one against a fake service).
 */
export function backendContract(name: string, makeBackend: () => Promise<ContractSubject>): void {
  describe(`backend contract: ${name}`, () => {
    let subject: ContractSubject;
    let dir: string;

    beforeAll(async () => {
      subject = await makeBackend();
      dir = await mkdtemp(path.join(os.tmpdir(), `contract-${name}-`));
    });
    afterAll(async () => {
      await subject?.backend.close?.();
      await subject?.cleanup?.();
      if (dir) await rm(dir, { recursive: true, force: true });
    });

    const basicRequest = (): StoredRequest => {
      const caps = subject.backend.capabilities();
      return {
        operation: 'generate', prompt: 'a paper boat drifts across a pond', aspect: '16:9',
        resolution: caps.resolutions.includes('540p') ? '540p' : (caps.resolutions[0] as StoredRequest['resolution']),
        duration: '5s', loop: false, model: caps.models[0]!,
      };
    };
    const job = async (request: StoredRequest) => ({
      generationId: randomUUID(), request, inputs: {}, workDir: await mkdtemp(path.join(dir, 'job-')),
    });

    it('has sane capabilities and limits', () => {
      const { backend } = subject;
      expect(backend.name).toBe(name);
      const caps = backend.capabilities();
      expect(caps.operations).toContain('generate');
      for (const op of caps.operations) expect(operations).toContain(op);
      expect(caps.models.length).toBeGreaterThan(0);
      expect(caps.aspects).toContain('16:9');
      for (const a of caps.aspects) expect(aspectRatios).toContain(a);
      expect(caps.resolutions.length).toBeGreaterThan(0);
      for (const r of caps.resolutions) expect(resolutions).toContain(r);
      expect(caps.durations).toContain('5s');
      for (const d of caps.durations) expect(durations).toContain(d);
      for (const c of caps.cameraMoves) expect(cameraMoves).toContain(c);
      expect(typeof caps.startImage).toBe('boolean');
      expect(Number.isInteger(backend.limits.slots) && backend.limits.slots >= 1).toBe(true);
    });

    it('prices a basic request', () => {
      const price = subject.backend.estimate(basicRequest());
      expect(price).not.toBeNull();
      expect(Number.isInteger(price) && price! >= 0).toBe(true);
    });

    it('submit → resume → fetchResult leaves an MP4 that probes, with progress readable on the way', async () => {
      const { backend } = subject;
      const j = await job(basicRequest());
      const signal = new AbortController().signal;
      const handle = await backend.submit(j, signal);
      expect(typeof handle).toBe('string');
      expect(handle.length).toBeGreaterThan(0);
      const seen: Progress[] = [];
      const outcome = await backend.resume(handle, j, { signal, onProgress: (p) => seen.push(p) });
      const progress = await backend.progress(handle);
      for (const p of [...seen, progress]) {
        expect(p.fraction).toBeGreaterThanOrEqual(0);
        expect(p.fraction).toBeLessThanOrEqual(1);
        expect(['queued', 'running', 'completed', 'failed']).toContain(p.state);
      }
      if (outcome.actualCredits !== undefined) expect(outcome.actualCredits).toBeGreaterThanOrEqual(0);
      const out = path.join(j.workDir, 'result.mp4');
      await backend.fetchResult(handle, j, out, signal);
      const info = await probe(subject.ffprobe, out);
      expect(info.codec).toBe('h264');
      expect(info.formatName).toContain('mp4');
      expect(info.width).toBeGreaterThan(0);
      expect(info.durationS).toBeGreaterThan(0);
    });

    it('cancel of a started job does not throw', async () => {
      const { backend } = subject;
      const j = await job(basicRequest());
      const handle = await backend.submit(j, new AbortController().signal);
      await expect(backend.cancel(handle)).resolves.toBeUndefined();
    });
  });
}
