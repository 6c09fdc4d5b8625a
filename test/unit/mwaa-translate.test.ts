/** The Airflow -> Temporal Schedule translator (mwaa/translate.ts): pure, no stack needed. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { cutoverWindow, logicalDateOfFire, MwaaTranslationError, normalizeTimezone, translateDag, type AirflowDagFacts } from '../../mwaa/translate';
import { fireTimes, nextFireTime, previousFireTime } from '../../common/cron';

const NOW = new Date('2024-01-10T12:00:00Z');
/** The original pipeline's DAG (spec section 6): @daily, catchup=False, retries=1, retry_delay=2 min. */
const SPEC_DAG: AirflowDagFacts = {
  dagId: '0a1d8d4bd0a5_dag',
  scheduleInterval: { __type: 'CronExpression', value: '@daily' },
  catchup: false,
  startDate: '2023-01-01T00:00:00+00:00',
  timezone: "Timezone('UTC')",
  maxActiveRuns: 1,
  tasks: ['load_data', 'clean_pin', 'clean_geo', 'clean_user', 'query_data'].map((taskId) => ({
    taskId,
    retries: 1,
    retryDelaySeconds: 120,
    retryExponentialBackoff: false,
  })),
};

const dag = (scheduleInterval: AirflowDagFacts['scheduleInterval'], extra: Partial<AirflowDagFacts> = {}): AirflowDagFacts => ({
  dagId: 'd',
  scheduleInterval,
  catchup: false,
  startDate: '2024-01-01T00:00:00Z',
  ...extra,
});
const cronOf = (s: AirflowDagFacts['scheduleInterval'], extra: Partial<AirflowDagFacts> = {}) => translateDag(dag(s, extra), NOW).cron;
const iso = (d: Date | undefined) => d?.toISOString();

function refuses(facts: AirflowDagFacts, reason: RegExp) {
  assert.throws(
    () => translateDag(facts, NOW),
    (err: unknown) => {
      assert.ok(err instanceof MwaaTranslationError, String(err));
      assert.match(err.message, new RegExp(`^DAG ${facts.dagId}: schedule `));
      assert.match(err.message, reason);
      return true;
    },
  );
}

