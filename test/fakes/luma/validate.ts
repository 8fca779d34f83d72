/**
 * Request validation as backend-luma.md §3 and §5 describe it. Where the docs leave the status open
 * (400 or 422), the fake answers 422 for a malformed shape and 400 for the documented rule violations;
 * every error body is `{detail}`.
 */
export const ASPECT_RATIOS = ['1:1', '16:9', '9:16', '4:3', '3:4', '21:9', '9:21'] as const;
export const RESOLUTIONS = ['540p', '720p', '1080p', '4k'] as const;
export const DURATIONS = ['5s', '9s'] as const;
export const VIDEO_MODELS = ['ray-2', 'ray-flash-2'] as const;

export type Keyframe = { type: 'image'; url: string } | { type: 'generation'; id: string };

export interface VideoRequest {
  generation_type: 'video';
  model: string;
  prompt?: string;
  aspect_ratio?: string;
  loop?: boolean;
  resolution?: string;
  duration?: string;
  keyframes?: { frame0?: Keyframe; frame1?: Keyframe };
  concepts?: { key: string }[];
  callback_url?: string;
}

export interface UpscaleRequest {
  generation_type: 'upscale_video';
  resolution?: string;
  callback_url?: string;
}

export interface AudioRequest {
  generation_type: 'add_audio';
  prompt?: string;
  negative_prompt?: string;
  callback_url?: string;
}

export type Invalid = { ok: false; status: 400 | 422; detail: string };
export type Checked<T> = { ok: true; value: T } | Invalid;

const bad = (detail: string): Invalid => ({ ok: false, status: 400, detail });
const malformed = (detail: string): Invalid => ({ ok: false, status: 422, detail });

const isObject = (v: unknown): v is Record<string, unknown> => typeof v === 'object' && v !== null && !Array.isArray(v);
const isHttpUrl = (v: unknown): v is string => typeof v === 'string' && /^https?:\/\/\S+$/i.test(v);

function checkCallback(body: Record<string, unknown>): Invalid | undefined {
  if (body.callback_url !== undefined && !isHttpUrl(body.callback_url)) return malformed('callback_url must be an http(s) URL');
  return undefined;
}

function checkKeyframe(name: string, value: unknown): Checked<Keyframe> {
  if (!isObject(value)) return malformed(`keyframes.${name} must be an object`);
  if (value.type === 'image') {
    if (!isHttpUrl(value.url)) return malformed(`keyframes.${name}.url must be an http(s) URL`);
    return { ok: true, value: { type: 'image', url: value.url } };
  }
  if (value.type === 'generation') {
    if (typeof value.id !== 'string' || value.id === '') return malformed(`keyframes.${name}.id must be a generation id`);
    return { ok: true, value: { type: 'generation', id: value.id } };
  }
  return malformed(`keyframes.${name}.type must be "image" or "generation"`);
}

/**
 * `isCompleted(id)` answers whether a generation keyframe may be used: only completed generations can
 * be extended or interpolated. `concepts` is the list /generations/concepts/list serves.
 */
