/**
 * What people do with a posted clip: the buttons on its card (re-roll, remix, extend, upscale, delete)
 * and a 🔁 (`repeat`) reaction on any of its messages, which re-rolls it, charged to the reactor. The
 * clip is found through the deliveries record (channel:ts → generation), never through chat history.
 */
import type { App, BlockAction, ButtonAction } from '@slack/bolt';
import { findDelivery, findGenerationByMessage } from '../../../src/deliveries.ts';
import { getGeneration, type Generation } from '../../../src/generations.ts';
import type { RemixAction } from '../../../src/remix.ts';
import { asSlackError, replyOf } from '../deliver.ts';
import { follow, forRequest, installationOf, interactionWorkspace, isAdmin, tell, type SlackDeps } from '../flow.ts';
import { keys, messageKey, splitMessageKey, teamRef } from '../parse.ts';
import { ACTIONS, dreamModal, jobMessage, VIEWS } from '../render.ts';

const FOLLOW_UPS: [string, RemixAction, string][] = [
  [ACTIONS.reroll, 'reroll', 're-rolled a clip'],
  [ACTIONS.extend, 'extend', 'extended a clip'],
  [ACTIONS.upscale, 'upscale', 'upscaled a clip'],
];

/** The thread a clip lives in: where its follow-ups go. */
async function threadOf(deps: SlackDeps, g: Generation): Promise<string | undefined> {
  const reply = replyOf(g);
  if (reply.threadId) return reply.threadId;
  return splitMessageKey((await findDelivery(deps.runtime.db, g.id, 'slack', 'job'))?.messageId)?.ts;
}

function where(body: BlockAction): { channel: string; messageTs: string; threadTs: string } | null {
  const channel = body.channel?.id ?? (body.container as { channel_id?: string }).channel_id;
  const messageTs = body.message?.ts ?? (body.container as { message_ts?: string }).message_ts;
  if (!channel || !messageTs) return null;
  return { channel, messageTs, threadTs: (body.message?.thread_ts as string | undefined) ?? messageTs };
}

export function registerClip(app: App, base: SlackDeps): void {
  for (const [actionId, action, verb] of FOLLOW_UPS) {
    app.action<BlockAction<ButtonAction>>(actionId, async ({ ack, body, action: button, context, client }) => {
      await ack();
      const deps = forRequest(base, client, context);
      const at = where(body);
      if (!at) return;
      const origin = {
        team: teamRef(context, body.team?.id), userId: body.user.id, userName: body.user.name, channelId: at.channel, threadTs: at.threadTs,
        // A double click, or a redelivered payload, is the same request.
        idempotencyKey: keys.action(at.channel, at.messageTs, actionId, body.user.id), verb, ...interactionWorkspace(body.team?.id, context),
      };
      deps.later(() => follow(deps, origin, { action, parentId: button.value ?? '' }));
    });
  }

  app.action<BlockAction<ButtonAction>>(ACTIONS.remix, async ({ ack, body, action, client, context }) => {
    await ack();
    const deps = forRequest(base, client, context);
    const at = where(body);
    const parent = action.value ? await getGeneration(deps.runtime.db, action.value) : null;
    if (!at || !parent) return;
    const r = parent.request;
    try {
      await client.views.open({
        trigger_id: body.trigger_id,
        view: dreamModal({
          callbackId: VIEWS.remix, title: 'Remix this clip', submit: 'Remix', metadata: { c: at.channel, t: at.threadTs, p: parent.id },
          initial: { prompt: r.prompt, aspect: r.aspect, duration: r.duration, resolution: r.resolution, ...(r.camera ? { camera: r.camera } : {}), loop: r.loop, model: r.model },
          note: 'Edit the prompt or the options. The start and end images stay unless you add new ones.',
        }) as never,
      });
    } catch (error) {
      deps.log.warn({ err: asSlackError(error) }, 'slack: views.open failed');
      await tell(deps, { channelId: at.channel, userId: body.user.id, threadTs: at.threadTs }, 'I could not open the remix form in time. Click Remix again.');
    }
  });

  app.action<BlockAction<ButtonAction>>(ACTIONS.delete, async ({ ack, body, action, client, context }) => {
    await ack();
    const deps = forRequest(base, client, context);
    const at = where(body);
    if (!at) return;
    deps.later(async () => {
      const g = action.value ? await getGeneration(deps.runtime.db, action.value) : null;
      if (!g) return;
      const requester = replyOf(g).userId;
      const to = { channelId: at.channel, userId: body.user.id, threadTs: at.threadTs };
      if (body.user.id !== requester && !(await isAdmin(deps, body.user.id))) {
        return tell(deps, to, `Only <@${requester}>, who asked for this clip, or a workspace admin can delete it. Nothing changed.`);
      }
      const file = (await findDelivery(deps.runtime.db, g.id, 'slack', 'file'))?.messageId?.replace(/^file:/, '');
      const calls: Promise<unknown>[] = [deps.client.chat.delete({ channel: at.channel, ts: at.messageTs })];
      if (file) calls.push(deps.client.files.delete({ file }));
      const results = await Promise.allSettled(calls);
      for (const r of results) if (r.status === 'rejected') deps.log.info({ err: asSlackError(r.reason) }, 'slack: delete step failed (already gone?)');
      const job = splitMessageKey((await findDelivery(deps.runtime.db, g.id, 'slack', 'job'))?.messageId);
      if (job) await deps.jobs.finish(deps.client, job.channel, job.ts, jobMessage({ generation: g, requester, status: { kind: 'deleted', by: body.user.id } }), false);
    });
  });

  app.event('reaction_added', async ({ event, body, context, client }) => {
    const deps = forRequest(base, client, context);
    // Bolt's ignoreSelf drops the bot's own reactions already; this says so where it matters.
    if (event.user === context.botUserId || event.item.type !== 'message') return;
    if (event.reaction !== 'repeat' && !event.reaction.startsWith('repeat::')) return;
    const item = event.item as { channel: string; ts: string };
    deps.later(async () => {
      const g = await findGenerationByMessage(deps.runtime.db, 'slack', messageKey(item.channel, item.ts));
      if (!g) return;
      const threadTs = await threadOf(deps, g);
      await follow(deps, {
        team: teamRef(context, body.team_id), userId: event.user, channelId: item.channel, ...(threadTs ? { threadTs } : {}),
        idempotencyKey: keys.event(body.event_id), verb: 're-rolled a clip (:repeat:)', workspaceId: body.team_id, ...installationOf(context),
      }, { action: 'reroll', parentId: g.id });
    });
  });
}
