import { sql } from 'drizzle-orm';
import type { Config } from './config.ts';
import type { Db, Tx } from './db/client.ts';
import { ErrorCode, userError } from './errors.ts';
import { storeAsset, readAsset } from './assets.ts';
import { chooseBackend } from './backends/routing.ts';
import type { Backend, BackendRegistry } from './backends/types.ts';
import { loadImage } from './inputs/image.ts';
import { rollPeriod } from './ledger/budget.ts';
import { placeHold } from './ledger/holds.ts';
import { moderate } from './moderation.ts';
import { parseRequest, requestHash, type ImageSource, type ParsedRequest, type StoredRequest } from './request.ts';
import { ensureMember, ensureTeam, findTeam, type MemberRef, type Platform, type TeamRef } from './teams.ts';

/** Where the finished clip goes: a reference another process can act on, never a platform object. */
export interface ReplyTarget {
  platform: Platform;
  channelId?: string;
  threadId?: string;
  messageId?: string;
  [key: string]: unknown;
}

export interface AdmissionInput {
  /** Derived from the platform's own id (interaction id, Slack trigger/event id), so a redelivery is recognised. */
  idempotencyKey: string;
  team: TeamRef;
  member: MemberRef;
  request: unknown;
  replyTo?: ReplyTarget;
}

export interface Admitted {
  generationId: string;
  duplicate: boolean;
  state: string;
  backend: string;
  model: string;
  credits: number;
  creditsRemaining: number;
  /** Jobs that will start before this one, in fair order. */
  ahead: number;
  /** Something the member should know, e.g. that their active-job cap delays this one. */
  notice?: string;
}

export interface AdmissionDeps {
  db: Db;
  config: Config;
  backends: BackendRegistry;
  /** Tells dispatchers that work is waiting; the waiting line itself is the generations table. */
  nudge: () => void;
  now?: () => Date;
}

const MAX_KEY_LENGTH = 255;

/**
 * The one path every request takes: validate → moderate → price → hold + persist (one transaction keyed by
 * the idempotency key) → enqueue. Every refusal is a user error thrown before anything is written.
 */
export async function admit(deps: AdmissionDeps, input: AdmissionInput): Promise<Admitted> {
  const now = deps.now?.() ?? new Date();
  const key = input.idempotencyKey;
  if (!key || key.length > MAX_KEY_LENGTH) throw new Error('admission needs an idempotency key of 1-255 characters');
  const parsed = parseRequest(input.request);
  const hash = requestHash(parsed);

  const replay = await findByKey(deps, key, hash);
  if (replay) return replay;

  const knownTeam = await findTeam(deps.db, input.team);
  await moderate(deps.db, knownTeam, parsed.prompt);
  const preferences = knownTeam ? await teamPreferences(deps.db, knownTeam) : {};
  const backend = chooseBackend(deps.backends, deps.config, parsed.backend, preferences.backend, parsed.operation);
  const stored = applyDefaults(parsed, backend, preferences);
  const price = backend.estimate(stored);
  if (price === null) {
    throw userError(ErrorCode.UnsupportedOperation, `The ${backend.name} backend can't make ${stored.resolution} ${stored.duration} clips with ${stored.model}. Try another resolution or duration.`);
  }
  if (parsed.parentId && knownTeam) await requireParent(deps.db, knownTeam, parsed.parentId);
  const images = await intakeImages(deps, parsed);

  const teamId = knownTeam ?? (await ensureTeam(deps.db, input.team, deps.config.DEFAULT_TEAM_CREDITS, now));
  if (parsed.parentId && !knownTeam) await requireParent(deps.db, teamId, parsed.parentId);
  const memberId = await ensureMember(deps.db, teamId, input.team.platform, input.member);

  const outcome = await deps.db.transaction(async (tx) => {
    const claimed = await tx.execute(sql`
      insert into idempotency_keys (key, team_id, generation_id, request_hash)
      values (${key}, ${teamId}, gen_random_uuid(), ${hash}) on conflict (key) do nothing returning generation_id`);
    if (claimed.length === 0) return null;
    const generationId = String(claimed[0]!.generation_id);
    const budget = await rollPeriod(tx, teamId, now);
    for (const [field, image] of Object.entries(images)) {
      const id = image.assetId ?? (await storeAsset(tx, { teamId, kind: 'input_image', mime: image.mime!, data: image.data! }));
      stored[field === 'start' ? 'startImageId' : 'endImageId'] = id;
    }
    await tx.execute(sql`
      insert into generations (id, team_id, member_id, parent_id, operation, request, state, backend, estimated_credits, reply_to)
      values (${generationId}, ${teamId}, ${memberId}, ${stored.parentId ?? null}, ${stored.operation}, ${JSON.stringify(stored)}::jsonb,
              'queued', ${backend.name}, ${price}, ${input.replyTo ? JSON.stringify(input.replyTo) : null}::jsonb)`);
    const hold = await placeHold(tx, { teamId, memberId, generationId, amount: price, budget });
    const notice = await capNotice(tx, teamId, memberId, budget.memberActiveJobs ?? deps.config.MEMBER_ACTIVE_JOBS, budget.teamActiveJobs ?? deps.config.TEAM_ACTIVE_JOBS);
    return { generationId, available: hold.available, notice };
  });
  if (!outcome) {
    const winner = await findByKey(deps, key, hash);
    if (!winner) throw new Error(`idempotency key ${key} vanished`);
    return winner;
  }
  deps.nudge();
  return {
    generationId: outcome.generationId, duplicate: false, state: 'queued', backend: backend.name, model: stored.model,
    credits: price, creditsRemaining: outcome.available, ahead: await aheadOf(deps.db, outcome.generationId),
    ...(outcome.notice ? { notice: outcome.notice } : {}),
  };
}

