import { createHmac, timingSafeEqual } from 'node:crypto';

/**
 * HMAC-SHA256 signed, expiring asset URLs. The signature covers the asset id and the expiry, so neither
 * can be changed without the secret; it is base64url so it travels in a query string unescaped.
 * Luma (and anyone else handed such a URL) can fetch the asset until it expires, and nothing else.
 */

const nowUnixS = (now: Date | number = Date.now()) => Math.floor((typeof now === 'number' ? now : now.getTime()) / 1000);

function sign(secret: string, assetId: string, exp: number): string {
  return createHmac('sha256', secret).update(`asset:${assetId}:${exp}`).digest('base64url');
}

/** '/assets/<id>?exp=<unix seconds>&sig=<base64url>' */
export function signAssetPath(secret: string, assetId: string, expiresAtUnixS: number): string {
  const exp = Math.floor(expiresAtUnixS);
  return `/assets/${encodeURIComponent(assetId)}?exp=${exp}&sig=${sign(secret, assetId, exp)}`;
}

/** An absolute URL for the asset, valid for `ttlS` seconds from `now` (ms since epoch or a Date). */
export function assetUrl(baseUrl: string, secret: string, assetId: string, ttlS: number, now: Date | number = Date.now()): string {
  return baseUrl.replace(/\/+$/, '') + signAssetPath(secret, assetId, nowUnixS(now) + Math.floor(ttlS));
}

/**
 * True only for a well-formed, unexpired signature made with `secret` for exactly this id and expiry.
 * `exp` and `sig` are taken as they arrive in the query string (possibly missing or repeated).
 */
export function verifyAssetSignature(secret: string, assetId: string, exp: unknown, sig: unknown, now: Date | number = Date.now()): boolean {
  if (typeof exp !== 'string' && typeof exp !== 'number') return false;
  if (typeof sig !== 'string' || !/^[A-Za-z0-9_-]{43}$/.test(sig)) return false;
  const expText = String(exp);
  if (!/^\d{1,12}$/.test(expText)) return false;
  const expS = Number(expText);
  if (expS <= nowUnixS(now)) return false;
  // Compare the text, not decoded bytes: the last base64url character carries 2 spare bits, so two
  // different strings can decode to the same digest.
  const expected = Buffer.from(sign(secret, assetId, expS), 'ascii');
  const given = Buffer.from(sig, 'ascii');
  return given.length === expected.length && timingSafeEqual(given, expected);
}
