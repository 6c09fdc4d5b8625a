/**
 * The backfill window (common/daily.ts backfillWindow): the schedule times whose runs process
 * the logical dates --from .. --to, whatever time of day the cron fires.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { fireTimes } from '../../common/cron';
import { backfillWindow, logicalDateOf } from '../../common/daily';

/** The logical dates of the runs a backfill of from..to starts, for a cron (UTC). */
function backfilledDates(cron: string, from: string, to: string): string[] {
  const { start, end } = backfillWindow(from, to);
  const fires = fireTimes({ cron: [cron], timezone: 'UTC', endAt: end }, new Date(start.getTime() - 1), 1_000);
  return [...new Set(fires.map(logicalDateOf))];
}

describe('backfill window', () => {
  for (const cron of ['0 0 * * *', '15 0 * * *', '30 6 * * *', '59 23 * * *', '0 */6 * * *']) {
    it(`cron "${cron}": one date per day of --from .. --to, none outside`, () => {
      assert.deepEqual(backfilledDates(cron, '2026-03-01', '2026-03-03'), ['2026-03-01', '2026-03-02', '2026-03-03']);
      assert.deepEqual(backfilledDates(cron, '2026-03-05', '2026-03-05'), ['2026-03-05']);
    });
  }
});