export function validateVideo(raw: unknown, concepts: readonly string[], isCompleted: (id: string) => boolean | undefined): Checked<VideoRequest> {
  if (!isObject(raw)) return malformed('The request body must be a JSON object');
  if (raw.generation_type !== undefined && raw.generation_type !== 'video') return bad('Unknown request type');
  if (raw.model === undefined) return malformed('model is required');
  if (typeof raw.model !== 'string' || !(VIDEO_MODELS as readonly string[]).includes(raw.model)) {
    return malformed(`model must be one of: ${VIDEO_MODELS.join(', ')}`);
  }
  if (raw.aspect_ratio !== undefined && !(ASPECT_RATIOS as readonly unknown[]).includes(raw.aspect_ratio)) {
    return malformed(`aspect_ratio must be one of: ${ASPECT_RATIOS.join(', ')}`);
  }
  if (raw.resolution !== undefined && !(RESOLUTIONS as readonly unknown[]).includes(raw.resolution)) return malformed(`Unsupported resolution ${String(raw.resolution)}`);
  if (raw.duration !== undefined && !(DURATIONS as readonly unknown[]).includes(raw.duration)) return malformed(`Unsupported duration ${String(raw.duration)}`);
  if (raw.loop !== undefined && typeof raw.loop !== 'boolean') return malformed('loop must be a boolean');
  if (raw.prompt !== undefined && raw.prompt !== null && typeof raw.prompt !== 'string') return malformed('prompt must be a string');
  const callback = checkCallback(raw);
  if (callback) return callback;

  const keyframes: { frame0?: Keyframe; frame1?: Keyframe } = {};
  if (raw.keyframes !== undefined && raw.keyframes !== null) {
    if (!isObject(raw.keyframes)) return malformed('keyframes must be an object');
    for (const name of ['frame0', 'frame1'] as const) {
      const value = raw.keyframes[name];
      if (value === undefined || value === null) continue;
      const checked = checkKeyframe(name, value);
      if (!checked.ok) return checked;
      keyframes[name] = checked.value;
    }
    if (!keyframes.frame0 && !keyframes.frame1) return bad('No keyframes provided');
  }
  const frames = [keyframes.frame0, keyframes.frame1].filter((k): k is Keyframe => k !== undefined);
  const hasImage = frames.some((k) => k.type === 'image');
  const prompt = typeof raw.prompt === 'string' ? raw.prompt : '';
  if (!hasImage && prompt.length === 0) return bad('Prompt is required');
  if (prompt.length > 5000 || (!hasImage && prompt.length < 3)) return bad('Prompt must be between 3 and 5000 characters');
  // Loop is allowed exactly where there is no end keyframe (the table in backend-luma.md §3).
  if (raw.loop === true && keyframes.frame1) return bad('Loop is not supported with an end keyframe');
  for (const frame of frames) {
    if (frame.type !== 'generation') continue;
    const completed = isCompleted(frame.id);
    if (completed === undefined) return bad(`Generation ${frame.id} not found`);
    if (!completed) return bad(`Generation ${frame.id} is not completed; only completed generations can be extended`);
  }

  let conceptList: { key: string }[] | undefined;
  if (raw.concepts !== undefined && raw.concepts !== null) {
    if (!Array.isArray(raw.concepts)) return malformed('concepts must be a list of {key}');
    conceptList = [];
    for (const item of raw.concepts) {
      if (!isObject(item) || typeof item.key !== 'string') return malformed('concepts must be a list of {key}');
      if (!concepts.includes(item.key)) return bad(`Unknown concept: ${item.key}`);
      conceptList.push({ key: item.key });
    }
  }

  const value: VideoRequest = { generation_type: 'video', model: raw.model };
  if (typeof raw.prompt === 'string') value.prompt = raw.prompt;
  if (typeof raw.aspect_ratio === 'string') value.aspect_ratio = raw.aspect_ratio;
  if (typeof raw.loop === 'boolean') value.loop = raw.loop;
  if (typeof raw.resolution === 'string') value.resolution = raw.resolution;
  if (typeof raw.duration === 'string') value.duration = raw.duration;
  if (frames.length > 0) value.keyframes = keyframes;
  if (conceptList) value.concepts = conceptList;
  if (typeof raw.callback_url === 'string') value.callback_url = raw.callback_url;
  return { ok: true, value };
}

/** Upscale and audio bodies: optional, an object when sent, of their own type, with a well-formed callback. */
function derivedBody(raw: unknown, type: 'upscale_video' | 'add_audio'): Checked<Record<string, unknown>> {
  const body = raw === undefined || raw === null ? {} : raw;
  if (!isObject(body)) return malformed('The request body must be a JSON object');
  if (body.generation_type !== undefined && body.generation_type !== type) return bad('Unknown request type');
  return checkCallback(body) ?? { ok: true, value: body };
}

export function validateUpscale(raw: unknown): Checked<UpscaleRequest> {
  const checked = derivedBody(raw, 'upscale_video');
  if (!checked.ok) return checked;
  const body = checked.value;
  if (body.resolution !== undefined && !(RESOLUTIONS as readonly unknown[]).includes(body.resolution)) return malformed(`Unsupported resolution ${String(body.resolution)}`);
  const value: UpscaleRequest = { generation_type: 'upscale_video' };
  if (typeof body.resolution === 'string') value.resolution = body.resolution;
  if (typeof body.callback_url === 'string') value.callback_url = body.callback_url;
  return { ok: true, value };
}

export function validateAudio(raw: unknown): Checked<AudioRequest> {
  const checked = derivedBody(raw, 'add_audio');
  if (!checked.ok) return checked;
  const body = checked.value;
  for (const key of ['prompt', 'negative_prompt'] as const) {
    if (body[key] !== undefined && typeof body[key] !== 'string') return malformed(`${key} must be a string`);
  }
  const value: AudioRequest = { generation_type: 'add_audio' };
  if (typeof body.prompt === 'string') value.prompt = body.prompt;
  if (typeof body.negative_prompt === 'string') value.negative_prompt = body.negative_prompt;
  if (typeof body.callback_url === 'string') value.callback_url = body.callback_url;
  return { ok: true, value };
}
