/**
 * One error family for the whole service. The `kind` decides what happens next:
 * - `user`: the person who asked gets `message`; nothing is retried, nothing is charged.
 * - `transient`: an operational hiccup (rate limit, timeout, 5xx); the worker retries with backoff.
 * - `permanent`: operational but hopeless (bad credentials, backend refused); no retry, credits released.
 * Foreign errors are wrapped at the edge with `asAppError`, so callers only ever see codes.
 */
export type ErrorKind = 'user' | 'transient' | 'permanent';

export const ErrorCode = {
  InvalidRequest: 'INVALID_REQUEST',
  PromptTooLong: 'PROMPT_TOO_LONG',
  PromptMissing: 'PROMPT_MISSING',
  UnsupportedImage: 'UNSUPPORTED_IMAGE',
  ImageTooLarge: 'IMAGE_TOO_LARGE',
  ImageFetchFailed: 'IMAGE_FETCH_FAILED',
  ForbiddenUrl: 'FORBIDDEN_URL',
  BlockedWord: 'BLOCKED_WORD',
  InsufficientCredits: 'INSUFFICIENT_CREDITS',
  MemberCapReached: 'MEMBER_CAP_REACHED',
  UnsupportedOperation: 'UNSUPPORTED_OPERATION',
  NotFound: 'NOT_FOUND',
  NotAllowed: 'NOT_ALLOWED',
  ContentRefused: 'CONTENT_REFUSED',
  Cancelled: 'CANCELLED',
  BackendUnavailable: 'BACKEND_UNAVAILABLE',
  BackendFailed: 'BACKEND_FAILED',
  BackendTimeout: 'BACKEND_TIMEOUT',
  RateLimited: 'RATE_LIMITED',
  Config: 'CONFIG',
  Internal: 'INTERNAL',
} as const;
export type ErrorCode = (typeof ErrorCode)[keyof typeof ErrorCode];

export interface AppErrorOptions {
  kind: ErrorKind;
  context?: Record<string, unknown>;
  retryAfterMs?: number;
  cause?: unknown;
}

export class AppError extends Error {
  readonly code: ErrorCode;
  readonly kind: ErrorKind;
  readonly context: Record<string, unknown>;
  readonly retryAfterMs: number | undefined;

  constructor(code: ErrorCode, message: string, options: AppErrorOptions) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'AppError';
    this.code = code;
    this.kind = options.kind;
    this.context = options.context ?? {};
    this.retryAfterMs = options.retryAfterMs;
  }

  get retryable(): boolean {
    return this.kind === 'transient';
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, kind: this.kind, message: this.message, context: this.context };
  }
}

/** A mistake or a limit of the person asking: shown to them as written. */
export function userError(code: ErrorCode, message: string, context?: Record<string, unknown>): AppError {
  return new AppError(code, message, { kind: 'user', context });
}

export function transientError(code: ErrorCode, message: string, options: Omit<AppErrorOptions, 'kind'> = {}): AppError {
  return new AppError(code, message, { ...options, kind: 'transient' });
}

export function permanentError(code: ErrorCode, message: string, options: Omit<AppErrorOptions, 'kind'> = {}): AppError {
  return new AppError(code, message, { ...options, kind: 'permanent' });
}

export function isAppError(error: unknown): error is AppError {
  return error instanceof AppError;
}

/**
 * Wraps anything thrown by a library so the rest of the code sees one shape. Unknown errors count as
 * transient: a retry is cheap where every external call is idempotent, and the attempt limit bounds it.
 */
export function asAppError(error: unknown): AppError {
  if (error instanceof AppError) return error;
  const message = error instanceof Error ? error.message : String(error);
  return new AppError(ErrorCode.Internal, message, { kind: 'transient', cause: error });
}

/** What a member sees for an error that is not theirs to fix. */
export function publicMessage(error: AppError): string {
  if (error.kind === 'user') return error.message;
  if (error.code === ErrorCode.ContentRefused || error.code === ErrorCode.BackendTimeout) return error.message;
  return 'The video service failed on this one. Nothing was charged; try again in a moment.';
}
