/**
 * Member images from Slack: `url_private_download` fetched with the bot token (files:read), handed to
 * admission as bytes. Slack answers a request it won't serve with 200 and its HTML login page
 * (bolt-js #2585), so a web page is caught here and explained, before it could pass for an image.
 */
import type { WebClient } from '@slack/web-api';
import { ErrorCode, isAppError, userError } from '../../src/errors.ts';
import { MAX_REDIRECTS, tooLargeError } from '../../src/inputs/fetch-url.ts';
import type { Logger } from '../../src/log.ts';
import type { ImageSource } from '../../src/request.ts';
import type { SlackFileRef } from './parse.ts';

export interface FileFetchOptions {
  client: WebClient;
  token: string;
  /** SLACK_API_URL: its host is trusted with the token too (a local fake, an enterprise grid host). */
  apiUrl: string;
  maxBytes: number;
  log: Logger;
  timeoutMs?: number;
}

const LOGIN_PAGE_MESSAGE =
  "That file came through as a Slack sign-in page, not the picture: I'm not allowed to read files here. " +
  'Ask a workspace admin to reinstall the app with the files:read permission, or paste a public https link with --image. Nothing was charged.';

/** The bot token goes to Slack's own file hosts and nowhere else. */
function trustedHost(url: URL, apiUrl: string): boolean {
  const host = url.hostname.toLowerCase();
  if (host === 'slack.com' || host.endsWith('.slack.com') || host.endsWith('.slack-edge.com')) return url.protocol === 'https:';
  try {
    return new URL(apiUrl).host === url.host;
  } catch {
    return false;
  }
}

export async function fetchSlackImage(options: FileFetchOptions, ref: SlackFileRef): Promise<ImageSource> {
  let file = ref;
  if (!file.url_private_download && !file.url_private) {
    const info = await options.client.files.info({ file: ref.id });
    file = { ...ref, ...(info.file as SlackFileRef) };
  }
  if (file.size !== undefined && file.size > options.maxBytes) throw tooLargeError(file.size, options.maxBytes);
  const first = file.url_private_download ?? file.url_private;
  if (!first) throw userError(ErrorCode.ImageFetchFailed, "Slack didn't tell me where that file is. Attach it again. Nothing was charged.", { file: ref.id });

  const controller = new AbortController();
  const timer = setTimeout(() => controller.abort(), options.timeoutMs ?? 15_000);
  try {
    let url = new URL(first);
    for (let hop = 0; ; hop++) {
      if (!trustedHost(url, options.apiUrl)) {
        throw userError(ErrorCode.ForbiddenUrl, "That file isn't hosted by Slack, so I won't fetch it with the bot's key. Attach the picture itself. Nothing was charged.", { host: url.host });
      }
      const res = await fetch(url, { headers: { authorization: `Bearer ${options.token}` }, redirect: 'manual', signal: controller.signal });
      if (res.status >= 300 && res.status < 400 && res.headers.get('location') && hop < MAX_REDIRECTS) {
        await res.body?.cancel();
        url = new URL(res.headers.get('location')!, url);
        continue;
      }
      if (res.status !== 200) {
        await res.body?.cancel();
        throw userError(ErrorCode.ImageFetchFailed, `Slack wouldn't hand me that file (HTTP ${res.status}). Attach it again in a moment. Nothing was charged.`, { status: res.status });
      }
      const type = (res.headers.get('content-type') ?? '').toLowerCase();
      if (type.startsWith('text/html')) {
        await res.body?.cancel();
        options.log.warn({ file: ref.id }, 'slack served a login page for a file: is the files:read scope granted?');
        throw userError(ErrorCode.UnsupportedImage, LOGIN_PAGE_MESSAGE, { detected: 'text/html' });
      }
      const declared = Number(res.headers.get('content-length') ?? NaN);
      if (declared > options.maxBytes) {
        await res.body?.cancel();
        throw tooLargeError(declared, options.maxBytes);
      }
      const chunks: Buffer[] = [];
      let total = 0;
      for await (const chunk of res.body ?? []) {
        total += (chunk as Uint8Array).length;
        if (total > options.maxBytes) {
          controller.abort();
          throw tooLargeError(undefined, options.maxBytes);
        }
        chunks.push(Buffer.from(chunk as Uint8Array));
      }
      return { kind: 'bytes', data: Buffer.concat(chunks, total), ...(file.name ? { filename: file.name } : {}) };
    }
  } catch (error) {
    if (controller.signal.aborted && !isAppError(error)) {
      throw userError(ErrorCode.ImageFetchFailed, 'Downloading that file from Slack took too long. Try again in a moment. Nothing was charged.');
    }
    throw error;
  } finally {
    clearTimeout(timer);
  }
}
