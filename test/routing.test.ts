import { describe, expect, it } from 'vitest';
import type { BackendName } from '../src/config.ts';
import { chooseBackend } from '../src/backends/routing.ts';
import type { Backend } from '../src/backends/types.ts';
import { ErrorCode } from '../src/errors.ts';
import type { Operation } from '../src/ledger/pricing.ts';

/** Routing is a pure decision over what backends say about themselves; these stand-ins say just that. */
function backend(name: BackendName, operations: Operation[], wait?: number): Backend {
  return {
    name, limits: { slots: 1 },
    capabilities: () => ({ operations, models: [], aspects: [], resolutions: [], durations: [], cameraMoves: [], startImage: true, endImage: true, loop: true }),
    estimate: () => 1,
    ...(wait === undefined ? {} : { estimatedWaitSeconds: async () => wait }),
  } as unknown as Backend;
}

const config = { DEFAULT_BACKEND: 'auto' as const, AUTO_GPU_MAX_WAIT_S: 120 };
const all = (gpuWait: number) => new Map<BackendName, Backend>([
  ['preview', backend('preview', ['generate', 'extend'])],
  ['luma', backend('luma', ['generate', 'extend', 'upscale', 'add_audio'])],
  ['comfyui', backend('comfyui', ['generate', 'extend'], gpuWait)],
]);

describe('routing', () => {
  it.each([
    ['auto, GPU free', all(0), undefined, undefined, 'generate', 'comfyui'],
    ['auto, GPU wait under the threshold', all(100), undefined, undefined, 'generate', 'comfyui'],
    ['auto, GPU saturated: the API', all(600), undefined, undefined, 'generate', 'luma'],
    ['auto, upscale goes where it can', all(0), undefined, undefined, 'upscale', 'luma'],
    ['team prefers gpu, even when busy', all(600), undefined, 'gpu', 'generate', 'comfyui'],
    ['team prefers api', all(0), undefined, 'api', 'generate', 'luma'],
    ['request beats team preference', all(0), 'preview', 'gpu', 'generate', 'preview'],
    ['auto with only preview', new Map([['preview', backend('preview', ['generate'])]]), undefined, undefined, 'generate', 'preview'],
    ['auto, GPU saturated and no API: the GPU anyway', new Map([['preview', backend('preview', ['generate'])], ['comfyui', backend('comfyui', ['generate'], 900)]]), undefined, undefined, 'generate', 'comfyui'],
  ] as const)('GIVEN %s THEN %s', async (_name, registry, requested, preference, operation, expected) => {
    const chosen = await chooseBackend(registry as Map<BackendName, Backend>, config, requested, preference, operation);
    expect(chosen.name).toBe(expected);
  });

  it('refuses, before holding anything, what the chosen backend cannot do or does not have', async () => {
    await expect(chooseBackend(all(0), config, 'gpu', undefined, 'upscale')).rejects.toMatchObject({ code: ErrorCode.UnsupportedOperation, message: expect.stringMatching(/It works on: luma/) });
    await expect(chooseBackend(new Map([['preview', backend('preview', ['generate'])]]), config, 'luma', undefined, 'generate')).rejects.toMatchObject({ code: ErrorCode.BackendUnavailable });
  });
});