describe('Airflow schedule -> Temporal Schedule', () => {
  it("the original DAG (@daily, catchup=False, 1 retry after 2 min) -> cron 0 0 * * * UTC, one-day catch-up, BUFFER_ONE, 2 attempts 2 min apart", () => {
    const t = translateDag(SPEC_DAG, NOW);
    assert.equal(t.kind, 'cron');
    assert.deepEqual(t.cron, ['0 0 * * *']);
    assert.equal(t.expression, '"@daily"');
    assert.equal(t.timezone, 'UTC');
    assert.equal(t.catchup, false);
    assert.equal(t.catchupWindowMs, 24 * 3600_000);
    assert.equal(t.overlap, 'BUFFER_ONE');
    assert.deepEqual(t.retry, { maximumAttempts: 2, initialInterval: 120_000, backoffCoefficient: 1, maximumInterval: 120_000 });
    assert.equal(t.retryByTask, undefined);
    // start_date 2023-01-01: the first logical date's run fires at 2023-01-02T00:00Z.
    assert.equal(iso(t.startAt), '2023-01-01T00:00:01.000Z');
    assert.deepEqual(fireTimes(t, new Date('2022-12-01T00:00:00Z'), 2).map(iso), ['2023-01-02T00:00:00.000Z', '2023-01-03T00:00:00.000Z']);
  });

  it('presets map to their cron strings (REST form or plain string)', () => {
    assert.deepEqual(cronOf({ __type: 'CronExpression', value: '@hourly' }), ['0 * * * *']);
    assert.deepEqual(cronOf('@weekly'), ['0 0 * * 0']);
    assert.deepEqual(cronOf('@monthly'), ['0 0 1 * *']);
    assert.deepEqual(cronOf('@quarterly'), ['0 0 1 1-10/3 *']);
    assert.deepEqual(cronOf('@yearly'), ['0 0 1 1 *']);
    assert.deepEqual(cronOf('@annually'), ['0 0 1 1 *']);
  });

  it('cron strings are re-emitted in one canonical numeric form', () => {
    assert.deepEqual(cronOf('0 6 * * MON-FRI'), ['0 6 * * 1-5']);
    assert.deepEqual(cronOf('*/15 * * * *'), ['0-45/15 * * * *']);
    assert.deepEqual(cronOf('5/20 1,2,3,7 * JAN,feb *'), ['5-45/20 1-3,7 * 1-2 *']);
    assert.deepEqual(cronOf('30 23 * * 7'), ['30 23 * * 0']); // croniter: 7 is Sunday
    assert.deepEqual(cronOf('0 0 * * 0-7'), ['0 0 * * *']);
  });

  it('day-of-month and day-of-week both restricted: croniter ORs them, so two expressions', () => {
    const t = translateDag(dag('0 12 13 * 5'), NOW);
    assert.deepEqual(t.cron, ['0 12 13 * *', '0 12 * * 5']);
    // After 2024-09-01: Fri 6th, Fri 13th (both), then Fri 20th.
    assert.deepEqual(fireTimes(t, new Date('2024-09-01T00:00:00Z'), 3).map(iso), ['2024-09-06T12:00:00.000Z', '2024-09-13T12:00:00.000Z', '2024-09-20T12:00:00.000Z']);
  });

  it('timedelta intervals align to start_date', () => {
    const t = translateDag(dag({ __type: 'TimeDelta', days: 0, seconds: 6 * 3600, microseconds: 0 }, { startDate: '2024-01-01T01:30:00Z' }), NOW);
    assert.equal(t.kind, 'interval');
    assert.equal(t.expression, 'timedelta(seconds=21600)');
    assert.deepEqual(t.interval, { everySeconds: 21600, offsetSeconds: 5400 });
    assert.equal(iso(nextFireTime(t, NOW)), '2024-01-10T13:30:00.000Z');
    assert.equal(iso(previousFireTime(t, new Date('2024-01-10T13:30:00Z'))), '2024-01-10T07:30:00.000Z');
    assert.equal(t.catchupWindowMs, 6 * 3600_000);
    assert.equal(iso(t.startAt), '2024-01-01T01:30:01.000Z');
  });

  it('None and @once are no recurring schedule; a custom timetable is refused', () => {
    assert.equal(translateDag(dag(null), NOW).kind, 'none');
    assert.equal(translateDag(dag(null, { timetableDescription: 'Never, external triggers only' }), NOW).kind, 'none');
    assert.equal(translateDag(dag('@once'), NOW).kind, 'once');
    refuses(dag(null, { dagId: 'biz_days', timetableDescription: 'Business days at 09:00 (custom)' }), /custom timetable/);
    refuses(dag({ __type: 'RelativeDelta', months: 1 }, { dagId: 'monthly_rd' }), /RelativeDelta/);
    refuses(dag('@continuous', { dagId: 'cont' }), /@continuous/);
    refuses(dag('@fortnightly', { dagId: 'fn' }), /unknown preset/);
  });

  it('cron syntax Temporal cannot run the way croniter does is refused, naming the DAG and the expression', () => {
    refuses(dag('0 0 L * *', { dagId: 'last_day' }), /"0 0 L \* \*".*L, W, #/);
    refuses(dag('0 0 * * 5#2', { dagId: 'second_friday' }), /L, W, #/);
    refuses(dag('0 0 1 * * 30', { dagId: 'six' }), /6-field cron/);
    refuses(dag('0 0 * *', { dagId: 'four' }), /needs 5 fields/);
    refuses(dag('61 0 * * *', { dagId: 'range' }), /minute value 61 is outside 0-59/);
    refuses(dag('0 22-2 * * *', { dagId: 'wrap' }), /wraps around/);
    refuses(dag('0 0 * * *', { dagId: 'tz', timezone: 'Mars/Olympus' }), /unknown timezone/);
    refuses({ dagId: 'unknown', scheduleInterval: undefined, catchup: false }, /did not report the schedule/);
    refuses({ dagId: 'nocatchup', scheduleInterval: '@daily' }, /did not report catchup/);
  });

  it('catchup=True with max_active_runs=1 -> BUFFER_ALL and a year of catch-up; more runs -> ALLOW_ALL', () => {
    const t = translateDag(dag('@daily', { catchup: true, maxActiveRuns: 1 }), NOW);
    assert.equal(t.overlap, 'BUFFER_ALL');
    assert.equal(t.catchupWindowMs, 365 * 24 * 3600_000);
    const many = translateDag(dag('@hourly', { maxActiveRuns: 16 }), NOW);
    assert.equal(many.overlap, 'ALLOW_ALL');
    assert.equal(many.catchupWindowMs, 3600_000);
    assert.ok(many.notes.some((n) => /max_active_runs=16/.test(n)));
  });

  it('retry settings: exponential backoff and per-task differences', () => {
    const t = translateDag(
      dag('@daily', {
        tasks: [
          { taskId: 'a', retries: 3, retryDelaySeconds: 60, retryExponentialBackoff: true, maxRetryDelaySeconds: 600 },
          { taskId: 'b', retries: 0, retryDelaySeconds: 300 },
        ],
      }),
      NOW,
    );
    assert.equal(t.retry, undefined);
    assert.deepEqual(t.retryByTask, {
      a: { maximumAttempts: 4, initialInterval: 60_000, backoffCoefficient: 2, maximumInterval: 600_000 },
      b: { maximumAttempts: 1, initialInterval: 300_000, backoffCoefficient: 1, maximumInterval: 300_000 },
    });
  });

  it('end_date -> the schedule ends at the fire time of the last logical date <= end_date', () => {
    const t = translateDag(dag('@daily', { endDate: '2024-03-31T12:00:00Z' }), NOW);
    assert.equal(iso(t.endAt), '2024-04-01T00:00:00.000Z');
    assert.deepEqual(fireTimes(t, new Date('2024-03-30T06:00:00Z'), 5).map(iso), ['2024-03-31T00:00:00.000Z', '2024-04-01T00:00:00.000Z']);
  });

  it('timezones: cron in the DAG timezone, across a DST change', () => {
    assert.equal(normalizeTimezone("Timezone('Europe/Berlin')"), 'Europe/Berlin');
    assert.equal(normalizeTimezone(undefined), 'UTC');
    const t = translateDag(dag('0 9 * * *', { timezone: "Timezone('Europe/Berlin')" }), NOW);
    assert.equal(t.timezone, 'Europe/Berlin');
    assert.deepEqual(fireTimes(t, new Date('2024-03-30T00:00:00Z'), 2).map(iso), ['2024-03-30T08:00:00.000Z', '2024-03-31T07:00:00.000Z']);
  });

  it('a scheduled time stands for the previous tick as logical date (Airflow convention)', () => {
    const t = translateDag(SPEC_DAG, NOW);
    assert.equal(iso(logicalDateOfFire(t, new Date('2024-01-11T00:00:00Z'))), '2024-01-10T00:00:00.000Z');
    assert.equal(iso(previousFireTime(t, new Date('2024-01-11T00:00:00.001Z'))), '2024-01-11T00:00:00.000Z');
  });

  it('cutover window: first action = the first fire after Airflow last fired; past ticks reported as missed', () => {
    const t = translateDag(SPEC_DAG, NOW);
    const last = { runId: 'scheduled__2024-01-09T00:00:00+00:00', logicalDate: '2024-01-09T00:00:00+00:00', state: 'success', dataIntervalEnd: '2024-01-10T00:00:00+00:00' };
    const w = cutoverWindow(t, last, NOW);
    assert.equal(w.basis, 'last-run');
    assert.equal(iso(w.startAt), '2024-01-10T00:00:01.000Z');
    assert.equal(iso(w.firstFire), '2024-01-11T00:00:00.000Z');
    assert.equal(iso(w.firstLogicalDate), '2024-01-10T00:00:00.000Z');
    assert.deepEqual(w.missed, []);
    // Without the data interval (old CLI): derived from the logical date.
    assert.equal(iso(cutoverWindow(t, { ...last, dataIntervalEnd: undefined }, NOW).startAt), '2024-01-10T00:00:01.000Z');
    // The DAG stopped two days before the cutover: those two fires belong to nobody.
    const late = cutoverWindow(t, last, new Date('2024-01-12T01:00:00Z'));
    assert.deepEqual(late.missed.map(iso), ['2024-01-11T00:00:00.000Z', '2024-01-12T00:00:00.000Z']);
    // Never ran: starts after start_date's first logical date.
    const fresh = cutoverWindow(translateDag({ ...SPEC_DAG, startDate: '2024-01-10T06:00:00Z' }, NOW), undefined, NOW);
    assert.equal(fresh.basis, 'start-date');
    assert.equal(iso(fresh.firstFire), '2024-01-12T00:00:00.000Z');
  });
});
