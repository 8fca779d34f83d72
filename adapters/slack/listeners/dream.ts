/**
 * New dreams: `/dream PROMPT [flags]`, `/dream` alone (a modal), the "Dream this" message shortcut (the
 * modal, prefilled from the message and its images), and an @mention with optional images. Each acks
 * first, opens a modal at once where there is one (a trigger_id lives 3 s), and leaves the rest to
 * `dream()` after the ack.
 */
import type { AllMiddlewareArgs, App, MessageShortcut, SlackViewMiddlewareArgs, ViewSubmitAction } from '@slack/bolt';
import { toRequest } from '../../../commands/dream.ts';
import { isAppError } from '../../../src/errors.ts';
import { parseRequest, type ImageSource } from '../../../src/request.ts';
import { asSlackError } from '../deliver.ts';
import { dream, fetchImage, follow, forRequest, installationOf, interactionWorkspace, tell, type SlackDeps } from '../flow.ts';
import {
  decodeMetadata, decodeSlackText, keys, mentionText, modalRequest, parseDreamText, parseModalState, teamRef,
  type ModalValues, type SlackFileRef,
} from '../parse.ts';
import { dreamModal, errorText, SHORTCUT_ID, VIEWS } from '../render.ts';

type ViewResponse = { response_action: 'errors'; errors: Record<string, string> };

const IMAGE_TYPES = /^image\//;
const isImageFile = (f: { mimetype?: string; filetype?: string }) => IMAGE_TYPES.test(f.mimetype ?? '') || /^(png|jpe?g|webp|gif|heic|heif|bmp|tiff?)$/i.test(f.filetype ?? '');

/** Request fields → the modal block that shows the problem. */
const BLOCK_OF: Record<string, string> = { startImage: 'image', endImage: 'end_image', camera: 'camera', aspect: 'aspect', duration: 'duration', resolution: 'resolution', loop: 'loop', model: 'model', backend: 'backend' };

/**
 * The checks that need no I/O, run before the ack so mistakes show on the form itself; everything
 * else (images, credits, blocklist) is admission's, after the modal closes.
 */
function precheck(values: ModalValues, start: SlackFileRef | undefined, end: SlackFileRef | undefined): ViewResponse | null {
  const placeholder: ImageSource = { kind: 'url', url: 'https://example.invalid/placeholder.png' };
  try {
    parseRequest(modalRequest(values, { ...(start ? { start: placeholder } : {}), ...(end ? { end: placeholder } : {}) }));
    return null;
  } catch (error) {
    if (!isAppError(error)) throw error;
    const field = String(error.context.field ?? (error.message.includes('loop') ? 'loop' : 'prompt'));
    return { response_action: 'errors', errors: { [BLOCK_OF[field] ?? 'prompt']: error.message.slice(0, 150) } };
  }
}

