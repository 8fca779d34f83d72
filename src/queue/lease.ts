import type { Redis } from 'ioredis';

/**
 * A Redis key that one owner holds at a time, for a limited time: the owner renews it while it works,
 * and a process that dies simply stops renewing, so another takes over once the time is up. Used for
 * ComfyUI servers (one prompt per server) and Discord status lines (one process edits each).
 */
const HOLD = `local v = redis.call('get', KEYS[1])
if not v then redis.call('set', KEYS[1], ARGV[1], 'px', ARGV[2]) return 1 end
if v == ARGV[1] then redis.call('pexpire', KEYS[1], ARGV[2]) return 1 end
return 0`;
const RELEASE = `if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end return 0`;

/** Takes the lease for `owner`, or renews it when `owner` already holds it. False when another holds it. */
export async function holdLease(redis: Redis, key: string, owner: string, ttlMs: number): Promise<boolean> {
  return (await redis.eval(HOLD, 1, key, owner, ttlMs)) === 1;
}

/** Gives the lease up, if `owner` still holds it. */
export async function releaseLease(redis: Redis, key: string, owner: string): Promise<void> {
  await redis.eval(RELEASE, 1, key, owner);
}
