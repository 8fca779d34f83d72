import type LumaAI from 'lumaai';
import { ErrorCode, userError } from '../../errors.ts';
import { assetUrl } from '../../http/signing.ts';
import type { StoredRequest } from '../../request.ts';

/**
 * What dreambot asks for, as the Dream Machine API wants it (backend-luma.md §3): which endpoint, and
 * the body with keyframes, concepts and callback. Pure, so the operation table reads as code.
 */
type GenerationCreateParams = LumaAI.GenerationCreateParams;

export type LumaCall =
  | { kind: 'video'; body: GenerationCreateParams }
  | { kind: 'upscale'; parentId: string; body: LumaAI.GenerationUpscaleParams }
  | { kind: 'audio'; parentId: string; body: LumaAI.GenerationAudioParams };

type Keyframe = NonNullable<GenerationCreateParams['keyframes']>['frame0'];
type VideoModel = GenerationCreateParams['model'];
type Aspect = NonNullable<GenerationCreateParams['aspect_ratio']>;

export const LUMA_VIDEO_MODELS = ['ray-2', 'ray-flash-2'] as const satisfies readonly VideoModel[];

export interface BodyContext {
  /** Where Luma fetches input images; `check` refuses image requests when there is none. */
  publicBaseUrl: string | undefined;
  assetSecret: string;
  imageUrlTtlS: number;
  callbackUrl: string | undefined;
  /** The Luma id of the clip this builds on (extend, upscale, audio). */
  parentId: string | undefined;
  /** The camera move as a Luma concept key, already checked against concepts/list. */
  concept: string | undefined;
  now?: number;
}

interface Inputs {
  startImage: boolean;
  endImage: boolean;
}

/** Which end of the clip each keyframe sits at; `frame1` being set is what rules out `loop`. */
export function keyframePlan(request: Pick<StoredRequest, 'operation' | 'reverse'>, inputs: Inputs): { frame0?: 'image' | 'parent'; frame1?: 'image' | 'parent' } {
  if (request.operation === 'extend' && request.reverse) {
    return inputs.startImage ? { frame0: 'image', frame1: 'parent' } : { frame1: 'parent' }; // reverse extend
  }
  if (request.operation === 'extend') {
    if (inputs.startImage) return { frame0: 'image', frame1: 'parent' }; // reverse extend from a start image
    if (inputs.endImage) return { frame0: 'parent', frame1: 'image' }; // extend into an end image
    return { frame0: 'parent' };
  }
  return { ...(inputs.startImage ? { frame0: 'image' as const } : {}), ...(inputs.endImage ? { frame1: 'image' as const } : {}) };
}

/**
 * Admission's Luma rules, so nothing is held for a request Luma would refuse: images need a public URL
 * to be fetched from; a prompt of 3–5000 characters unless an image keyframe; no loop with an end
 * keyframe; at most two keyframes.
 */
export function checkRequest(request: StoredRequest, inputs: Inputs & { parent: boolean }, publicBaseUrl: string | undefined): void {
  const images = inputs.startImage || inputs.endImage;
  if (images && !publicBaseUrl) {
    throw userError(ErrorCode.UnsupportedOperation,
      'The luma backend needs this server to have a public address to send it images: the operator must set PUBLIC_BASE_URL (and ASSET_SIGNING_SECRET). Until then, use --backend preview for image requests, or drop the image.',
      { backend: 'luma', missing: 'PUBLIC_BASE_URL' });
  }
  if ((request.operation === 'upscale' || request.operation === 'add_audio') && images) {
    throw userError(ErrorCode.InvalidRequest, `${request.operation === 'upscale' ? 'Upscaling' : 'Adding audio'} works on the clip alone; leave out the images.`);
  }
  if (request.operation === 'extend' && inputs.startImage && inputs.endImage) {
    throw userError(ErrorCode.InvalidRequest, 'An extension can use the clip plus one image (a start image, or an end image), not both.');
  }
  const plan = keyframePlan(request, inputs);
  if (request.loop && plan.frame1) {
    throw userError(ErrorCode.InvalidRequest, 'A loop cannot end on a given frame on Luma: drop the loop, or the end image (or the start image of a backwards extension).');
  }
  const hasImageKeyframe = plan.frame0 === 'image' || plan.frame1 === 'image';
  if ((request.operation === 'generate' || request.operation === 'extend') && !hasImageKeyframe && request.prompt.length < 3) {
    throw userError(ErrorCode.PromptMissing, request.operation === 'extend'
      ? 'Say what happens next (a few words): Luma needs a prompt to extend a clip.'
      : 'Describe the clip in a few words (subject, action, setting), or give a start image.');
  }
}

/** The request as the API call that makes it. `job.request` must have passed `checkRequest`. */
export function buildCall(request: StoredRequest, ctx: BodyContext): LumaCall {
  const callback = ctx.callbackUrl ? { callback_url: ctx.callbackUrl } : {};
  if (request.operation === 'upscale' || request.operation === 'add_audio') {
    if (!ctx.parentId) throw parentMissing(request.operation);
    if (request.operation === 'upscale') {
      // Upscaling to the clip's own size is meaningless; below 1080p means "the service's next size up".
      const resolution = request.resolution === '1080p' || request.resolution === '4k' ? request.resolution : '4k';
      return { kind: 'upscale', parentId: ctx.parentId, body: { generation_type: 'upscale_video', resolution, ...callback } };
    }
    return { kind: 'audio', parentId: ctx.parentId, body: { generation_type: 'add_audio', ...(request.prompt ? { prompt: request.prompt } : {}), ...callback } };
  }
  const plan = keyframePlan(request, { startImage: !!request.startImageId, endImage: !!request.endImageId });
  const image = (assetId: string | undefined): Keyframe => {
    if (!assetId || !ctx.publicBaseUrl) throw userError(ErrorCode.UnsupportedOperation, 'Luma needs PUBLIC_BASE_URL to fetch input images.');
    return { type: 'image', url: assetUrl(ctx.publicBaseUrl, ctx.assetSecret, assetId, ctx.imageUrlTtlS, ctx.now) };
  };
  const frame = (which: 'image' | 'parent' | undefined, assetId: string | undefined): Keyframe | undefined => {
    if (which === 'image') return image(assetId);
    if (which === 'parent') {
      if (!ctx.parentId) throw parentMissing('extend');
      return { type: 'generation', id: ctx.parentId };
    }
    return undefined;
  };
  // An image keyframe is always where the member put it: the start image at frame0, the end image at
  // frame1; the parent clip takes the other end.
  const frame0 = frame(plan.frame0, request.startImageId);
  const frame1 = frame(plan.frame1, request.endImageId);
  const body: GenerationCreateParams = {
    generation_type: 'video',
    model: request.model as VideoModel,
    aspect_ratio: request.aspect as Aspect,
    resolution: request.resolution,
    duration: request.duration,
    ...(request.prompt ? { prompt: request.prompt } : {}),
    ...(request.loop ? { loop: true } : {}),
    ...(frame0 || frame1 ? { keyframes: { ...(frame0 ? { frame0 } : {}), ...(frame1 ? { frame1 } : {}) } } : {}),
    ...(ctx.concept ? { concepts: [{ key: ctx.concept }] } : {}),
    ...callback,
  };
  return { kind: 'video', body };
}

function parentMissing(operation: string) {
  return userError(ErrorCode.UnsupportedOperation,
    `Only clips made on the luma backend can be ${operation === 'add_audio' ? 'given audio' : `${operation === 'upscale' ? 'upscal' : 'extend'}ed`} there. Pick a clip made with --backend luma.`);
}
