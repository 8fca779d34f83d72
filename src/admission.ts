import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Config } from './config.ts';
import { executePrepared, type Db } from './db/client.ts';
import type postgres from 'postgres';
import { ErrorCode, isAppError, userError } from './errors.ts';
import { readAsset } from './assets.ts';
import { chooseBackend } from './backends/routing.ts';
import type { Backend, BackendRegistry } from './backends/types.ts';
import { loadImage } from './inputs/image.ts';
import type { ActiveJobs, HoldWriter } from './ledger/admit-hold.ts';
import { rollPeriod } from './ledger/budget.ts';
import { periodKey } from './ledger/periods.ts';
import { findBlocked } from './moderation.ts';
import { parseRequest, requestHash, type ImageSource, type ParsedRequest, type StoredRequest } from './request.ts';
import type { TeamDirectory, TeamSettings } from './team-directory.ts';
import type { MemberRef, Platform, TeamRef } from './teams.ts';

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
  /** Something the member should know, e.g. that their active-job cap delays this one. */
  notice?: string;
}

export interface AdmissionDeps {
  db: Db;
  /** The same database's raw client, for the hot path's prepared statements. */
  sql: postgres.Sql;
  /** Admission's group-committed write (one per database pool). */
  holds: HoldWriter;
  /** Team settings and member ids, kept in memory and checked by the write. */
  directory: TeamDirectory;
  config: Config;
  backends: BackendRegistry;
  /** Tells dispatchers that work is waiting; the waiting line itself is the generations table. */
  nudge: () => void;
  now?: () => Date;
}

const MAX_KEY_LENGTH = 255;
/** A batch neighbour's refusal can send a request round again; each round settles at least one of them. */
const MAX_ROUNDS = 200;

/**
 * The one path every request takes: validate → moderate → price → hold + persist (one atomic statement
 * keyed by the idempotency key) → enqueue. Every refusal is a user error, and nothing is written for it.
 * Nothing is read from the database first: team settings come from the directory's copy, and the write
 * itself says when that copy (or the budget period) is out of date, in which case we go round again.
 */
export async function admit(deps: AdmissionDeps, input: AdmissionInput): Promise<Admitted> {
  const now = deps.now?.() ?? new Date();
  const key = input.idempotencyKey;
  if (!key || key.length > MAX_KEY_LENGTH) throw new Error('admission needs an idempotency key of 1-255 characters');
  const parsed = parseRequest(input.request);
  const hash = requestHash(parsed);
  const generationId = randomUUID();
  let images: Images | undefined;

  for (let round = 0, stalePeriod = 0; ; round++) {
    if (round >= MAX_ROUNDS) throw userError(ErrorCode.RateLimited, 'Your team is sending many requests at once; nothing was charged. Try again in a moment.');
    const team = await deps.directory.team(input.team, now);
    let backend: Backend;
    let stored: StoredRequest;
    let price: number;
    try {
      ({ backend, stored, price } = await prepare(deps, parsed, team));
      images ??= await intakeImages(deps, parsed);
    } catch (error) {
      // A platform's redelivery of a request admitted earlier gets that generation back, even if the
      // request would be refused now (a word blocked since, an image URL gone). Only refusals pay this read.
      const earlier = isAppError(error) ? await findAdmitted(deps.sql, key, hash) : null;
      if (earlier) return earlier;
      throw error;
    }
    Object.assign(stored, images.ids);
    const memberId = await deps.directory.member(team.teamId, input.team.platform, input.member);

    const result = await deps.holds.admitHold({
      key, requestHash: hash, teamId: team.teamId, configVersion: team.version, memberId, generationId,
      periodKey: periodKey(team.period, now), amount: price, operation: stored.operation, request: { ...stored }, backend: backend.name,
      parentId: stored.parentId ?? null, replyTo: input.replyTo ?? null, images: images.fresh,
    });
    switch (result.outcome) {
      case 'admitted': {
        deps.nudge();
        const notice = capNotice(result.active, deps.config);
        return {
          generationId, duplicate: false, state: 'queued', backend: backend.name, model: stored.model,
          credits: price, creditsRemaining: result.available, ...(notice ? { notice } : {}),
        };
      }
      case 'duplicate': {
        const earlier = await findAdmitted(deps.sql, key, hash);
        if (!earlier) throw new Error('idempotency key vanished');
        return earlier;
      }
      case 'stale-config':
        deps.directory.forget(input.team);
        continue;
      case 'stale-period':
        // A new period began (or an admin changed the budget's period): roll it, which is idempotent.
        if (++stalePeriod > 2) throw new Error('the budget period kept changing during admission');
        await deps.db.transaction((tx) => rollPeriod(tx, team.teamId, now));
        deps.directory.forget(input.team);
        continue;
      case 'contended':
        continue;
    }
  }
}

