import { createdAtMs, idOf, type LumaGeneration } from './generation.ts';

/**
 * Finding a generation by what was asked for. The API has no idempotency key, so after a create whose
 * answer was lost (timeout, connection drop, 5xx) the only way to learn whether it happened is to look
 * through `generations.list` for one with our request. The callback URL, when set, carries dreambot's
 * generation id, which makes the match exact; without it the prompt, settings and keyframes must all
 * agree and the creation time must fall in the window. Ids already claimed by another job are skipped.
 */
export type ListPage = (query: { limit: number; offset: number }, signal?: AbortSignal) => Promise<LumaGeneration[]>;

const DISTINGUISHING = ['prompt', 'callback_url', 'frame0', 'frame1', 'negative_prompt'];
/** Clocks differ: a generation created "before" we sent the request by this much still counts. */
export const CLOCK_SKEW_MS = 120_000;

/** The request fields that identify it, as comparable strings. Image URLs lose their (expiring) query. */
export function normalizeRequest(request: Record<string, unknown> | null | undefined): Map<string, string> {
  const out = new Map<string, string>();
  if (!request) return out;
  for (const key of ['generation_type', 'prompt', 'model', 'aspect_ratio', 'resolution', 'duration', 'callback_url', 'negative_prompt']) {
    const value = request[key];
    if (typeof value === 'string' && value !== '') out.set(key, value);
  }
  if (typeof request.loop === 'boolean') out.set('loop', String(request.loop));
  const keyframes = request.keyframes as Record<string, unknown> | null | undefined;
  for (const frame of ['frame0', 'frame1']) {
    const k = keyframes?.[frame] as { type?: unknown; url?: unknown; id?: unknown } | null | undefined;
    if (k?.type === 'generation' && typeof k.id === 'string') out.set(frame, `generation:${k.id}`);
    if (k?.type === 'image' && typeof k.url === 'string') out.set(frame, `image:${withoutQuery(k.url)}`);
  }
  if (Array.isArray(request.concepts)) {
    const keys = request.concepts.map((c) => (c && typeof c === 'object' ? String((c as { key?: unknown }).key) : '')).sort();
    out.set('concepts', keys.join(','));
  }
  return out;
}

/**
 * Fields present on both sides must agree (the echo may leave some out, or add defaults we did not
 * send), and at least one field that tells requests apart must be present on both.
 */
export function sameRequest(ours: Map<string, string>, theirs: Map<string, string>): boolean {
  let distinguishing = false;
  for (const [key, value] of ours) {
    const other = theirs.get(key);
    if (other === undefined) continue;
    if (other !== value) return false;
    if (DISTINGUISHING.includes(key)) distinguishing = true;
  }
  // A request that names nothing distinguishing (an upscale without callback) matches on type alone.
  if (!distinguishing && ![...ours.keys()].some((k) => DISTINGUISHING.includes(k))) return ours.get('generation_type') === theirs.get('generation_type');
  return distinguishing;
}

export interface FindOptions {
  /** Only generations created at or after this time (minus clock skew) are candidates. */
  since: number;
  exclude?: ReadonlySet<string>;
  signal?: AbortSignal;
  /** Pages of 100 to look through; the list's order is undocumented, so every page is filtered. */
  pages?: number;
  /** Allowance for clock differences when `since` is our clock; 0 when it is Luma's own created_at. */
  skewMs?: number;
}

/** The earliest generation after `since` whose request matches `request`, or undefined. */
export async function findByRequest(list: ListPage, request: Record<string, unknown>, options: FindOptions): Promise<LumaGeneration | undefined> {
  const ours = normalizeRequest(request);
  const floor = options.since - (options.skewMs ?? CLOCK_SKEW_MS);
  const matches: LumaGeneration[] = [];
  for (let page = 0; page < (options.pages ?? 2); page++) {
    const generations = await list({ limit: 100, offset: page * 100 }, options.signal);
    for (const g of generations) {
      const id = idOf(g);
      if (!id || options.exclude?.has(id)) continue;
      const created = createdAtMs(g);
      if (created !== undefined && created < floor) continue;
      if (sameRequest(ours, normalizeRequest(g.request))) matches.push(g);
    }
    if (generations.length < 100) break;
  }
  matches.sort((a, b) => (createdAtMs(a) ?? 0) - (createdAtMs(b) ?? 0));
  return matches[0];
}

function withoutQuery(url: string): string {
  const q = url.indexOf('?');
  return q < 0 ? url : url.slice(0, q);
}
