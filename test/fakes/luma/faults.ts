/**
 * Fault injection for the fake Luma. Each fault is a counter that the next matching request or
 * generation consumes, so a test says exactly how many requests misbehave. The same faults can be asked
 * for from a prompt (for CLI trials, where there is no handle on the fake object):
 *   [fake:fail=<reason or alias>]  the generation ends failed with that failure_reason
 *   [fake:dream=<ms>]               the generation dreams for that long
 *   [fake:hang=<ms>]                the create is accepted, but the response comes that much later
 *   [fake:nocallback]               no callbacks for this generation
 */
export const failureReasons = {
  blacklisted: 'Contains blacklisted words',
  frames: 'Frame moderation failed',
  moderation: 'Advanced prompt moderation failed',
  input: 'Failed to read user input frames',
  prompt: 'Prompt processing failed',
  dispatch: 'Error dispatching job',
  job: 'Job failed',
  callback: 'Error processing callback',
} as const;

export type RequestClass = 'create' | 'read' | 'any';

interface ServerErrorFault {
  remaining: number;
  route: RequestClass;
  status: number;
  /** For creates: the generation is created first, then the error is returned (an ambiguous failure). */
  afterCommit: boolean;
}

export class Faults {
  private failures: { reason: string; remaining: number }[] = [];
  private storm = { remaining: 0, retryAfterS: undefined as number | undefined };
  private serverErrors: ServerErrorFault[] = [];
  private slow: { dreamingMs: number; remaining: number }[] = [];
  private hangs: { ms: number; remaining: number }[] = [];
  private silent = 0;
  /** Every callback is sent this many times (Luma may send one state more than once). */
  callbackRepeats = 1;

  /** The next `count` generations end failed with `reason` (a failure_reason text or an alias above). */
  failNext(reason: string, count = 1): this {
    this.failures.push({ reason: resolveReason(reason), remaining: count });
    return this;
  }

  /** The next `count` creates are answered 429, with a Retry-After header when `retryAfterS` is given. */
  rateLimitStorm(count: number, retryAfterS?: number): this {
    this.storm = { remaining: count, retryAfterS };
    return this;
  }

  /** The next `count` matching requests are answered with a 5xx. */
  serverErrorsNext(count: number, options: { route?: RequestClass; status?: number; afterCommit?: boolean } = {}): this {
    this.serverErrors.push({ remaining: count, route: options.route ?? 'any', status: options.status ?? 500, afterCommit: options.afterCommit ?? false });
    return this;
  }

  /** The next `count` generations dream for `dreamingMs`. */
  slowNext(dreamingMs: number, count = 1): this {
    this.slow.push({ dreamingMs, remaining: count });
    return this;
  }

  /** The next `count` creates succeed on the server but answer only after `ms` (past the client's timeout). */
  hangCreates(count: number, ms: number): this {
    this.hangs.push({ ms, remaining: count });
    return this;
  }

  /** The next `count` generations send no callbacks. */
  dropCallbacks(count: number): this {
    this.silent += count;
    return this;
  }

  clear(): void {
    this.failures = [];
    this.storm = { remaining: 0, retryAfterS: undefined };
    this.serverErrors = [];
    this.slow = [];
    this.hangs = [];
    this.silent = 0;
    this.callbackRepeats = 1;
  }

  takeStorm(): { retryAfterS: number | undefined } | undefined {
    if (this.storm.remaining <= 0) return undefined;
    this.storm.remaining -= 1;
    return { retryAfterS: this.storm.retryAfterS };
  }

  takeServerError(kind: 'create' | 'read'): { status: number; afterCommit: boolean } | undefined {
    const fault = this.serverErrors.find((f) => f.remaining > 0 && (f.route === 'any' || f.route === kind));
    if (!fault) return undefined;
    fault.remaining -= 1;
    return { status: fault.status, afterCommit: kind === 'create' && fault.afterCommit };
  }

  /** What a new generation should do, from queued faults and then from markers in its prompt. */
  takeGenerationPlan(prompt: string | undefined): { failure?: string; dreamingMs?: number; hangMs?: number; silent: boolean } {
    const plan: { failure?: string; dreamingMs?: number; hangMs?: number; silent: boolean } = { silent: false };
    const failure = this.failures.find((f) => f.remaining > 0);
    if (failure) {
      failure.remaining -= 1;
      plan.failure = failure.reason;
    }
    const slow = this.slow.find((s) => s.remaining > 0);
    if (slow) {
      slow.remaining -= 1;
      plan.dreamingMs = slow.dreamingMs;
    }
    const hang = this.hangs.find((h) => h.remaining > 0);
    if (hang) {
      hang.remaining -= 1;
      plan.hangMs = hang.ms;
    }
    if (this.silent > 0) {
      this.silent -= 1;
      plan.silent = true;
    }
    const text = prompt ?? '';
    const fail = /\[fake:fail=([^\]]+)\]/.exec(text);
    if (fail) plan.failure = resolveReason(fail[1]!);
    const dream = /\[fake:dream=(\d+)\]/.exec(text);
    if (dream) plan.dreamingMs = Number(dream[1]);
    const hangMark = /\[fake:hang=(\d+)\]/.exec(text);
    if (hangMark) plan.hangMs = Number(hangMark[1]);
    if (text.includes('[fake:nocallback]')) plan.silent = true;
    return plan;
  }
}

function resolveReason(reason: string): string {
  return (failureReasons as Record<string, string>)[reason] ?? reason;
}
