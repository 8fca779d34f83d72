/**
 * This process's own record of Luma creates over the last minute. BullMQ's limiter spaces out job
 * starts, but a provider 429 resets its window (Worker.rateLimit sets a fresh expiry) and resumed jobs
 * use tokens without creating anything; this log counts only real creates, so a burst right after a
 * 429 cannot push the account over its creates-per-minute limit. Across processes BullMQ's limiter is
 * still what spreads the load.
 */
export class CreateWindow {
  private readonly times: number[] = [];

  constructor(private readonly max: number, private readonly windowMs = 60_000, private readonly now: () => number = Date.now) {}

  /** Takes a slot and returns its token, or returns how long to wait before one frees up. */
  reserve(): { ok: true; token: number } | { ok: false; waitMs: number } {
    const now = this.now();
    while (this.times.length > 0 && this.times[0]! <= now - this.windowMs) this.times.shift();
    if (this.times.length >= this.max) return { ok: false, waitMs: this.times[0]! + this.windowMs - now + 50 };
    this.times.push(now);
    return { ok: true, token: now };
  }

  /** Gives a slot back: the create was definitely refused (4xx, 429), so it does not count. */
  release(token: number): void {
    const i = this.times.indexOf(token);
    if (i >= 0) this.times.splice(i, 1);
  }
}
