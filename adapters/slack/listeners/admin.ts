/**
 * Credits and administration: `/dream-credits` for everyone, `/dream-admin …` and the admin half of the
 * App Home for workspace admins/owners or SLACK_ADMIN_USER_IDS, the right checked with Slack on every
 * call (a demoted admin loses it at once), never cached.
 */
import { createHash } from 'node:crypto';
import type { AllMiddlewareArgs, App, BlockAction, SlashCommand, SlackViewMiddlewareArgs, ViewSubmitAction } from '@slack/bolt';
import {
  blocklistAdd, blocklistList, blocklistRemove, createLinkCode, grant, memberSummary, redeemLinkCode, setDefaults, setLimit, setMemberCap,
  teamIdFor, usageReport, type UsageReport,
} from '../../../src/admin.ts';
import { renderUsageChart } from '../../../src/charts/usage-chart.ts';
import { listGenerations } from '../../../src/generations.ts';
import type { TeamRef } from '../../../src/teams.ts';
import { asSlackError } from '../deliver.ts';
import { forRequest, isAdmin, tell, type SlackDeps } from '../flow.ts';
import { ADMIN_HELP, memberRef, parseAdminText, teamRef, type AdminCommand } from '../parse.ts';
import { creditsText, errorText, grantModal, HOME_ACTIONS, homeView, limitModal, usageText, VIEWS } from '../render.ts';

const NOT_ADMIN = 'Only workspace admins and owners (or people listed in SLACK_ADMIN_USER_IDS) can use /dream-admin. Nothing changed.';
const CHART_TTL_S = 3600;

const credits = (n: number) => `${n.toLocaleString('en-US')} credit${n === 1 ? '' : 's'}`;

export async function runAdmin(deps: SlackDeps, team: TeamRef, userId: string, cmd: AdminCommand): Promise<string> {
  const { runtime } = deps;
  const actor = `slack:${userId}`;
  if (cmd.kind === 'help') return ADMIN_HELP;
  const teamId = await teamIdFor(runtime, team);
  switch (cmd.kind) {
    case 'limit': {
      const c = await setLimit(runtime, teamId, { limit: cmd.limit, period: cmd.period }, actor);
      return `Limit set to ${credits(c.limit)} ${c.period}. The team has ${credits(c.available)} available now.`;
    }
    case 'grant': {
      const c = await grant(runtime, teamId, cmd.amount, actor);
      return `Granted ${credits(cmd.amount)}. The team has ${credits(c.available)} available now.`;
    }
    case 'user-cap':
      await setMemberCap(runtime, teamId, { platform: 'slack', externalId: cmd.userId, ...(cmd.name ? { displayName: cmd.name } : {}) }, cmd.cap, actor);
      return cmd.cap === null ? `<@${cmd.userId}> now has no personal cap (the team's per-member cap applies, if any).` : `<@${cmd.userId}> may now spend up to ${credits(cmd.cap)} per period.`;
    case 'usage':
      return usageText(await usageReport(runtime, teamId));
    case 'defaults': {
      const prefs = await setDefaults(runtime, teamId, cmd.prefs, actor);
      const list = Object.entries(prefs).map(([k, v]) => `${k}=${v}`).join(', ');
      return list ? `Team defaults: ${list}.` : 'No team defaults are set; each request uses the backend\'s own.';
    }
    case 'blocklist': {
      const words = cmd.op === 'add' ? await blocklistAdd(runtime, teamId, cmd.word!, actor)
        : cmd.op === 'remove' ? await blocklistRemove(runtime, teamId, cmd.word!, actor)
        : await blocklistList(runtime, teamId);
      return words.length ? `Blocked in prompts: ${words.map((w) => `\`${w}\``).join(', ')}.` : 'The blocklist is empty.';
    }
    case 'link': {
      if (cmd.code) {
        await redeemLinkCode(runtime, cmd.code, team, actor);
        return 'Linked: this workspace now shares one team and one budget with the server that made the code.';
      }
      const code = await createLinkCode(runtime, teamId, actor);
      return `Link code: \`${code}\` (valid 30 minutes, once). On the Discord server, an admin runs \`/dream-admin link ${code}\`; both then share this team's budget.`;
    }
  }
}

/** The usage chart as a private Slack file (an image block can show it by id); one upload per report. */
async function chartFile(deps: SlackDeps, report: UsageReport): Promise<string | undefined> {
  const digest = createHash('sha256').update(JSON.stringify(report)).digest('hex').slice(0, 16);
  const key = `${deps.runtime.config.REDIS_PREFIX}:slack:chart:${report.teamId}:${digest}`;
  const cached = await deps.runtime.redis.get(key);
  if (cached) return cached;
  try {
    const png = await renderUsageChart(report);
    const up = await deps.client.filesUploadV2({ file: png, filename: `usage-${report.periodKey}.png`, title: `Credits used ${report.periodKey}`, alt_text: `Credits used ${report.periodKey}` });
    const id = (up.files as { files?: { id?: string }[] }[] | undefined)?.[0]?.files?.[0]?.id;
    if (id) await deps.runtime.redis.set(key, id, 'EX', CHART_TTL_S);
    return id;
  } catch (err) {
    deps.log.warn({ err: asSlackError(err) }, 'slack: usage chart not uploaded; the Home tab lists members instead');
    return undefined;
  }
}

