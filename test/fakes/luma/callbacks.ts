import type { FakeLumaStats } from './stats.ts';

/**
 * Luma's callback delivery (backend-luma.md §4): POST the full Generation to `callback_url`; an answer
 * other than 200 is retried 3 times, 100 ms apart, with a 5 s timeout per attempt.
 */
export const CALLBACK_RETRIES = 3;
export const CALLBACK_RETRY_DELAY_MS = 100;
export const CALLBACK_TIMEOUT_MS = 5000;

export async function postCallback(url: string, body: unknown, stats: FakeLumaStats, log: (line: string) => void): Promise<boolean> {
  for (let attempt = 0; attempt <= CALLBACK_RETRIES; attempt++) {
    if (attempt > 0) await new Promise((r) => setTimeout(r, CALLBACK_RETRY_DELAY_MS));
    stats.callbacks.attempts += 1;
    try {
      const res = await fetch(url, {
        method: 'POST',
        headers: { 'content-type': 'application/json', 'user-agent': 'fake-luma-callbacks' },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(CALLBACK_TIMEOUT_MS),
      });
      await res.arrayBuffer().catch(() => undefined);
      if (res.status === 200) {
        stats.callbacks.delivered += 1;
        return true;
      }
      log(`callback ${redact(url)} answered ${res.status}`);
    } catch (error) {
      log(`callback ${redact(url)} failed: ${(error as Error).message}`);
    }
  }
  stats.callbacks.abandoned += 1;
  return false;
}

/** Callback URLs carry a token in the query: keep it out of logs. */
function redact(url: string): string {
  return url.replace(/\?.*$/, '?…');
}
