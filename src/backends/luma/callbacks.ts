import { createHmac, timingSafeEqual } from 'node:crypto';
import express, { type Router } from 'express';
import type { Config } from '../../config.ts';
import type { HttpServer } from '../../http/server.ts';
import type { Logger } from '../../log.ts';
import type { Backend } from '../types.ts';
import type { WakeupBus } from './wakeups.ts';

/**
 * Luma's callbacks (backend-luma.md §4): it POSTs the Generation to `callback_url` on each state change,
 * maybe more than once, unsigned. The URL names dreambot's generation id and carries an HMAC of it, so a
 * forged or mistyped callback is dropped; a valid one only wakes the poller, which then re-fetches the
 * generation by its Luma id. Nothing in the body is trusted or even needed.
 */
export const CALLBACK_PATH = '/callbacks/luma';
const UUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

export function callbackToken(secret: string, generationId: string): string {
  return createHmac('sha256', secret).update(`luma-callback:${generationId}`).digest('base64url');
}

export function callbackUrl(publicBaseUrl: string, secret: string, generationId: string): string {
  return `${publicBaseUrl.replace(/\/+$/, '')}${CALLBACK_PATH}/${generationId}?token=${callbackToken(secret, generationId)}`;
}

export function verifyCallbackToken(secret: string, generationId: string, token: unknown): boolean {
  if (typeof token !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(token)) return false;
  const expected = Buffer.from(callbackToken(secret, generationId), 'ascii');
  const given = Buffer.from(token, 'ascii');
  return given.length === expected.length && timingSafeEqual(given, expected);
}

export interface CallbackRouteOptions {
  secret: string;
  wakeups: WakeupBus;
  log: Logger;
}

/**
 * POST /callbacks/luma/:generationId?token=…  Always answers quickly: 200 for a callback we accept (Luma
 * retries anything else), 403 for a bad token, 404 for an id that cannot be ours.
 */
export function lumaCallbackRouter(options: CallbackRouteOptions): Router {
  const router = express.Router();
  router.post('/:generationId', (req, res) => {
    const id = String(req.params.generationId);
    req.resume(); // the body is not needed: drain it so the connection can be reused
    if (!UUID.test(id)) {
      res.status(404).json({ ok: false });
      return;
    }
    if (!verifyCallbackToken(options.secret, id, req.query.token)) {
      options.log.warn({ generationId: id }, 'luma callback with a bad token ignored');
      res.status(403).json({ ok: false });
      return;
    }
    options.log.debug({ generationId: id }, 'luma callback');
    options.wakeups.publish(id);
    res.status(200).json({ ok: true });
  });
  return router;
}

/**
 * Adds the callback route to an HTTP server when this deployment has a luma backend; returns whether it
 * did. Call it in every process that serves HTTP: the wake-up reaches the worker through Redis.
 */
export function mountLumaCallbacks(server: HttpServer, runtime: { backends: ReadonlyMap<string, Backend>; config: Pick<Config, 'assetSecret'>; log: Logger }): boolean {
  const luma = runtime.backends.get('luma') as (Backend & { wakeups?: WakeupBus }) | undefined;
  if (!luma?.wakeups) return false;
  server.mount(CALLBACK_PATH, lumaCallbackRouter({ secret: runtime.config.assetSecret, wakeups: luma.wakeups, log: runtime.log }));
  return true;
}
