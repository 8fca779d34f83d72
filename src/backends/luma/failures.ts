import { ErrorCode, permanentError, transientError, userError, type AppError } from '../../errors.ts';

/**
 * Luma's `failure_reason` is human text with no machine code (backend-luma.md §5). Each known reason
 * maps to what the member reads and whether trying again can help; Luma refunds every failed
 * generation, so the worker releases the hold whatever the reason.
 */
export type FailureClass = 'content' | 'input-image' | 'prompt' | 'transient' | 'unknown';

const rules: [RegExp, FailureClass][] = [
  [/blacklisted words|frame moderation failed|prompt moderation failed|moderation/i, 'content'],
  [/failed to read user input frames/i, 'input-image'],
  [/prompt processing failed/i, 'prompt'],
  [/error dispatching job|^job failed|error processing callback/i, 'transient'],
];

export function classifyFailure(reason: string | null | undefined): FailureClass {
  const text = (reason ?? '').trim();
  for (const [pattern, kind] of rules) if (pattern.test(text)) return kind;
  return 'unknown';
}

/** True for the reasons where a fresh generation of the same request may well succeed. */
export function isTransientFailure(reason: string | null | undefined): boolean {
  return classifyFailure(reason) === 'transient';
}

export function failureError(reason: string | null | undefined, context: Record<string, unknown> = {}): AppError {
  const said = reason?.trim() || 'no reason given';
  const ctx = { ...context, failureReason: said };
  switch (classifyFailure(reason)) {
    case 'content':
      return permanentError(ErrorCode.ContentRefused,
        `The video service refused this under its content rules ("${said}"). Change the prompt or image and try again; nothing was charged.`, { context: ctx });
    case 'input-image':
      return userError(ErrorCode.ImageFetchFailed,
        "The video service couldn't download the input image from this server. Try again in a moment; if it keeps happening, the operator should check that PUBLIC_BASE_URL is reachable from the internet. Nothing was charged.", ctx);
    case 'prompt':
      return userError(ErrorCode.InvalidRequest,
        "The video service couldn't work with this prompt. Rephrase it (one subject, one action, plain words) and try again; nothing was charged.", ctx);
    case 'transient':
      return transientError(ErrorCode.BackendFailed,
        `The video service had a temporary problem ("${said}"). Re-roll to try again; nothing was charged.`, { context: ctx });
    default:
      return permanentError(ErrorCode.BackendFailed, `Luma generation failed: ${said}`, { context: ctx });
  }
}
