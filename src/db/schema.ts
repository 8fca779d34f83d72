import { sql } from 'drizzle-orm';
import {
  bigint, bigserial, boolean, check, customType, index, integer, jsonb, pgTable, primaryKey, real, text,
  timestamp, uniqueIndex, uuid,
} from 'drizzle-orm/pg-core';

const bytea = customType<{ data: Buffer; driverData: Buffer }>({ dataType: () => 'bytea' });
const credits = (name: string) => bigint(name, { mode: 'number' });
const createdAt = () => timestamp('created_at', { withTimezone: true }).notNull().defaultNow();

/** A team owns one budget. It can hold several platform accounts (a Discord guild and a Slack workspace). */
export const teams = pgTable('teams', {
  id: uuid('id').primaryKey().defaultRandom(),
  name: text('name').notNull(),
  /** Team defaults: model, resolution, aspect, duration, backend preference (auto|gpu|api|preview). */
  preferences: jsonb('preferences').$type<Record<string, string>>().notNull().default({}),
  /**
   * Bumped by triggers whenever what admission caches about the team changes (preferences, blocklist,
   * platform accounts), so admission's write can refuse to act on a stale copy (src/team-directory.ts).
   */
  configVersion: integer('config_version').notNull().default(0),
  createdAt: createdAt(),
});

export const platformAccounts = pgTable('platform_accounts', {
  id: uuid('id').primaryKey().defaultRandom(),
  teamId: uuid('team_id').notNull().references(() => teams.id),
  platform: text('platform').notNull(),
  externalId: text('external_id').notNull(),
  name: text('name'),
  createdAt: createdAt(),
}, (t) => [uniqueIndex('platform_accounts_platform_external').on(t.platform, t.externalId)]);

export const members = pgTable('members', {
  id: uuid('id').primaryKey().defaultRandom(),
  teamId: uuid('team_id').notNull().references(() => teams.id),
  platform: text('platform').notNull(),
  externalId: text('external_id').notNull(),
  displayName: text('display_name'),
  /** Credits this member may spend per period, overriding the budget's per-member cap; null = the budget's. */
  cap: credits('cap'),
  createdAt: createdAt(),
}, (t) => [uniqueIndex('members_team_platform_external').on(t.teamId, t.platform, t.externalId)]);

export const budgets = pgTable('budgets', {
  teamId: uuid('team_id').primaryKey().references(() => teams.id),
  limitCredits: credits('limit_credits').notNull(),
  period: text('period').notNull(),
  /** Credits one member may spend per period; null means no cap. */
  memberCap: credits('member_cap'),
  memberActiveJobs: integer('member_active_jobs'),
  teamActiveJobs: integer('team_active_jobs'),
  /** The period the available balance belongs to, e.g. "2026-11" or "2026-W47"; "none" for no resets. */
  periodKey: text('period_key').notNull(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
}, (t) => [check('budgets_period', sql`${t.period} in ('monthly','weekly','daily','none')`)]);

/**
 * Balances per team and kind, after pgledger: available and held are the team's own; granted, consumed
 * and expired are its counterparties, so every transfer has two sides and the books always sum to zero.
 */
export const accounts = pgTable('accounts', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  teamId: uuid('team_id').notNull().references(() => teams.id),
  kind: text('kind').notNull(),
  balance: credits('balance').notNull().default(0),
  version: integer('version').notNull().default(0),
}, (t) => [
  uniqueIndex('accounts_team_kind').on(t.teamId, t.kind),
  check('accounts_kind', sql`${t.kind} in ('available','held','granted','consumed','expired')`),
  check('accounts_non_negative', sql`${t.kind} = 'granted' or ${t.balance} >= 0`),
]);

export const transfers = pgTable('transfers', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  teamId: uuid('team_id').notNull().references(() => teams.id),
  memberId: uuid('member_id'),
  generationId: uuid('generation_id'),
  holdId: uuid('hold_id'),
  kind: text('kind').notNull(),
  amount: credits('amount').notNull(),
  fromAccount: bigint('from_account', { mode: 'number' }).notNull(),
  toAccount: bigint('to_account', { mode: 'number' }).notNull(),
  /** Makes repeatable operations (period resets) happen once. */
  dedupeKey: text('dedupe_key').unique(),
  note: text('note'),
  createdAt: createdAt(),
}, (t) => [
  check('transfers_amount_positive', sql`${t.amount} > 0`),
  check('transfers_kind', sql`${t.kind} in ('grant','hold','capture','release','expire','adjust')`),
  index('transfers_team_created').on(t.teamId, t.createdAt),
]);

