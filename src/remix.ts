import type { Admitted, ReplyTarget } from './admission.ts';
import { ErrorCode, userError } from './errors.ts';
import { getGeneration } from './generations.ts';
import type { Runtime } from './runtime.ts';
import type { MemberRef, TeamRef } from './teams.ts';
import { findTeam } from './teams.ts';

export type RemixAction = 'reroll' | 'remix' | 'extend' | 'upscale' | 'add_audio';

export interface RemixInput {
  idempotencyKey: string;
  action: RemixAction;
  parentId: string;
  team: TeamRef;
  member: MemberRef;
  replyTo?: ReplyTarget;
  /** For remix (and optionally extend): the edited prompt. */
  prompt?: string;
  /** For remix: options that replace the parent's (aspect, duration, camera, …). */
  options?: Record<string, unknown>;
  /** For extend: lead into the parent instead of following it. */
  reverse?: boolean;
}

const carried = ['aspect', 'resolution', 'duration', 'camera', 'loop', 'model'] as const;

/**
 * The buttons and reactions under a clip. Each becomes an ordinary request through the one admission
 * path, charged to the member who asked (not the parent's requester) and linked to its parent.
 */
export async function remix(runtime: Runtime, input: RemixInput): Promise<Admitted> {
  const parent = await getGeneration(runtime.db, input.parentId);
  const teamId = await findTeam(runtime.db, input.team);
  if (!parent || !teamId || parent.teamId !== teamId) throw userError(ErrorCode.NotFound, "I can't find that clip in your team any more.");
  const base: Record<string, unknown> = { backend: parent.backend };
  for (const key of carried) if (parent.request[key] !== undefined) base[key] = parent.request[key];
  if (base.loop === false) delete base.loop;
  const images: Record<string, unknown> = {};
  if (parent.request.startImageId) images.startImage = { kind: 'asset', assetId: parent.request.startImageId };
  if (parent.request.endImageId) images.endImage = { kind: 'asset', assetId: parent.request.endImageId };
  let request: Record<string, unknown>;
  switch (input.action) {
    case 'reroll':
      // The same request again; an extend re-rolls as another extend of the same source clip.
      request = parent.operation === 'generate'
        ? { ...base, ...images, prompt: parent.request.prompt, parentId: parent.id }
        : { ...base, prompt: parent.request.prompt, operation: parent.operation, parentId: parent.parentId };
      break;
    case 'remix':
      request = { ...base, ...images, prompt: input.prompt ?? parent.request.prompt, ...(input.options ?? {}), parentId: parent.id };
      break;
    case 'extend':
      request = { ...base, operation: 'extend', parentId: parent.id, prompt: input.prompt ?? parent.request.prompt, ...(input.reverse ? { reverse: true } : {}) };
      delete request.loop;
      break;
    case 'upscale':
    case 'add_audio':
      request = { backend: parent.backend, operation: input.action, parentId: parent.id, prompt: input.prompt ?? '' };
      break;
  }
  if (parent.state !== 'delivered' && parent.state !== 'succeeded' && input.action !== 'reroll' && input.action !== 'remix') {
    throw userError(ErrorCode.InvalidRequest, 'That clip is not finished yet; try again once it has been posted.');
  }
  return runtime.admit({ idempotencyKey: input.idempotencyKey, team: input.team, member: input.member, request, ...(input.replyTo ? { replyTo: input.replyTo } : {}) });
}