async function findByKey(deps: AdmissionDeps, key: string, hash: string): Promise<Admitted | null> {
  const rows = await deps.db.execute<Record<string, unknown>>(sql`
    select k.request_hash, g.id, g.state, g.backend, g.request->>'model' as model, g.estimated_credits, g.team_id
    from idempotency_keys k join generations g on g.id = k.generation_id where k.key = ${key}`);
  const r = rows[0];
  if (!r) return null;
  if (r.request_hash !== hash) {
    throw userError(ErrorCode.InvalidRequest, 'This request id was already used for a different request.');
  }
  const balance = await deps.db.execute<{ balance: number }>(sql`select balance from accounts where team_id = ${String(r.team_id)} and kind = 'available'`);
  return {
    generationId: String(r.id), duplicate: true, state: String(r.state), backend: String(r.backend), model: String(r.model),
    credits: Number(r.estimated_credits), creditsRemaining: Number(balance[0]?.balance ?? 0), ahead: await aheadOf(deps.db, String(r.id)),
  };
}

async function teamPreferences(db: Db, teamId: string): Promise<Record<string, string>> {
  const rows = await db.execute<{ preferences: Record<string, string> }>(sql`select preferences from teams where id = ${teamId}`);
  return rows[0]?.preferences ?? {};
}

