import { createWriteStream } from 'node:fs';
import { rm } from 'node:fs/promises';
import { Readable } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import type { ReadableStream as WebReadableStream } from 'node:stream/web';
import { ErrorCode, permanentError, transientError } from '../../errors.ts';

/** A download whose URL may have expired: the caller fetches the generation again for a fresh one. */
export class ExpiredAssetError extends Error {
  constructor(readonly status: number) {
    super(`asset URL answered ${status}`);
  }
}

/**
 * Streams a finished clip from Luma's CDN to `destination`. Plain fetch is enough (no auth, one GET);
 * how long asset URLs stay valid is undocumented, so this runs as soon as the generation completes.
 */
export async function downloadClip(url: string, destination: string, signal: AbortSignal, fetchImpl: typeof fetch = fetch): Promise<number> {
  let response: Response;
  try {
    response = await fetchImpl(url, { signal, redirect: 'follow' });
  } catch (error) {
    if (signal.aborted) throw permanentError(ErrorCode.Cancelled, 'download cancelled');
    throw transientError(ErrorCode.BackendUnavailable, `could not download the Luma clip: ${(error as Error).message}`, { cause: error });
  }
  if (response.status === 403 || response.status === 404 || response.status === 410) {
    await response.body?.cancel().catch(() => undefined);
    throw new ExpiredAssetError(response.status);
  }
  if (!response.ok || !response.body) {
    await response.body?.cancel().catch(() => undefined);
    throw transientError(ErrorCode.BackendUnavailable, `the Luma clip download answered HTTP ${response.status}`);
  }
  let bytes = 0;
  const counted = Readable.fromWeb(response.body as unknown as WebReadableStream<Uint8Array>).on('data', (chunk: Buffer) => {
    bytes += chunk.length;
  });
  try {
    await pipeline(counted, createWriteStream(destination), { signal });
  } catch (error) {
    await rm(destination, { force: true });
    if (signal.aborted) throw permanentError(ErrorCode.Cancelled, 'download cancelled');
    throw transientError(ErrorCode.BackendUnavailable, `the Luma clip download broke off: ${(error as Error).message}`, { cause: error });
  }
  if (bytes === 0) throw transientError(ErrorCode.BackendUnavailable, 'the Luma clip download was empty');
  return bytes;
}
