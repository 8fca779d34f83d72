import { describe, expect, it } from 'vitest';
import { GroupCommit } from '../src/db/group-commit.ts';

/** A run function whose batches finish only when the test says so. */
function controlled() {
  const batches: { items: number[]; finish: (results?: (number | Error)[]) => void; fail: (error: Error) => void }[] = [];
  const run = (items: number[]) => new Promise<(number | Error)[]>((resolve, reject) => {
    batches.push({ items, finish: (results) => resolve(results ?? items.map((i) => i * 10)), fail: reject });
  });
  return { batches, run };
}

const tick = () => new Promise((resolve) => setImmediate(resolve));

describe('group commit', () => {
  it('sends calls made while a batch is in flight together in the next batch', async () => {
    const { batches, run } = controlled();
    const gc = new GroupCommit(run, { maxInFlight: 1, maxBatch: 100 });
    const first = gc.submit(1);
    await tick();
    expect(batches.map((b) => b.items)).toEqual([[1]]);
    const rest = [2, 3, 4].map((i) => gc.submit(i));
    await tick();
    expect(batches).toHaveLength(1); // still waiting for the first
    batches[0]!.finish();
    expect(await first).toBe(10);
    await tick();
    expect(batches.map((b) => b.items)).toEqual([[1], [2, 3, 4]]);
    batches[1]!.finish();
    expect(await Promise.all(rest)).toEqual([20, 30, 40]);
  });

  it('an Error answer fails only its own item; a failed batch fails all of its items', async () => {
    const { batches, run } = controlled();
    const gc = new GroupCommit(run, { maxInFlight: 1, maxBatch: 100 });
    const a = gc.submit(1);
    const b = gc.submit(2);
    await tick();
    batches[0]!.finish([10, new Error('no credits')]);
    expect(await a).toBe(10);
    await expect(b).rejects.toThrow('no credits');
    const c = gc.submit(3);
    const d = gc.submit(4);
    await tick();
    batches[1]!.fail(new Error('connection lost'));
    await expect(c).rejects.toThrow('connection lost');
    await expect(d).rejects.toThrow('connection lost');
  });

  it('bounds a batch by count and by weight, but always takes at least one item', async () => {
    const { batches, run } = controlled();
    const gc = new GroupCommit(run, { maxInFlight: 1, maxBatch: 3, weigh: (i: number) => i, maxWeight: 10 });
    const all = [1, 2, 3, 4, 20, 5].map((i) => gc.submit(i));
    for (let n = 0; n < 4; n++) {
      await tick();
      batches.at(-1)!.finish();
    }
    await Promise.all(all);
    expect(batches.map((b) => b.items)).toEqual([[1, 2, 3], [4], [20], [5]]);
  });
});
