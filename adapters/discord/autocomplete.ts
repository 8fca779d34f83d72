import type { Runtime } from '../../src/runtime.ts';

/**
 * What /dream suggests while a member types `model` or `backend` (Discord autocomplete): only what this
 * deployment can make clips with, narrowed by what was typed, with the team's default first. Pure apart
 * from `generatingBackends`, which reads the configured backends' declared capabilities (no calls out).
 */
export const AUTOCOMPLETE_OPTIONS = ['model', 'backend'] as const;
export type AutocompleteOption = (typeof AUTOCOMPLETE_OPTIONS)[number];

/** Discord shows at most 25; names and string values are 1–100 characters. */
export const MAX_CHOICES = 25;
const MAX_TEXT = 100;

export interface Choice {
  name: string;
  value: string;
}

/** A backend as suggestions need it: its name and the models it offers. */
export interface BackendOffer {
  name: string;
  models: readonly string[];
}

export interface SuggestInput {
  focused: AutocompleteOption;
  /** What the member has typed into the focused option so far. */
  typed: string;
  /** The backend option of the same interaction, when the member filled it. */
  backend?: string | null;
  /** The configured backends that can generate, in the registry's order. */
  backends: readonly BackendOffer[];
  /** The team's defaults (teams.preferences): `model`, `backend` ("gpu"/"api" name a backend too). */
  preferences: Readonly<Record<string, string>>;
}

const AUTO = 'auto';
/** The team-default aliases setDefaults accepts, as routing resolves them. */
const alias: Record<string, string> = { gpu: 'comfyui', api: 'luma' };
const DEFAULT_MARK = ' (team default)';

/** The backends configured in this deployment that can make a new clip (operation `generate`). */
export function generatingBackends(runtime: Pick<Runtime, 'backends'>): BackendOffer[] {
  const offers: BackendOffer[] = [];
  for (const [name, backend] of runtime.backends) {
    const caps = backend.capabilities();
    if (caps.operations.includes('generate')) offers.push({ name, models: caps.models });
  }
  return offers;
}

/**
 * Narrows `values` to those containing `typed` (case-insensitive): the team default first (when it is among
 * them), then those that start with it, then the rest that contain it, each group in the given order.
 */
function rank(values: readonly string[], typed: string, preferred: string | undefined): string[] {
  const q = typed.trim().toLowerCase();
  const matching = [...new Set(values)].filter((v) => v.toLowerCase().includes(q));
  const first = preferred !== undefined && matching.includes(preferred) ? [preferred] : [];
  const rest = matching.filter((v) => v !== preferred);
  return [...first, ...rest.filter((v) => v.toLowerCase().startsWith(q)), ...rest.filter((v) => !v.toLowerCase().startsWith(q))];
}

function label(text: string, suffix = ''): string {
  const room = MAX_TEXT - suffix.length;
  return (text.length <= room ? text : `${text.slice(0, room - 1)}…`) + suffix;
}

export function suggest(input: SuggestInput): Choice[] {
  const { backends, preferences } = input;
  if (input.focused === 'backend') {
    const names = [AUTO, ...backends.map((b) => b.name)];
    const preferred = preferences.backend ? (alias[preferences.backend] ?? preferences.backend) : undefined;
    return rank(names, input.typed, preferred).slice(0, MAX_CHOICES)
      .map((name) => ({ name: label(name, name === preferred ? DEFAULT_MARK : ''), value: name }));
  }
  // Models: those of the backend chosen in this interaction when it is one configured here, else of all.
  const chosen = input.backend ? (alias[input.backend] ?? input.backend).trim().toLowerCase() : undefined;
  const only = chosen ? backends.find((b) => b.name === chosen) : undefined;
  const from = only ? [only] : backends;
  const owners = new Map<string, string[]>();
  for (const b of from) for (const model of b.models) owners.set(model, [...(owners.get(model) ?? []), b.name]);
  const preferred = preferences.model || undefined;
  return rank([...owners.keys()], input.typed, preferred)
    .filter((model) => model.length <= MAX_TEXT)
    .slice(0, MAX_CHOICES)
    .map((model) => {
      // Across several backends, say whose model it is; the value stays the model's own name.
      const whose = only || from.length < 2 ? '' : ` · ${owners.get(model)!.join(', ')}`;
      return { name: label(model, `${whose}${model === preferred ? DEFAULT_MARK : ''}`), value: model };
    });
}
