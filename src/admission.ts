import { randomUUID } from 'node:crypto';
import { sql } from 'drizzle-orm';
import type { Config } from './config.ts';
import { executePrepared, type Db } from './db/client.ts';
import type postgres from 'postgres';
import { ErrorCode, userError } from './errors.ts';
import { readAsset } from './assets.ts';
import { chooseBackend } from './backends/routing.ts';
import type { Backend, BackendRegistry } from './backends/types.ts';
import { loadImage } from './inputs/image.ts';
import { admitHold } from './ledger/admit-hold.ts';
import { rollPeriod } from './ledger/budget.ts';
import { periodKey, type Period } from './ledger/periods.ts';
import { findBlocked } from './moderation.ts';
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
  /** Something the member should know, e.g. that their active-job cap delays this one. */
  notice?: string;
}

export interface AdmissionDeps {
  db: Db;
  /** The same database's raw client, for the hot path's prepared statements. */
  sql: postgres.Sql;
  config: Config;
  backends: BackendRegistry;
  /** Tells dispatchers that work is waiting; the waiting line itself is the generations table. */
  nudge: () => void;
  now?: () => Date;
}

const MAX_KEY_LENGTH = 255;

interface Lookup {
  existing: { hash: string; id: string; state: string; backend: string; model: string; credits: number; team: string } | null;
  teamId: string | null;
  memberId: string | null;
  preferences: Record<string, string>;
  period: Period | null;
  periodKey: string | null;
  memberCap: number | null;
  memberActiveJobs: number | null;
  teamActiveJobs: number | null;
  blocked: string[];
  available: number;
  teamActive: number;
  memberActive: number;
}

/** Everything admission needs to read, in one round trip: it runs once per request on the hot path. */
async function lookup(client: postgres.Sql, key: string, team: TeamRef, member: MemberRef): Promise<Lookup> {
  const rows = await executePrepared<Record<string, unknown>>(client, sql`
    with pa as (select team_id from platform_accounts where platform = ${team.platform} and external_id = ${team.externalId}),
    m as (select m.id from members m, pa where m.team_id = pa.team_id and m.platform = ${team.platform} and m.external_id = ${member.externalId})
    select
      (select json_build_object('hash', k.request_hash, 'id', g.id, 'state', g.state, 'backend', g.backend, 'model', g.request->>'model',
         'credits', g.estimated_credits, 'team', g.team_id)
       from idempotency_keys k join generations g on g.id = k.generation_id where k.key = ${key}) as existing,
      (select team_id from pa) as team_id, (select id from m) as member_id,
      t.preferences, b.period, b.period_key, coalesce((select cap from members where id = (select id from m)), b.member_cap) as member_cap,
      b.member_active_jobs, b.team_active_jobs,
      (select coalesce(array_agg(word), '{}') from blocklist where team_id = t.id) as blocked,
      (select balance from accounts where team_id = t.id and kind = 'available') as available,
      (select count(*) from generations where team_id = t.id and state in ('dispatched','running')) as team_active,
      (select count(*) from generations where member_id = (select id from m) and state in ('dispatched','running')) as member_active
    from (select 1) one left join teams t on t.id = (select team_id from pa) left join budgets b on b.team_id = t.id`);
  const r = rows[0]!;
  const num = (v: unknown) => (v === null || v === undefined ? null : Number(v));
  return {
    existing: (r.existing as Lookup['existing']) ?? null,
    teamId: r.team_id ? String(r.team_id) : null,
    memberId: r.member_id ? String(r.member_id) : null,
    preferences: (r.preferences as Record<string, string> | null) ?? {},
    period: (r.period as Period | null) ?? null,
    periodKey: (r.period_key as string | null) ?? null,
    memberCap: num(r.member_cap),
    memberActiveJobs: num(r.member_active_jobs),
    teamActiveJobs: num(r.team_active_jobs),
    blocked: (r.blocked as string[] | null) ?? [],
    available: Number(r.available ?? 0),
    teamActive: Number(r.team_active ?? 0),
    memberActive: Number(r.member_active ?? 0),
  };
}

/**
 * The one path every request takes: validate → moderate → price → hold + persist (one atomic statement
 * keyed by the idempotency key) → enqueue. Every refusal is a user error, and nothing is written for it.
 */