function applyDefaults(parsed: ParsedRequest, backend: Backend, preferences: Record<string, string>): StoredRequest {
  const caps = backend.capabilities();
  const pick = <T extends string>(value: T | undefined, preferred: string | undefined, allowed: readonly string[], fallback: T, label: string): T => {
    const chosen = value ?? (preferred && allowed.includes(preferred) ? (preferred as T) : fallback);
    if (!allowed.includes(chosen)) {
      throw userError(ErrorCode.UnsupportedOperation, `The ${backend.name} backend doesn't offer ${label} ${chosen}. Choose one of: ${allowed.join(', ')}.`);
    }
    return chosen;
  };
  const stored: StoredRequest = {
    operation: parsed.operation,
    prompt: parsed.prompt,
    aspect: pick(parsed.aspect, preferences.aspect, caps.aspects, '16:9', 'aspect ratio'),
    resolution: pick(parsed.resolution, preferences.resolution, caps.resolutions, caps.resolutions.includes('720p') ? '720p' : (caps.resolutions[0] as '720p'), 'resolution'),
    duration: pick(parsed.duration, preferences.duration, caps.durations, '5s', 'duration'),
    loop: parsed.loop,
    model: pick(parsed.model, preferences.model, caps.models, caps.models[0] as string, 'model'),
  };
  if (parsed.camera) stored.camera = pick(parsed.camera, undefined, caps.cameraMoves, parsed.camera, 'camera move');
  if (parsed.parentId) stored.parentId = parsed.parentId;
  if (parsed.startImage && !caps.startImage) throw userError(ErrorCode.UnsupportedOperation, `The ${backend.name} backend can't start from an image.`);
  if (parsed.endImage && !caps.endImage) throw userError(ErrorCode.UnsupportedOperation, `The ${backend.name} backend can't end on an image.`);
  if (parsed.loop && !caps.loop) throw userError(ErrorCode.UnsupportedOperation, `The ${backend.name} backend can't make loops.`);
  return stored;
}

interface Intake { assetId?: string; mime?: string; data?: Buffer }

async function intakeImages(deps: AdmissionDeps, parsed: ParsedRequest): Promise<Record<string, Intake>> {
  const out: Record<string, Intake> = {};
  const load = async (source: ImageSource): Promise<Intake> => {
    if (source.kind === 'asset') {
      const asset = await readAsset(deps.db, source.assetId);
      return { assetId: asset.id };
    }
    const image = await loadImage(source, { maxBytes: deps.config.MAX_IMAGE_BYTES, allowPrivateNetworks: deps.config.ALLOW_PRIVATE_IMAGE_URLS });
    return { mime: image.mime, data: image.data };
  };
  if (parsed.startImage) out.start = await load(parsed.startImage);
  if (parsed.endImage) out.end = await load(parsed.endImage);
  return out;
}

async function requireParent(db: Db, teamId: string, parentId: string): Promise<void> {
  const rows = await db.execute<{ state: string }>(sql`select state from generations where id = ${parentId} and team_id = ${teamId}`);
  const state = rows[0]?.state;
  if (!state) throw userError(ErrorCode.NotFound, "I can't find that clip in your team.");
  if (state !== 'delivered' && state !== 'succeeded') throw userError(ErrorCode.InvalidRequest, 'That clip is not finished yet; try again once it has been posted.');
}

async function capNotice(tx: Tx, teamId: string, memberId: string, memberCap: number, teamCap: number): Promise<string | undefined> {
  const rows = await tx.execute<{ member: number; team: number }>(sql`
    select count(*) filter (where member_id = ${memberId}) as member, count(*) as team
    from generations where team_id = ${teamId} and state in ('dispatched','running')`);
  const r = rows[0]!;
  if (Number(r.member) >= memberCap) return `You have ${r.member} clips in progress (the limit is ${memberCap} at a time); this one starts as soon as one finishes.`;
  if (Number(r.team) >= teamCap) return `Your team has ${r.team} clips in progress (the limit is ${teamCap} at a time); this one starts as soon as one finishes.`;
  return undefined;
}

/** Position in fair order: the team's own earlier jobs, plus, from each other team, as many as this job's team rank. */
export async function aheadOf(db: Db, generationId: string): Promise<number> {
  const rows = await db.execute<{ ahead: number }>(sql`
    with me as (select id, team_id, backend, seq from generations where id = ${generationId} and state = 'queued'),
    rank as (select count(*) + 1 as r from generations g, me where g.state = 'queued' and g.backend = me.backend and g.team_id = me.team_id and g.seq < me.seq),
    others as (select g.team_id, count(*) as n from generations g, me where g.state = 'queued' and g.backend = me.backend and g.team_id <> me.team_id group by g.team_id)
    select coalesce((select r - 1 from rank), 0) + coalesce((select sum(least(n, (select r from rank))) from others), 0) as ahead
    from me`);
  return rows[0] ? Number(rows[0].ahead) : 0;
}