async function publishHome(deps: SlackDeps, team: TeamRef, userId: string): Promise<void> {
  const { runtime } = deps;
  const admin = await isAdmin(deps, userId);
  const summary = await memberSummary(runtime, team, memberRef(userId));
  const teamId = await teamIdFor(runtime, team);
  const recent = await listGenerations(runtime.db, { teamId, member: { platform: 'slack', externalId: userId }, limit: 8 });
  let adminPart: { report: UsageReport; chartFileId?: string } | undefined;
  if (admin) {
    const report = await usageReport(runtime, teamId);
    const chartFileId = await chartFile(deps, report);
    adminPart = { report, ...(chartFileId ? { chartFileId } : {}) };
  }
  await deps.client.views.publish({ user_id: userId, view: homeView({ user: userId, summary, recent, ...(adminPart ? { admin: adminPart } : {}) }) as never });
}

export function registerAdmin(app: App, base: SlackDeps): void {
  /** A command answered privately after the ack; any error becomes the private answer. */
  const privateCommand = (name: string, answer: (deps: SlackDeps, command: SlashCommand, team: TeamRef) => Promise<string>) =>
    app.command(name, async ({ command, ack, context, respond, client }) => {
      await ack();
      const deps = forRequest(base, client, context);
      const to = { channelId: command.channel_id, userId: command.user_id, respond };
      deps.later(async () => {
        try {
          await tell(deps, to, await answer(deps, command, teamRef(context, command.team_id)));
        } catch (error) {
          await tell(deps, to, errorText(error));
        }
      });
    });

  privateCommand('/dream-credits', async (deps, command, team) => creditsText(await memberSummary(deps.runtime, team, memberRef(command.user_id, command.user_name))));
  privateCommand('/dream-admin', async (deps, command, team) =>
    (await isAdmin(deps, command.user_id)) ? runAdmin(deps, team, command.user_id, parseAdminText(command.text)) : NOT_ADMIN);

  app.event('app_home_opened', async ({ event, body, context, client }) => {
    if (event.tab !== 'home') return;
    const deps = forRequest(base, client, context);
    deps.later(() => publishHome(deps, teamRef(context, body.team_id), event.user));
  });

  app.action<BlockAction>(HOME_ACTIONS.refresh, async ({ ack, body, context, client }) => {
    await ack();
    const deps = forRequest(base, client, context);
    deps.later(() => publishHome(deps, teamRef(context, body.team?.id), body.user.id));
  });

  app.action<BlockAction>(HOME_ACTIONS.setLimit, async ({ ack, body, client, context }) => {
    await ack();
    const summary = await memberSummary(base.runtime, teamRef(context, body.team?.id), memberRef(body.user.id));
    await client.views.open({ trigger_id: body.trigger_id, view: limitModal({ limit: summary.teamLimit, period: summary.period }) as never })
      .catch((err: unknown) => base.log.warn({ err: asSlackError(err) }, 'slack: views.open failed'));
  });

  app.action<BlockAction>(HOME_ACTIONS.grant, async ({ ack, body, client }) => {
    await ack();
    await client.views.open({ trigger_id: body.trigger_id, view: grantModal() as never })
      .catch((err: unknown) => base.log.warn({ err: asSlackError(err) }, 'slack: views.open failed'));
  });

  app.view<ViewSubmitAction>(VIEWS.limit, (args) => adminForm(forRequest(base, args.client, args.context), args, 'limit'));
  app.view<ViewSubmitAction>(VIEWS.grant, (args) => adminForm(forRequest(base, args.client, args.context), args, 'amount'));
}

/** The Home tab's admin forms: the right is checked again at submit time, and the form shows any error. */
async function adminForm(deps: SlackDeps, { ack, view, body, context }: SlackViewMiddlewareArgs<ViewSubmitAction> & AllMiddlewareArgs, field: 'limit' | 'amount'): Promise<void> {
  const values = view.state.values as Record<string, Record<string, { value?: string | null; selected_option?: { value: string } | null }>>;
  const raw = values[field]?.[field]?.value ?? '';
  if (!(await isAdmin(deps, body.user.id))) return ack({ response_action: 'errors', errors: { [field]: NOT_ADMIN.slice(0, 150) } });
  if (!/^\d+$/.test(raw)) return ack({ response_action: 'errors', errors: { [field]: 'A whole number of credits, please.' } });
  const team = teamRef(context, body.team?.id);
  const cmd: AdminCommand = field === 'limit'
    ? { kind: 'limit', limit: Number(raw), period: values.period?.period?.selected_option?.value ?? 'monthly' }
    : { kind: 'grant', amount: Number(raw) };
  try {
    await runAdmin(deps, team, body.user.id, cmd);
  } catch (error) {
    return ack({ response_action: 'errors', errors: { [field]: errorText(error).slice(0, 150) } });
  }
  await ack();
  deps.later(() => publishHome(deps, team, body.user.id));
}
