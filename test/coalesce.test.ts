import { describe, expect, it } from 'vitest';
import { Coalesced } from '../src/queue/coalesce.ts';

describe('coalesced runs', () => {
  it('calls during a run fold into one follow-up run, which starts after them', async () => {
    const log: string[] = [];
    let finish!: () => void;
    let runs = 0;
    const c = new Coalesced(async () => {
      runs += 1;
      log.push(`start ${runs}`);
      if (runs === 1) await new Promise<void>((resolve) => { finish = resolve; });
    });
    c.call();
    c.call();
    log.push('called');
    c.call();
    finish();
    await c.idle();
    expect(log).toEqual(['start 1', 'called', 'start 2']);
    c.call();
    await c.idle();
    expect(runs).toBe(3);
  });
});
