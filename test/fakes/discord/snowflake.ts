/** Discord snowflakes: ms since the Discord epoch << 22, plus a worker/process/increment tail. */
export const DISCORD_EPOCH = 1_420_070_400_000n;

let increment = 0n;

/** A new snowflake for the given time (now by default). Always 17–19 digits for present-day times. */
export function snowflake(atMs: number = Date.now()): string {
  increment = (increment + 1n) & 0xfffn;
  return (((BigInt(Math.floor(atMs)) - DISCORD_EPOCH) << 22n) | (1n << 17n) | increment).toString();
}

export function snowflakeTime(id: string): number {
  return Number((BigInt(id) >> 22n) + DISCORD_EPOCH);
}
