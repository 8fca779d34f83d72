import { describe, expect, it } from 'vitest';
import { toRequest } from '../commands/dream.ts';
import { ErrorCode } from '../src/errors.ts';
import { findBlocked } from '../src/moderation.ts';
import { parseRequest, requestHash } from '../src/request.ts';
import { periodKey, nextReset } from '../src/ledger/periods.ts';
import { priceOf } from '../src/ledger/pricing.ts';

describe('parseRequest', () => {
  it.each([
    [{ prompt: 'a fox', aspect: '5:4' }, ErrorCode.InvalidRequest, /Choose one of: 16:9, 9:16, 1:1, 4:3, 3:4, 21:9, 9:21/],
    [{ prompt: 'a fox', duration: '7s' }, ErrorCode.InvalidRequest, /duration.*5s, 9s/],
    [{ prompt: 'a fox', camera: 'barrel_roll' }, ErrorCode.InvalidRequest, /camera move.*push_in/],
    [{ prompt: 'a fox', resolution: '8k' }, ErrorCode.InvalidRequest, /resolution/],
    [{ prompt: 'a fox', colour: 'red' }, ErrorCode.InvalidRequest, /Unknown option "colour"/],
    [{ prompt: 'x'.repeat(5001) }, ErrorCode.PromptTooLong, /5,001 characters; the limit is 5,000/],
    [{ prompt: 'hi' }, ErrorCode.PromptMissing, /Describe the clip/],
    [{ prompt: 'loop it', loop: true, endImage: { kind: 'url', url: 'https://x.test/a.png' } }, ErrorCode.InvalidRequest, /loop/],
    [{ operation: 'extend', prompt: 'go on' }, ErrorCode.InvalidRequest, /say which one/],
    [{ prompt: 'a fox', loop: 'yes' }, ErrorCode.InvalidRequest, /loop/],
  ])('GIVEN %o THEN %s', (raw, code, message) => {
    expect(() => parseRequest(raw)).toThrow(expect.objectContaining({ code, kind: 'user', message: expect.stringMatching(message) }));
  });

  it('accepts a start image instead of a prompt, and trims the prompt', () => {
    expect(parseRequest({ startImage: { kind: 'url', url: 'https://x.test/a.png' } })).toMatchObject({ operation: 'generate', prompt: '', loop: false });
    expect(parseRequest({ prompt: '  a fox runs  ' }).prompt).toBe('a fox runs');
  });

  it('hashes what was asked, not how it was spelled', () => {
    expect(requestHash(parseRequest({ prompt: 'a fox', aspect: '1:1' }))).toBe(requestHash(parseRequest({ aspect: '1:1', prompt: ' a fox ' })));
    expect(requestHash(parseRequest({ prompt: 'a fox' }))).not.toBe(requestHash(parseRequest({ prompt: 'a cat' })));
  });
});

describe('commands/dream toRequest', () => {
  it('maps option names to request fields and keeps unknown ones for admission to name', () => {
    expect(toRequest({ prompt: 'p', end_image: { kind: 'url', url: 'u' }, loop: false, aspect: undefined, fps: 60 }))
      .toEqual({ prompt: 'p', endImage: { kind: 'url', url: 'u' }, fps: 60 });
  });
});

describe('moderation', () => {
  it.each([
    ['A ZOMBIE walks', ['zombie'], 'zombie'],
    ['zombies walk', ['zombie'], null],
    ['a classic car', ['ass'], null],
    ['blood, everywhere', ['blood'], 'blood'],
    ['red ketchup', ['hot dog', 'ketchup'], 'ketchup'],
    ['a hot dog stand', ['hot dog'], 'hot dog'],
  ])('GIVEN "%s" and %o THEN %s', (prompt, words, hit) => {
    expect(findBlocked(prompt, words)).toBe(hit);
  });
});

describe('periods and prices', () => {
  it.each([
    ['monthly', '2026-12-31T23:59:59Z', '2026-12', '2027-01-01'],
    ['weekly', '2026-11-21T12:00:00Z', '2026-W47', '2026-11-23'],
    ['weekly', '2027-01-01T00:00:00Z', '2026-W53', '2027-01-04'],
    ['daily', '2026-11-21T23:00:00Z', '2026-11-21', '2026-11-22'],
  ] as const)('GIVEN %s at %s THEN period %s, next reset %s', (period, at, key, next) => {
    expect(periodKey(period, new Date(at))).toBe(key);
    expect(nextReset(period, new Date(at))?.toISOString().slice(0, 10)).toBe(next);
  });

  it('prices from the one table: preview 1, Luma on the web-app scale, 9 s billed as 10 s', () => {
    expect(priceOf({ backend: 'preview', operation: 'generate', resolution: '720p', duration: '9s' })).toBe(1);
    expect(priceOf({ backend: 'luma', operation: 'generate', model: 'ray-2', resolution: '720p', duration: '5s' })).toBe(160);
    expect(priceOf({ backend: 'luma', operation: 'generate', model: 'ray-2', resolution: '720p', duration: '9s' })).toBe(320);
    expect(priceOf({ backend: 'luma', operation: 'generate', model: 'ray-flash-2', resolution: '1080p', duration: '5s' })).toBe(65);
    expect(priceOf({ backend: 'luma', operation: 'upscale', resolution: '4k', duration: '5s' })).toBe(20);
    expect(priceOf({ backend: 'comfyui', operation: 'upscale', resolution: '720p', duration: '5s' })).toBeNull();
  });
});
