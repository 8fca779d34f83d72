import {
  APIConnectionError, APIError, APIUserAbortError, AuthenticationError, PermissionDeniedError, RateLimitError,
} from 'lumaai';
import { ErrorCode, permanentError, transientError, userError, type AppError } from '../../errors.ts';
import type { Logger } from '../../log.ts';

/**
 * The SDK's errors (backend-luma.md §6) turned into dreambot's one error family, at the edge. Two
 * questions matter: may the request have taken effect on Luma's side (only a create cares: it is not
 * idempotent), and is it worth trying again?
 */

/** `{detail}` is a string in Luma's docs; FastAPI-style validation lists are joined, just in case. */
export function detailOf(error: unknown): string | undefined {
  if (!(error instanceof APIError)) return undefined;
  const body = error.error as { detail?: unknown } | undefined;
  const detail = body?.detail;
  if (typeof detail === 'string') return detail;
  if (Array.isArray(detail)) {
    return detail.map((d) => (typeof d === 'object' && d && 'msg' in d ? String((d as { msg: unknown }).msg) : String(d))).join('; ');
  }
  return undefined;
}

/** `retry-after-ms`, then `retry-after` (seconds or an HTTP date); undefined when absent (v1 documents none). */
export function retryAfterMs(error: unknown, now = Date.now()): number | undefined {
  if (!(error instanceof APIError) || !error.headers) return undefined;
  const headers = error.headers as Record<string, string | null | undefined>;
  const ms = Number.parseFloat(headers['retry-after-ms'] ?? '');
  if (Number.isFinite(ms) && ms >= 0) return ms;
  const after = headers['retry-after'];
  if (!after) return undefined;
  const seconds = Number.parseFloat(after);
  if (Number.isFinite(seconds) && seconds >= 0) return seconds * 1000;
  const date = Date.parse(after);
  return Number.isFinite(date) ? Math.max(0, date - now) : undefined;
}

export function statusOf(error: unknown): number | undefined {
  return error instanceof APIError && typeof error.status === 'number' ? error.status : undefined;
}

export function isAbort(error: unknown): boolean {
  return error instanceof APIUserAbortError || (error instanceof Error && error.name === 'AbortError');
}

/**
 * A create whose outcome is unknown: no answer (connection error, timeout) or a 5xx, which the server
 * may send after it accepted the generation. Such a create must be reconciled, never blindly repeated.
 */
export function isAmbiguous(error: unknown): boolean {
  if (isAbort(error)) return false;
  if (error instanceof APIConnectionError) return true;
  const status = statusOf(error);
  if (status !== undefined) return status >= 500 || status === 408;
  return !(error instanceof APIError);
}

/** Reads (get, list, concepts) are safe to repeat: these are the answers worth waiting out. */
export function isRetryableRead(error: unknown): boolean {
  if (isAbort(error)) return false;
  if (error instanceof APIConnectionError || error instanceof RateLimitError) return true;
  const status = statusOf(error);
  if (status !== undefined) return status >= 500 || status === 408 || status === 409 || status === 429;
  return !(error instanceof APIError);
}

export function isAuthError(error: unknown): boolean {
  return error instanceof AuthenticationError || error instanceof PermissionDeniedError;
}

/** Bad credentials: hopeless for every job until the operator acts, so said loudly in the log. */
export function authFailure(error: unknown, log: Logger): AppError {
  const status = statusOf(error);
  log.error({ status, detail: detailOf(error) }, 'Luma rejected the API key: set a valid LUMA_API_KEY (the luma backend fails every job until then)');
  return permanentError(ErrorCode.BackendUnavailable, `Luma rejected the API key (HTTP ${status}); the operator must set a valid LUMA_API_KEY`, { cause: error, context: { status } });
}

/** What a failed create means, once ambiguity has been ruled out or dealt with. */
export function createFailure(error: unknown, log: Logger, what: string): AppError {
  if (isAbort(error)) return permanentError(ErrorCode.Cancelled, `${what} cancelled`);
  if (isAuthError(error)) return authFailure(error, log);
  const status = statusOf(error);
  const detail = detailOf(error);
  if (status === 429) {
    return transientError(ErrorCode.RateLimited, 'Luma asked us to slow down', { cause: error, ...(retryAfterMs(error) === undefined ? {} : { retryAfterMs: retryAfterMs(error) }) });
  }
  if (status === 400 || status === 422) {
    return userError(ErrorCode.InvalidRequest, `The video service refused this request: ${detail ?? `HTTP ${status}`}. Nothing was charged.`, { status });
  }
  if (status === 404) return userError(ErrorCode.NotFound, 'The clip this builds on is no longer on the video service. Nothing was charged.', { status });
  return transientError(ErrorCode.BackendUnavailable, `Luma ${what} failed${status ? ` (HTTP ${status})` : ''}${detail ? `: ${detail}` : ''}`, { cause: error, context: { status } });
}

/** A read that will not get better by waiting. */
export function readFailure(error: unknown, log: Logger, what: string): AppError {
  if (isAbort(error)) return permanentError(ErrorCode.Cancelled, `${what} cancelled`);
  if (isAuthError(error)) return authFailure(error, log);
  const status = statusOf(error);
  if (status === 404) return permanentError(ErrorCode.BackendFailed, `The generation is no longer on Luma (${what})`, { cause: error });
  return permanentError(ErrorCode.BackendFailed, `Luma ${what} failed (HTTP ${status ?? '?'}): ${detailOf(error) ?? 'no detail'}`, { cause: error });
}

/**
 * Runs one SDK call with its own AbortSignal that follows `signal`. The SDK adds an abort listener to
 * whatever signal it is given and never removes it, so passing a job's long-lived signal to every poll
 * would pile up listeners for as long as the job runs.
 */
export async function withSignal<T>(signal: AbortSignal | undefined, call: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const controller = new AbortController();
  if (signal?.aborted) controller.abort(signal.reason);
  const onAbort = () => controller.abort(signal?.reason);
  signal?.addEventListener('abort', onAbort, { once: true });
  try {
    return await call(controller.signal);
  } finally {
    signal?.removeEventListener('abort', onAbort);
  }
}