/** Append-only: one row per side of a transfer, with the balance before and after. */
export const entries = pgTable('entries', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  transferId: bigint('transfer_id', { mode: 'number' }).notNull().references(() => transfers.id),
  accountId: bigint('account_id', { mode: 'number' }).notNull().references(() => accounts.id),
  amount: credits('amount').notNull(),
  balanceBefore: credits('balance_before').notNull(),
  balanceAfter: credits('balance_after').notNull(),
  createdAt: createdAt(),
}, (t) => [index('entries_account').on(t.accountId, t.id)]);

/** A pending hold resolves exactly once: captured (part or all, the rest released), released, or expired. */
export const holds = pgTable('holds', {
  id: uuid('id').primaryKey().defaultRandom(),
  teamId: uuid('team_id').notNull().references(() => teams.id),
  memberId: uuid('member_id').notNull().references(() => members.id),
  generationId: uuid('generation_id').notNull().unique(),
  amount: credits('amount').notNull(),
  captured: credits('captured').notNull().default(0),
  state: text('state').notNull().default('pending'),
  periodKey: text('period_key').notNull(),
  createdAt: createdAt(),
  resolvedAt: timestamp('resolved_at', { withTimezone: true }),
}, (t) => [
  check('holds_state', sql`${t.state} in ('pending','captured','released','expired')`),
  check('holds_captured_bounded', sql`${t.captured} >= 0 and ${t.captured} <= ${t.amount}`),
  index('holds_pending').on(t.createdAt).where(sql`${t.state} = 'pending'`),
]);

/** Credits a member has held or spent in a period; the per-member cap is a conditional update on this row. */
export const memberUsage = pgTable('member_usage', {
  memberId: uuid('member_id').notNull().references(() => members.id),
  periodKey: text('period_key').notNull(),
  used: credits('used').notNull().default(0),
}, (t) => [primaryKey({ columns: [t.memberId, t.periodKey] }), check('member_usage_non_negative', sql`${t.used} >= 0`)]);

export const generations = pgTable('generations', {
  id: uuid('id').primaryKey().defaultRandom(),
  /** Admission order; the dispatcher ranks waiting work by it within each team. */
  seq: bigserial('seq', { mode: 'number' }).notNull().unique(),
  teamId: uuid('team_id').notNull().references(() => teams.id),
  memberId: uuid('member_id').notNull().references(() => members.id),
  parentId: uuid('parent_id'),
  operation: text('operation').notNull(),
  request: jsonb('request').$type<Record<string, unknown>>().notNull(),
  state: text('state').notNull(),
  backend: text('backend').notNull(),
  backendHandle: text('backend_handle'),
  submitCount: integer('submit_count').notNull().default(0),
  attempts: integer('attempts').notNull().default(0),
  progress: real('progress').notNull().default(0),
  progressNote: text('progress_note'),
  estimatedCredits: credits('estimated_credits').notNull(),
  chargedCredits: credits('charged_credits'),
  errorCode: text('error_code'),
  errorMessage: text('error_message'),
  /** Where the result goes: a reference, never a platform object. */
  replyTo: jsonb('reply_to').$type<Record<string, unknown>>(),
  resultAssetId: uuid('result_asset_id'),
  resultMeta: jsonb('result_meta').$type<Record<string, unknown>>(),
  createdAt: createdAt(),
  dispatchedAt: timestamp('dispatched_at', { withTimezone: true }),
  startedAt: timestamp('started_at', { withTimezone: true }),
  finishedAt: timestamp('finished_at', { withTimezone: true }),
  deliveredAt: timestamp('delivered_at', { withTimezone: true }),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
}, (t) => [
  check('generations_state', sql`${t.state} in ('queued','dispatched','running','succeeded','delivered','failed','cancelled')`),
  index('generations_waiting').on(t.backend, t.seq).where(sql`${t.state} = 'queued'`),
  index('generations_active').on(t.backend, t.state).where(sql`${t.state} in ('dispatched','running')`),
  index('generations_team_state').on(t.teamId, t.state),
  index('generations_member_state').on(t.memberId, t.state),
  // Admission counts a team's and a member's jobs in progress for its notice; these stay as small as that.
  index('generations_team_active').on(t.teamId).where(sql`${t.state} in ('dispatched','running')`),
  index('generations_member_active').on(t.memberId).where(sql`${t.state} in ('dispatched','running')`),
]);