/** Moderation, routing, defaults and price, from the team's settings: every check that needs no write. */
async function prepare(deps: AdmissionDeps, parsed: ParsedRequest, team: TeamSettings): Promise<{ backend: Backend; stored: StoredRequest; price: number }> {
  const hit = findBlocked(parsed.prompt, team.blocked);
  if (hit) throw userError(ErrorCode.BlockedWord, `Your team's admins have blocked "${hit}" in prompts. Rephrase without it; nothing was charged.`, { word: hit });
  const backend = await chooseBackend(deps.backends, deps.config, parsed.backend, team.preferences.backend, parsed.operation);
  const stored = applyDefaults(parsed, backend, team.preferences);
  backend.check?.(stored, { startImage: !!parsed.startImage, endImage: !!parsed.endImage, parent: !!parsed.parentId });
  const price = backend.estimate(stored);
  if (price === null) {
    throw userError(ErrorCode.UnsupportedOperation, `The ${backend.name} backend can't make ${stored.resolution} ${stored.duration} clips with ${stored.model}. Try another resolution or duration.`);
  }
  if (parsed.parentId) await requireParent(deps.db, team.teamId, parsed.parentId);
  return { backend, stored, price };
}

/** The generation an idempotency key already made, if any; the same key for a different request is an error. */
async function findAdmitted(client: postgres.Sql, key: string, hash: string): Promise<Admitted | null> {
  const rows = await executePrepared<Record<string, unknown>>(client, sql`
    select k.request_hash as hash, g.id, g.state, g.backend, g.request->>'model' as model, g.estimated_credits as credits,
      (select balance from accounts where team_id = g.team_id and kind = 'available') as available
    from idempotency_keys k join generations g on g.id = k.generation_id where k.key = ${key}`);
  const existing = rows[0];
  if (!existing) return null;
  if (existing.hash !== hash) throw userError(ErrorCode.InvalidRequest, 'This request id was already used for a different request.');
  return {
    generationId: String(existing.id), duplicate: true, state: String(existing.state), backend: String(existing.backend),
    model: String(existing.model), credits: Number(existing.credits), creditsRemaining: Number(existing.available ?? 0),
  };
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
  if (parsed.reverse) stored.reverse = true;
  if (parsed.startImage && !caps.startImage) throw userError(ErrorCode.UnsupportedOperation, `The ${backend.name} backend can't start from an image.`);
  if (parsed.endImage && !caps.endImage) throw userError(ErrorCode.UnsupportedOperation, `The ${backend.name} backend can't end on an image.`);
  if (parsed.loop && !caps.loop) throw userError(ErrorCode.UnsupportedOperation, `The ${backend.name} backend can't make loops.`);
  return stored;
}

interface NewImage { id: string; mime: string; data: Buffer }
interface Images { ids: Partial<Record<'startImageId' | 'endImageId', string>>; fresh: NewImage[] }

/** Input images: new bytes get an asset id now and are written with the generation; known assets are referenced. */
async function intakeImages(deps: AdmissionDeps, parsed: ParsedRequest): Promise<Images> {
  const ids: Partial<Record<'startImageId' | 'endImageId', string>> = {};
  const fresh: NewImage[] = [];
  const load = async (source: ImageSource): Promise<string> => {
    if (source.kind === 'asset') return (await readAsset(deps.db, source.assetId)).id;
    const image = await loadImage(source, { maxBytes: deps.config.MAX_IMAGE_BYTES, allowPrivateNetworks: deps.config.ALLOW_PRIVATE_IMAGE_URLS });
    const id = randomUUID();
    fresh.push({ id, mime: image.mime, data: image.data });
    return id;
  };
  if (parsed.startImage) ids.startImageId = await load(parsed.startImage);
  if (parsed.endImage) ids.endImageId = await load(parsed.endImage);
  return { ids, fresh };
}

async function requireParent(db: Db, teamId: string | null, parentId: string): Promise<void> {
  const rows = teamId ? await db.execute<{ state: string }>(sql`select state from generations where id = ${parentId} and team_id = ${teamId}`) : [];
  const state = rows[0]?.state;
  if (!state) throw userError(ErrorCode.NotFound, "I can't find that clip in your team.");
  if (state !== 'delivered' && state !== 'succeeded') throw userError(ErrorCode.InvalidRequest, 'That clip is not finished yet; try again once it has been posted.');
}

function capNotice(active: ActiveJobs, config: Config): string | undefined {
  const memberCap = active.memberCap ?? config.MEMBER_ACTIVE_JOBS;
  const teamCap = active.teamCap ?? config.TEAM_ACTIVE_JOBS;
  if (active.member >= memberCap) return `You have ${active.member} clips in progress (the limit is ${memberCap} at a time); this one starts as soon as one finishes.`;
  if (active.team >= teamCap) return `Your team has ${active.team} clips in progress (the limit is ${teamCap} at a time); this one starts as soon as one finishes.`;
  return undefined;
}

/**
 * Position in fair order: the team's own earlier jobs, plus, from each other team, as many as this job's
 * team rank. Presentation, so not part of admission's hot path: replies ask for it when they render.
 */
export async function aheadOf(db: Db, generationId: string): Promise<number> {
  const rows = await db.execute<{ ahead: number }>(sql`
    with me as (select id, team_id, backend, seq from generations where id = ${generationId} and state = 'queued'),
    rank as (select count(*) + 1 as r from generations g, me where g.state = 'queued' and g.backend = me.backend and g.team_id = me.team_id and g.seq < me.seq),
    others as (select g.team_id, count(*) as n from generations g, me where g.state = 'queued' and g.backend = me.backend and g.team_id <> me.team_id group by g.team_id)
    select coalesce((select r - 1 from rank), 0) + coalesce((select sum(least(n, (select r from rank))) from others), 0) as ahead
    from me`);
  return rows[0] ? Number(rows[0].ahead) : 0;
}
