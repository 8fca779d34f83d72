import type { BackendName, Config } from '../config.ts';
import { ErrorCode, userError } from '../errors.ts';
import type { Operation } from '../ledger/pricing.ts';
import type { Backend, BackendRegistry } from './types.ts';

const describe: Record<Operation, string> = {
  generate: 'Generating clips', extend: 'Extending clips', upscale: 'Upscaling', add_audio: 'Adding audio',
};

/**
 * Picks the backend for a request: the request's choice, else the team's preference, else DEFAULT_BACKEND.
 * "auto" prefers self-hosted GPUs, then the API, then the offline preview, among the backends this
 * deployment has configured that can do the operation. An explicit choice that cannot is refused here,
 * before any credits are held.
 */
export function chooseBackend(
  registry: BackendRegistry,
  config: Pick<Config, 'DEFAULT_BACKEND'>,
  requested: string | undefined,
  teamPreference: string | undefined,
  operation: Operation,
): Backend {
  const choice = requested ?? teamPreference ?? config.DEFAULT_BACKEND;
  const alias: Record<string, BackendName> = { gpu: 'comfyui', api: 'luma' };
  const name = (alias[choice] ?? choice) as BackendName | 'auto';
  if (name !== 'auto') {
    const backend = registry.get(name);
    if (!backend) {
      throw userError(ErrorCode.BackendUnavailable, `The ${name} backend is not set up on this server. Try --backend preview, or ask the operator to configure ${name}.`, { backend: name });
    }
    if (!backend.capabilities().operations.includes(operation)) {
      throw userError(ErrorCode.UnsupportedOperation, `${describe[operation]} isn't available on the ${name} backend. ${suggest(registry, operation)}`, { backend: name, operation });
    }
    return backend;
  }
  for (const candidate of ['comfyui', 'luma', 'preview'] as const) {
    const backend = registry.get(candidate);
    if (backend && backend.capabilities().operations.includes(operation)) return backend;
  }
  throw userError(ErrorCode.UnsupportedOperation, `${describe[operation]} isn't available on this server.`);
}

function suggest(registry: BackendRegistry, operation: Operation): string {
  const able = [...registry.values()].filter((b) => b.capabilities().operations.includes(operation)).map((b) => b.name);
  return able.length > 0 ? `It works on: ${able.join(', ')}.` : 'No configured backend can do it.';
}
