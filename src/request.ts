import { createHash } from 'node:crypto';
import { z } from 'zod';
import { backendNames } from './config.ts';
import { ErrorCode, userError, type AppError } from './errors.ts';

/** The neutral request every entry point builds: chat adapters and the CLI alike. */
import { aspectRatios as aspects, cameraMoves, durations, resolutions } from './media/sizes.ts';

export { aspects, cameraMoves, durations, resolutions };
export const operations = ['generate', 'extend', 'upscale', 'add_audio'] as const;
export const backendChoices = ['auto', ...backendNames] as const;

export const MAX_PROMPT_CHARS = 5000;
export const MIN_PROMPT_CHARS = 3;

export type Aspect = (typeof aspects)[number];
export type Resolution = (typeof resolutions)[number];
export type Duration = (typeof durations)[number];
export type CameraMove = (typeof cameraMoves)[number];

/** Where an input image comes from before intake; after intake it is an asset id. */
export const imageSourceSchema = z.union([
  z.object({ kind: z.literal('file'), path: z.string().min(1) }).strict(),
  z.object({ kind: z.literal('url'), url: z.string().min(1) }).strict(),
  z.object({ kind: z.literal('bytes'), data: z.instanceof(Buffer), filename: z.string().optional() }).strict(),
  z.object({ kind: z.literal('asset'), assetId: z.string().uuid() }).strict(),
]);
export type ImageSource = z.infer<typeof imageSourceSchema>;

export const requestSchema = z
  .object({
    operation: z.enum(operations).default('generate'),
    prompt: z.string().default(''),
    aspect: z.enum(aspects).optional(),
    resolution: z.enum(resolutions).optional(),
    duration: z.enum(durations).optional(),
    camera: z.enum(cameraMoves).optional(),
    loop: z.boolean().default(false),
    model: z.string().min(1).max(64).optional(),
    backend: z.enum(backendChoices).optional(),
    startImage: imageSourceSchema.optional(),
    endImage: imageSourceSchema.optional(),
    parentId: z.string().uuid().optional(),
    /** With operation extend: the new clip leads INTO the parent (reverse extend) instead of following it. */
    reverse: z.boolean().default(false),
  })
  .strict();
export type RawRequest = z.input<typeof requestSchema>;
export type ParsedRequest = z.output<typeof requestSchema>;

/** A request as stored on the generation: defaults applied, images replaced by asset ids. */
export interface StoredRequest {
  operation: (typeof operations)[number];
  prompt: string;
  aspect: Aspect;
  resolution: Resolution;
  duration: Duration;
  camera?: CameraMove;
  loop: boolean;
  model: string;
  startImageId?: string;
  endImageId?: string;
  parentId?: string;
  /** Extend backwards: the new clip ends where the parent starts. */
  reverse?: true;
}

const labels: Record<string, string> = {
  aspect: 'aspect ratio', resolution: 'resolution', duration: 'duration', camera: 'camera move',
  backend: 'backend', operation: 'operation', model: 'model', loop: 'loop', reverse: 'reverse',
};

/** Turns a zod failure into one sentence the member can act on. */
function explain(error: z.ZodError): AppError {
  const issue = error.issues[0]!;
  const field = String(issue.path[0] ?? 'request');
  const label = labels[field] ?? field;
  if (issue.code === 'unrecognized_keys') {
    return userError(ErrorCode.InvalidRequest, `Unknown option ${issue.keys.map((k) => `"${k}"`).join(', ')}. Options are: ${Object.keys(requestSchema.shape).join(', ')}.`);
  }
  if (issue.code === 'invalid_value' && 'values' in issue) {
    return userError(ErrorCode.InvalidRequest, `That ${label} isn't one I know. Choose one of: ${issue.values.join(', ')}.`, { field });
  }
  return userError(ErrorCode.InvalidRequest, `The ${label} is not valid: ${issue.message}.`, { field });
}

/** Validates shape and the rules no backend can fix; pure, so it reads as a table in tests. */
export function parseRequest(raw: unknown): ParsedRequest {
  const parsed = requestSchema.safeParse(raw);
  if (!parsed.success) throw explain(parsed.error);
  const request = { ...parsed.data, prompt: parsed.data.prompt.trim() };
  if (request.prompt.length > MAX_PROMPT_CHARS) {
    throw userError(ErrorCode.PromptTooLong, `That prompt is ${request.prompt.length.toLocaleString('en-US')} characters; the limit is ${MAX_PROMPT_CHARS.toLocaleString('en-US')}. Shorten it: one subject, one action, one camera move works best.`, { length: request.prompt.length });
  }
  const needsPrompt = request.operation === 'generate' && !request.startImage && !request.endImage;
  if (needsPrompt && request.prompt.length < MIN_PROMPT_CHARS) {
    throw userError(ErrorCode.PromptMissing, 'Describe the clip in a few words (subject, action, setting), or give a start image.');
  }
  if (request.loop && request.endImage) {
    throw userError(ErrorCode.InvalidRequest, 'A loop ends where it starts, so it cannot also have an end image. Drop one of the two.');
  }
  if (request.reverse && request.operation !== 'extend') {
    throw userError(ErrorCode.InvalidRequest, 'Only an extend can run in reverse (a clip that leads into the chosen one).');
  }
  if ((request.operation === 'extend' || request.operation === 'upscale' || request.operation === 'add_audio') && !request.parentId) {
    throw userError(ErrorCode.InvalidRequest, `To ${request.operation.replace('_', ' ')} a clip, say which one (its id).`);
  }
  return request;
}

/** A stable fingerprint of what was asked, so a reused idempotency key with other parameters is caught. */
export function requestHash(request: ParsedRequest): string {
  const describe = (img: ImageSource | undefined) => {
    if (!img) return null;
    if (img.kind === 'bytes') return { kind: 'bytes', sha256: createHash('sha256').update(img.data).digest('hex') };
    return img;
  };
  const canonical = { ...request, startImage: describe(request.startImage), endImage: describe(request.endImage) };
  const sorted = Object.fromEntries(Object.entries(canonical).sort(([a], [b]) => a.localeCompare(b)));
  return createHash('sha256').update(JSON.stringify(sorted)).digest('hex');
}
