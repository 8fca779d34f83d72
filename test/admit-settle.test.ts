import { describe, expect, it } from 'vitest';
import { settle } from '../src/ledger/admit-hold.ts';

type Row = Parameters<typeof settle>[0][number];

/** A batch row as ADMIT_BATCH returns it, with the fields settle() reads. */
function row(ord: number, over: Partial<Row>): Row {
  return {
    ord, early: null, team_id: 't1', member_id: 'm1', amount: 1, cap_ok: true, ok: true, admitted: true, cap: null, available: 0,
    team_active: 0, member_active: 0, team_active_jobs: null, member_active_jobs: null, ...over,
  };
}

const outcomes = (rows: Row[]) => settle(rows).map((v) => (typeof v === 'string' ? v : v.outcome));

describe('settling a batch of admission decisions', () => {
  it('the first refusal of a team is final, and so is any later refusal of the same kind asking as much', () => {
    expect(outcomes([
      row(0, {}),
      row(1, { ok: false, admitted: false, amount: 2 }),
      row(2, { ok: false, admitted: false, amount: 3 }),
    ])).toEqual(['admitted', 'insufficient_credits', 'insufficient_credits']);
  });

  it('a cheaper request after a refused dearer one goes round again: alone it might fit', () => {
    expect(outcomes([
      row(0, { ok: false, admitted: false, amount: 2 }),
      row(1, { ok: false, admitted: false, amount: 1 }),
    ])).toEqual(['insufficient_credits', 'contended']);
  });

  it("a member's later cap refusals are final only for that member; other refusals after one go round again", () => {
    expect(outcomes([
      row(0, { cap_ok: false, ok: false, admitted: false, member_id: 'greedy', cap: 5 }),
      row(1, { cap_ok: false, ok: false, admitted: false, member_id: 'greedy', cap: 5 }),
      row(2, { cap_ok: false, ok: false, admitted: false, member_id: 'other', cap: 5 }),
      row(3, { ok: false, admitted: false }),
    ])).toEqual(['member_cap', 'member_cap', 'contended', 'contended']);
  });

  it('teams are settled separately', () => {
    expect(outcomes([
      row(0, { team_id: 'a', ok: false, admitted: false, amount: 5 }),
      row(1, { team_id: 'b', ok: false, admitted: false, amount: 1 }),
      row(2, { team_id: 'a', ok: false, admitted: false, amount: 1 }),
    ])).toEqual(['insufficient_credits', 'insufficient_credits', 'contended']);
  });

  it('an item that lost its usage row to another batch, and every refusal of its team after it, goes round again', () => {
    expect(outcomes([
      row(0, { admitted: false, cap: 5 }),
      row(1, {}),
      row(2, { ok: false, admitted: false }),
    ])).toEqual(['contended', 'admitted', 'contended']);
  });

  it('early answers pass straight through', () => {
    expect(outcomes([
      row(0, { early: 'duplicate' }), row(1, { early: 'contended' }), row(2, { early: 'stale_config' }), row(3, { early: 'stale_period' }),
    ])).toEqual(['duplicate', 'contended', 'stale-config', 'stale-period']);
  });
});
