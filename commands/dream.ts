import { aspects, backendChoices, cameraMoves, durations, resolutions, type ImageSource, type RawRequest } from '../src/request.ts';

/**
 * /dream, declared once. Each entry point renders these definitions for its platform (CLI flags today;
 * Discord options and Slack flags/modal fields later) and maps what the person gave to a neutral request
 * with `toRequest`. Validation happens in admission, the same for everyone.
 */
export type OptionKind = 'string' | 'boolean' | 'image';

export interface OptionDef {
  /** Option name as people type it: `end_image` on Discord, `--end-image` on the CLI. */
  name: string;
  kind: OptionKind;
  description: string;
  required?: boolean;
  choices?: readonly string[];
  /**
   * Suggested as the member types, from what this deployment and team offer (Discord: autocomplete). Where
   * a platform cannot have both, the suggestions replace the fixed `choices`.
   */
  autocomplete?: true;
  /** The request field it fills. */
  field: keyof RawRequest;
}

export const dreamCommand = {
  name: 'dream',
  description: 'Make a short video clip from a prompt, optionally from a start and an end image',
  options: [
    { name: 'prompt', kind: 'string', field: 'prompt', required: true, description: 'What happens: subject, action, setting, camera, light' },
    { name: 'image', kind: 'image', field: 'startImage', description: 'Start image (PNG, JPEG or WebP)' },
    { name: 'end_image', kind: 'image', field: 'endImage', description: 'End image to arrive at' },
    { name: 'aspect', kind: 'string', field: 'aspect', choices: aspects, description: 'Aspect ratio' },
    { name: 'duration', kind: 'string', field: 'duration', choices: durations, description: 'Clip length' },
    { name: 'resolution', kind: 'string', field: 'resolution', choices: resolutions, description: 'Resolution' },
    { name: 'camera', kind: 'string', field: 'camera', choices: cameraMoves, description: 'Camera move' },
    { name: 'loop', kind: 'boolean', field: 'loop', description: 'End where it starts, for a seamless loop' },
    { name: 'model', kind: 'string', field: 'model', autocomplete: true, description: 'Model (the backend decides which exist)' },
    { name: 'backend', kind: 'string', field: 'backend', choices: backendChoices, autocomplete: true, description: 'Where it is made' },
  ] as const satisfies readonly OptionDef[],
};

export type DreamValues = Partial<Record<(typeof dreamCommand.options)[number]['name'], string | boolean | ImageSource>>;

/** Maps given option values to a request; unknown names are kept so admission can say which is unknown. */
export function toRequest(values: Record<string, unknown>): Record<string, unknown> {
  const byName = new Map<string, OptionDef>(dreamCommand.options.map((o) => [o.name, o]));
  const request: Record<string, unknown> = {};
  for (const [name, value] of Object.entries(values)) {
    if (value === undefined || value === false) continue;
    const def = byName.get(name);
    request[def ? def.field : name] = value;
  }
  return request;
}