/** Platform message → generation, so a button or a reaction finds its clip without reading chat history. */
export const deliveries = pgTable('deliveries', {
  id: uuid('id').primaryKey().defaultRandom(),
  generationId: uuid('generation_id').notNull().references(() => generations.id),
  platform: text('platform').notNull(),
  kind: text('kind').notNull(),
  channelId: text('channel_id'),
  messageId: text('message_id'),
  createdAt: createdAt(),
}, (t) => [
  uniqueIndex('deliveries_generation_kind').on(t.generationId, t.platform, t.kind),
  uniqueIndex('deliveries_message').on(t.platform, t.messageId),
]);

export const idempotencyKeys = pgTable('idempotency_keys', {
  key: text('key').primaryKey(),
  teamId: uuid('team_id').notNull().references(() => teams.id),
  generationId: uuid('generation_id').notNull(),
  requestHash: text('request_hash').notNull(),
  createdAt: createdAt(),
});

/** Small binary things kept in Postgres so every process on every machine sees them. */
export const assets = pgTable('assets', {
  id: uuid('id').primaryKey().defaultRandom(),
  teamId: uuid('team_id').references(() => teams.id),
  kind: text('kind').notNull(),
  mime: text('mime').notNull(),
  size: integer('size').notNull(),
  sha256: text('sha256').notNull(),
  data: bytea('data').notNull(),
  createdAt: createdAt(),
}, (t) => [
  check('assets_kind', sql`${t.kind} in ('input_image','frame','poster','clip')`),
  check('assets_size', sql`${t.size} > 0 and ${t.size} <= 268435456`),
]);

export const blocklist = pgTable('blocklist', {
  teamId: uuid('team_id').notNull().references(() => teams.id),
  word: text('word').notNull(),
  createdAt: createdAt(),
}, (t) => [primaryKey({ columns: [t.teamId, t.word] })]);

export const auditLog = pgTable('audit_log', {
  id: bigserial('id', { mode: 'number' }).primaryKey(),
  teamId: uuid('team_id').notNull().references(() => teams.id),
  actor: text('actor').notNull(),
  action: text('action').notNull(),
  details: jsonb('details').$type<Record<string, unknown>>().notNull().default({}),
  createdAt: createdAt(),
});

/** One-time codes that link another platform's workspace into a team (one team, one budget). */
export const linkCodes = pgTable('link_codes', {
  code: text('code').primaryKey(),
  teamId: uuid('team_id').notNull().references(() => teams.id),
  createdBy: text('created_by').notNull(),
  expiresAt: timestamp('expires_at', { withTimezone: true }).notNull(),
  usedAt: timestamp('used_at', { withTimezone: true }),
  usedBy: text('used_by'),
  createdAt: createdAt(),
});

/**
 * Slack installations for multi-workspace (OAuth) mode, one per workspace or org-wide install. Bolt's
 * Installation (without tokens) is kept whole; tokens sit in their own columns, encrypted by the app.
 */
export const slackInstallations = pgTable('slack_installations', {
  installKey: text('install_key').primaryKey(),
  enterpriseId: text('enterprise_id'),
  teamId: text('team_id'),
  isEnterpriseInstall: boolean('is_enterprise_install').notNull().default(false),
  appId: text('app_id'),
  botUserId: text('bot_user_id'),
  botId: text('bot_id'),
  botToken: text('bot_token').notNull(),
  botRefreshToken: text('bot_refresh_token'),
  botTokenExpiresAt: timestamp('bot_token_expires_at', { withTimezone: true }),
  botScopes: text('bot_scopes').array().notNull().default(sql`'{}'::text[]`),
  installerUserId: text('installer_user_id'),
  installation: jsonb('installation').$type<Record<string, unknown>>().notNull(),
  installedAt: timestamp('installed_at', { withTimezone: true }).notNull().defaultNow(),
  updatedAt: timestamp('updated_at', { withTimezone: true }).notNull().defaultNow(),
  uninstalledAt: timestamp('uninstalled_at', { withTimezone: true }),
}, (t) => [index('slack_installations_team').on(t.teamId)]);

export const schema = {
  teams, platformAccounts, members, budgets, accounts, transfers, entries, holds, memberUsage, generations,
  deliveries, idempotencyKeys, assets, blocklist, auditLog, linkCodes, slackInstallations,
};