export async function admit(deps: AdmissionDeps, input: AdmissionInput): Promise<Admitted> {
  const now = deps.now?.() ?? new Date();
  const key = input.idempotencyKey;
  if (!key || key.length > MAX_KEY_LENGTH) throw new Error('admission needs an idempotency key of 1-255 characters');
  const parsed = parseRequest(input.request);
  const hash = requestHash(parsed);

  let found = await lookup(deps.sql, key, input.team, input.member);
  if (found.existing) return duplicateOf(found, hash);
  const hit = findBlocked(parsed.prompt, found.blocked);
  if (hit) throw userError(ErrorCode.BlockedWord, `Your team's admins have blocked "${hit}" in prompts. Rephrase without it; nothing was charged.`, { word: hit });
  const backend = await chooseBackend(deps.backends, deps.config, parsed.backend, found.preferences.backend, parsed.operation);
  const stored = applyDefaults(parsed, backend, found.preferences);
  backend.check?.(stored, { startImage: !!parsed.startImage, endImage: !!parsed.endImage, parent: !!parsed.parentId });
  const price = backend.estimate(stored);
  if (price === null) {
    throw userError(ErrorCode.UnsupportedOperation, `The ${backend.name} backend can't make ${stored.resolution} ${stored.duration} clips with ${stored.model}. Try another resolution or duration.`);
  }
  if (parsed.parentId) await requireParent(deps.db, found.teamId, parsed.parentId);
  const images = await intakeImages(deps, parsed);

  // First sight of a team, a member, or a new budget period: rare, and each is idempotent.
  if (!found.teamId) await ensureTeam(deps.db, input.team, deps.config.DEFAULT_TEAM_CREDITS, now);
  if (!found.teamId || !found.memberId) {
    const teamId = found.teamId ?? (await findTeam(deps.db, input.team))!;
    await ensureMember(deps.db, teamId, input.team.platform, input.member);
    found = await lookup(deps.sql, key, input.team, input.member);
  }
  const teamId = found.teamId!;
  const generationId = randomUUID();
  const newImages: { id: string; mime: string; data: Buffer }[] = [];
  for (const [field, image] of Object.entries(images)) {
    const id = image.assetId ?? randomUUID();
    if (!image.assetId) newImages.push({ id, mime: image.mime!, data: image.data! });
    stored[field === 'start' ? 'startImageId' : 'endImageId'] = id;
  }
  for (let attempt = 0; ; attempt++) {
    if (found.period && found.periodKey && (attempt > 0 || periodKey(found.period, now) !== found.periodKey)) {
      await deps.db.transaction((tx) => rollPeriod(tx, teamId, now));
      found = await lookup(deps.sql, key, input.team, input.member);
    }
    const result = await admitHold(deps.sql, {
      key, requestHash: hash, teamId, memberId: found.memberId!, generationId, periodKey: found.periodKey!,
      memberCap: found.memberCap, amount: price, operation: stored.operation, request: { ...stored }, backend: backend.name,
      parentId: stored.parentId ?? null, replyTo: input.replyTo ?? null, images: newImages,
    });
    if (result.outcome === 'duplicate') return duplicateOf(await lookup(deps.sql, key, input.team, input.member), hash);
    if (result.outcome === 'stale-period' && attempt < 2) continue;
    if (result.outcome !== 'admitted') throw new Error('the budget period kept changing during admission');
    deps.nudge();
    const notice = capNotice(found, deps.config);
    return {
      generationId, duplicate: false, state: 'queued', backend: backend.name, model: stored.model,
      credits: price, creditsRemaining: result.available, ...(notice ? { notice } : {}),
    };
  }
}

function duplicateOf(found: Lookup, hash: string): Admitted {
  const existing = found.existing;
  if (!existing) throw new Error('idempotency key vanished');
  if (existing.hash !== hash) throw userError(ErrorCode.InvalidRequest, 'This request id was already used for a different request.');
  return {
    generationId: existing.id, duplicate: true, state: existing.state, backend: existing.backend, model: existing.model,
    credits: Number(existing.credits), creditsRemaining: found.available,
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

async function requireParent(db: Db, teamId: string | null, parentId: string): Promise<void> {
  const rows = teamId ? await db.execute<{ state: string }>(sql`select state from generations where id = ${parentId} and team_id = ${teamId}`) : [];
  const state = rows[0]?.state;
  if (!state) throw userError(ErrorCode.NotFound, "I can't find that clip in your team.");
  if (state !== 'delivered' && state !== 'succeeded') throw userError(ErrorCode.InvalidRequest, 'That clip is not finished yet; try again once it has been posted.');
}

function capNotice(found: Lookup, config: Config): string | undefined {
  const memberCap = found.memberActiveJobs ?? config.MEMBER_ACTIVE_JOBS;
  const teamCap = found.teamActiveJobs ?? config.TEAM_ACTIVE_JOBS;
  if (found.memberActive >= memberCap) return `You have ${found.memberActive} clips in progress (the limit is ${memberCap} at a time); this one starts as soon as one finishes.`;
  if (found.teamActive >= teamCap) return `Your team has ${found.teamActive} clips in progress (the limit is ${teamCap} at a time); this one starts as soon as one finishes.`;
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
