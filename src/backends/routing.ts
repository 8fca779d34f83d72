import type { BackendName, Config } from '../config.ts';
import { ErrorCode, userError } from '../errors.ts';
import type { Operation } from '../ledger/pricing.ts';
import type { Backend, BackendRegistry } from './types.ts';

const describe: Record<Operation, string> = {
  generate: 'Generating clips', extend: 'Extending clips', upscale: 'Upscaling', add_audio: 'Adding audio',
};

const alias: Record<string, BackendName> = { gpu: 'comfyui', api: 'luma' };

const able = (backend: Backend | undefined, operation: Operation): backend is Backend =>
  backend !== undefined && backend.capabilities().operations.includes(operation);

/**
 * Picks the backend for a request: the request's choice, else the team's preference, else DEFAULT_BACKEND.
 * "gpu" and "api" mean exactly that backend. "auto" takes the self-hosted GPUs while a job would start
 * there within AUTO_GPU_MAX_WAIT_S, else the API, else the GPUs anyway, else the offline preview, always
 * among the backends configured here that can do the operation. An explicit choice that cannot do it is
 * refused here, before any credits are held.
 */
export async function chooseBackend(
  registry: BackendRegistry,
  config: Pick<Config, 'DEFAULT_BACKEND' | 'AUTO_GPU_MAX_WAIT_S'>,
  requested: string | undefined,
  teamPreference: string | undefined,
  operation: Operation,
): Promise<Backend> {
  const choice = requested ?? teamPreference ?? config.DEFAULT_BACKEND;
  const name = (alias[choice] ?? choice) as BackendName | 'auto';
  if (name !== 'auto') {
    const backend = registry.get(name);
    if (!backend) {
      throw userError(ErrorCode.BackendUnavailable, `The ${name} backend is not set up on this server. Try --backend preview, or ask the operator to configure ${name}.`, { backend: name });
    }
    if (!able(backend, operation)) {
      throw userError(ErrorCode.UnsupportedOperation, `${describe[operation]} isn't available on the ${name} backend. ${suggest(registry, operation)}`, { backend: name, operation });
    }
    return backend;
  }
  const gpu = registry.get('comfyui');
  const api = registry.get('luma');
  if (able(gpu, operation)) {
    const wait = await gpu.estimatedWaitSeconds?.().catch(() => undefined);
    if (wait !== undefined && wait <= config.AUTO_GPU_MAX_WAIT_S) return gpu;
  }
  if (able(api, operation)) return api;
  if (able(gpu, operation)) return gpu;
  const preview = registry.get('preview');
  if (able(preview, operation)) return preview;
  throw userError(ErrorCode.UnsupportedOperation, `${describe[operation]} isn't available on this server.`);
}

function suggest(registry: BackendRegistry, operation: Operation): string {
  const names = [...registry.values()].filter((b) => able(b, operation)).map((b) => b.name);
  return names.length > 0 ? `It works on: ${names.join(', ')}.` : 'No configured backend can do it.';
}