export function registerDream(app: App, deps: SlackDeps): void {
  app.command('/dream', async ({ command, ack, client, context, respond }) => {
    await ack();
    if (!command.text.trim()) {
      try {
        await client.views.open({ trigger_id: command.trigger_id, view: dreamModal({ callbackId: VIEWS.dream, title: 'Dream a clip', submit: 'Dream', metadata: { c: command.channel_id }, withBackend: true }) as never });
      } catch (error) {
        deps.log.warn({ err: asSlackError(error) }, 'slack: views.open failed');
        await respond({ response_type: 'ephemeral', text: 'I could not open the form. Type `/dream` followed by what you want to see, e.g. `/dream a paper boat on a stream --ar 9:16`.' });
      }
      return;
    }
    const origin = {
      team: teamRef(context, command.team_id), userId: command.user_id, userName: command.user_name, channelId: command.channel_id,
      idempotencyKey: keys.command(command.trigger_id), workspaceId: command.team_id, ...installationOf(context), respond,
    };
    const d = forRequest(deps, client, context);
    deps.later(() => dream(d, origin, async () => toRequest(parseDreamText(command.text))));
  });

  app.shortcut<MessageShortcut>({ callback_id: SHORTCUT_ID, type: 'message_action' }, async ({ shortcut, ack, client, respond }) => {
    await ack();
    const message = shortcut.message as { ts: string; text?: string; thread_ts?: string; files?: (SlackFileRef & { filetype?: string })[] };
    const images = (message.files ?? []).filter(isImageFile);
    const [start, end] = images;
    const names = [start && `*${start.name ?? 'image'}* (start)`, end && `*${end.name ?? 'image'}* (end)`].filter(Boolean).join(' and ');
    const prompt = decodeSlackText(message.text ?? '').trim();
    try {
      await client.views.open({
        trigger_id: shortcut.trigger_id,
        view: dreamModal({
          callbackId: VIEWS.dream, title: 'Dream this', submit: 'Dream', withBackend: true,
          metadata: { c: shortcut.channel.id, t: message.thread_ts ?? message.ts, ...(start ? { s: start.id } : {}), ...(end ? { e: end.id } : {}) },
          initial: { prompt },
          note: names ? `Using ${names} from the message. Add a file below to use another one instead.` : 'The clip will be posted in the thread of that message.',
        }) as never,
      });
    } catch (error) {
      deps.log.warn({ err: asSlackError(error) }, 'slack: views.open failed');
      await respond({ response_type: 'ephemeral', text: 'I could not open the form in time. Try the shortcut again.' });
    }
  });

  app.view<ViewSubmitAction>(VIEWS.dream, (args) => submit(deps, args, false));
  app.view<ViewSubmitAction>(VIEWS.remix, (args) => submit(deps, args, true));

  app.event('app_mention', async ({ event, body, context, client }) => {
    // Bolt acked the envelope already; retries of it carry the same event_id, hence the same key.
    if (!event.user) return;
    const text = mentionText(event.text, context.botUserId);
    const files = ((event as { files?: (SlackFileRef & { filetype?: string })[] }).files ?? []).filter(isImageFile);
    const origin = {
      team: teamRef(context, body.team_id), userId: event.user, channelId: event.channel, threadTs: event.thread_ts ?? event.ts,
      idempotencyKey: keys.event(body.event_id), workspaceId: (body as { context_team_id?: string }).context_team_id ?? body.team_id,
      ...installationOf(context), reactTo: { channel: event.channel, ts: event.ts },
    };
    const d = forRequest(deps, client, context);
    if (!text && files.length === 0) {
      deps.later(() => tell(d, origin, 'Tell me what to dream, e.g. `@dreambot a paper boat drifts down a stream --ar 9:16`, or attach a picture to animate.'));
      return;
    }
    deps.later(() => dream(d, origin, async () => {
      const values = parseDreamText(text);
      if (files[0]) values.image = await fetchImage(d, files[0]);
      if (files[1]) values.end_image = await fetchImage(d, files[1]);
      return toRequest(values);
    }));
  });
}

/** A submitted dream or remix form: cheap checks on the form, then ack, then the real work. */
async function submit(base: SlackDeps, { ack, view, body, context, client }: SlackViewMiddlewareArgs<ViewSubmitAction> & AllMiddlewareArgs, remix: boolean): Promise<void> {
  const deps = forRequest(base, client, context);
  const meta = decodeMetadata(view.private_metadata);
  if (!meta) return ack({ response_action: 'errors', errors: { prompt: 'This form has expired. Run /dream again.' } });
  const values = parseModalState(view.state.values as never);
  const start = values.startFile ?? (meta.s ? { id: meta.s } : undefined);
  const end = values.endFile ?? (meta.e ? { id: meta.e } : undefined);
  const problem = remix ? null : precheck(values, start, end);
  if (problem) return ack(problem);
  await ack();
  const origin = {
    team: teamRef(context, body.team?.id), userId: body.user.id, userName: body.user.name, channelId: meta.c,
    ...(meta.t ? { threadTs: meta.t } : {}), idempotencyKey: keys.view(view.id), ...interactionWorkspace(body.team?.id, context),
  };
  if (remix && meta.p) {
    const parentId = meta.p;
    deps.later(async () => {
      try {
        const options: Record<string, unknown> = { ...toRequest(values.values), loop: !!values.values.loop };
        delete options.prompt;
        if (values.startFile) options.startImage = await fetchImage(deps, values.startFile);
        if (values.endFile) options.endImage = await fetchImage(deps, values.endFile);
        await follow(deps, { ...origin, verb: 'remixed a clip' }, { action: 'remix', parentId, prompt: String(values.values.prompt ?? ''), options });
      } catch (error) {
        await tell(deps, origin, errorText(error));
      }
    });
    return;
  }
  deps.later(() => dream(deps, origin, async () => {
    const images: { start?: ImageSource; end?: ImageSource } = {};
    if (start) images.start = await fetchImage(deps, start);
    if (end) images.end = await fetchImage(deps, end);
    return modalRequest(values, images);
  }));
}
