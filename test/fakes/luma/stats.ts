/**
 * What the fake Luma saw, for tests to assert on: accepted creates (with their times, to check the
 * creates-per-minute limit over any 60 s window), how many generations ran at once, 429s by cause,
 * and requests per route.
 */
export interface RejectionCounts {
  /** 429s the fake sent because a fault asked for a storm. */
  storm: number;
  /** 429s the fake sent because the client went over the concurrency limit. */
  concurrency: number;
  /** 429s the fake sent because the client went over the creates-per-minute limit. */
  rate: number;
}

export class FakeLumaStats {
  /** Accepted creates of any kind (video, upscale, audio), in order. */
  readonly createTimes: number[] = [];
  readonly createsByKind = { video: 0, upscale_video: 0, add_audio: 0 };
  readonly rejections: RejectionCounts = { storm: 0, concurrency: 0, rate: 0 };
  /** 'METHOD /route/pattern' → count, e.g. 'GET /generations/:id'. */
  readonly requests = new Map<string, number>();
  /** Downloads of a generation's MP4, by generation id. */
  readonly downloads = new Map<string, number>();
  /** Callback POSTs attempted, answered 2xx, and given up on. */
  readonly callbacks = { attempts: 0, delivered: 0, abandoned: 0 };
  concurrentNow = 0;
  concurrentPeak = 0;

  get creates(): number {
    return this.createTimes.length;
  }

  countRequest(route: string): void {
    this.requests.set(route, (this.requests.get(route) ?? 0) + 1);
  }

  requestsFor(route: string): number {
    return this.requests.get(route) ?? 0;
  }

  /** Accepted creates within the `windowMs` ending at `at`. */
  createsWithin(windowMs: number, at = Date.now()): number {
    return this.createTimes.filter((t) => t > at - windowMs && t <= at).length;
  }

  /** The most accepted creates inside any window of `windowMs`, optionally only counting creates since `since`. */
  maxCreatesInAnyWindow(windowMs = 60_000, since = 0): number {
    const times = this.createTimes.filter((t) => t >= since);
    let best = 0;
    let start = 0;
    for (let end = 0; end < times.length; end++) {
      while (times[end]! - times[start]! >= windowMs) start++;
      best = Math.max(best, end - start + 1);
    }
    return best;
  }

  started(): void {
    this.concurrentNow += 1;
    this.concurrentPeak = Math.max(this.concurrentPeak, this.concurrentNow);
  }

  ended(): void {
    this.concurrentNow = Math.max(0, this.concurrentNow - 1);
  }

  /** Forgets history but not what is running now (those still end and are counted down). */
  reset(): void {
    this.createTimes.length = 0;
    this.createsByKind.video = 0;
    this.createsByKind.upscale_video = 0;
    this.createsByKind.add_audio = 0;
    this.rejections.storm = 0;
    this.rejections.concurrency = 0;
    this.rejections.rate = 0;
    this.requests.clear();
    this.downloads.clear();
    this.callbacks.attempts = 0;
    this.callbacks.delivered = 0;
    this.callbacks.abandoned = 0;
    this.concurrentPeak = this.concurrentNow;
  }
}
