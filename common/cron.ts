/**
 * Cron expressions and schedule time arithmetic, for any schedule (the daily pipeline's
 * Temporal Schedule, an Airflow DAG's translation). Pure: no Node built-ins, no I/O, safe to
 * import anywhere, workflows included.
 *
 * - `parseCron` reads a 5-field cron the way croniter (Airflow) does: numbers, month and weekday
 *   names, ranges, lists and steps, Sunday as 0 or 7, `a/n` read as `a-max/n`. It refuses what a
 *   Temporal cron cannot express the same way (`L`, `W`, `#`, `?`, `H`, a seconds field, a
 *   wrapping range) with a CronSyntaxError naming the expression and the reason.
 * - `canonicalCrons` re-emits a parsed cron in one numeric form the Temporal server reads the
 *   same way; a cron restricting both day fields (croniter ORs them, a Temporal calendar ANDs
 *   them) becomes two expressions whose union fires when croniter fires.
 * - `cronProblems` checks a cron against the plain numeric syntax Temporal accepts (what
 *   `npm run schedule -- --cron` takes).
 * - `nextFireTime` / `previousFireTime` / `fireTimes` step through a FireSchedule (cron
 *   expressions in an IANA timezone, or a fixed interval), DST included: every local minute a
 *   cron names fires once, found by walking local hours.
 *
 * The one module-level value is `formatters`: a memo of Intl.DateTimeFormat per timezone, pure
 * memoisation of a pure function (a formatter depends only on its timezone).
 */

/** A cron expression this module refuses: names the expression and why. */
export class CronSyntaxError extends Error {
  constructor(
    public readonly expression: string,
    public readonly reason: string,
  ) {
    super(`cron ${JSON.stringify(expression)}: ${reason}`);
    this.name = 'CronSyntaxError';
  }
}

const MONTH_NAMES = ['jan', 'feb', 'mar', 'apr', 'may', 'jun', 'jul', 'aug', 'sep', 'oct', 'nov', 'dec'];
const DOW_NAMES = ['sun', 'mon', 'tue', 'wed', 'thu', 'fri', 'sat'];

interface FieldSpec {
  name: string;
  min: number;
  max: number;
  names?: string[];
  /** Value of names[0]. */
  nameBase?: number;
}
const FIELDS: FieldSpec[] = [
  { name: 'minute', min: 0, max: 59 },
  { name: 'hour', min: 0, max: 23 },
  { name: 'day of month', min: 1, max: 31 },
  { name: 'month', min: 1, max: 12, names: MONTH_NAMES, nameBase: 1 },
  { name: 'day of week', min: 0, max: 7, names: DOW_NAMES, nameBase: 0 },
];

/** A parsed 5-field cron: the set of values of each field (Sunday = 0). */
export interface ParsedCron {
  minute: Set<number>;
  hour: Set<number>;
  dom: Set<number>;
  month: Set<number>;
  dow: Set<number>;
  domRestricted: boolean;
  dowRestricted: boolean;
}

function parseValue(raw: string, f: FieldSpec, fail: (why: string) => never): number {
  if (/^\d+$/.test(raw)) {
    const n = Number(raw);
    if (n < f.min || n > f.max) fail(`${f.name} value ${n} is outside ${f.min}-${f.max}`);
    return n;
  }
  const idx = f.names?.indexOf(raw.toLowerCase()) ?? -1;
  if (idx >= 0) return idx + (f.nameBase ?? 0);
  return fail(`${f.name} value "${raw}" is not a number${f.names ? ' or a name' : ''}`);
}

function parseField(text: string, f: FieldSpec, fail: (why: string) => never): Set<number> {
  const out = new Set<number>();
  for (const part of text.split(',')) {
    if (part === '') fail(`empty list item in ${f.name} "${text}"`);
    if (/[LW#?H]/i.test(part.replace(/[a-z]{3}/gi, (m) => (f.names?.includes(m.toLowerCase()) ? '' : m)))) {
      fail(`${f.name} "${text}" uses L, W, #, ? or H, which a Temporal cron cannot express the way croniter runs it`);
    }
    const [rangePart, stepPart, extra] = part.split('/');
    if (extra !== undefined) fail(`${f.name} "${part}" has two steps`);
    let step = 1;
    if (stepPart !== undefined) {
      if (!/^\d+$/.test(stepPart) || Number(stepPart) === 0) fail(`${f.name} step "${stepPart}" must be a positive number`);
      step = Number(stepPart);
    }
    let lo: number;
    let hi: number;
    if (rangePart === '*') {
      lo = f.min;
      hi = f.name === 'day of week' ? 6 : f.max;
    } else if (rangePart!.includes('-')) {
      const [a, b, more] = rangePart!.split('-');
      if (more !== undefined || a === '' || b === '') fail(`${f.name} range "${rangePart}" is malformed`);
      lo = parseValue(a!, f, fail);
      hi = parseValue(b!, f, fail);
      if (hi < lo) fail(`${f.name} range "${rangePart}" wraps around, which croniter and Temporal read differently`);
    } else {
      lo = parseValue(rangePart!, f, fail);
      // croniter reads "a/n" as "a-max/n".
      hi = stepPart !== undefined ? (f.name === 'day of week' ? 6 : f.max) : lo;
    }
    for (let v = lo; v <= hi; v += step) out.add(f.name === 'day of week' && v === 7 ? 0 : v);
  }
  return out;
}

/** Parses a 5-field cron the way Airflow (croniter) reads it; throws CronSyntaxError with the reason otherwise. */
export function parseCron(expression: string): ParsedCron {
  const fail = (why: string): never => {
    throw new CronSyntaxError(expression, why);
  };
  const fields = expression.trim().split(/\s+/);
  if (fields.length === 6) fail('6-field cron (with seconds) is not supported; use 5 fields');
  if (fields.length !== 5) fail(`a cron needs 5 fields (minute hour day-of-month month day-of-week), got ${fields.length}`);
  const [mi, h, dom, mon, dow] = fields.map((text, i) => parseField(text, FIELDS[i]!, fail));
  return {
    minute: mi!,
    hour: h!,
    dom: dom!,
    month: mon!,
    dow: dow!,
    domRestricted: fields[2] !== '*',
    dowRestricted: fields[4] !== '*',
  };
}

/** One field's canonical text: `*`, an arithmetic progression `a-b/n`, or a list of values and ranges. */
function fieldText(values: Set<number>, min: number, max: number): string {
  const v = [...values].sort((a, b) => a - b);
  if (v.length === max - min + 1) return '*';
  if (v.length >= 3) {
    const step = v[1]! - v[0]!;
    if (step > 1 && v.every((x, i) => x === v[0]! + i * step)) return `${v[0]}-${v[v.length - 1]}/${step}`;
  }
  const parts: string[] = [];
  for (let i = 0; i < v.length; ) {
    let j = i;
    while (j + 1 < v.length && v[j + 1] === v[j]! + 1) j++;
    parts.push(j > i ? `${v[i]}-${v[j]}` : `${v[i]}`);
    i = j + 1;
  }
  return parts.join(',');
}

/** Temporal cron expressions whose union fires exactly when croniter fires `parsed`. */
export function canonicalCrons(parsed: ParsedCron): string[] {
  const mi = fieldText(parsed.minute, 0, 59);
  const h = fieldText(parsed.hour, 0, 23);
  const dom = fieldText(parsed.dom, 1, 31);
  const mon = fieldText(parsed.month, 1, 12);
  const dow = fieldText(parsed.dow, 0, 6);
  if (parsed.domRestricted && parsed.dowRestricted) return [`${mi} ${h} ${dom} ${mon} *`, `${mi} ${h} * ${mon} ${dow}`];
  return [`${mi} ${h} ${parsed.domRestricted ? dom : '*'} ${mon} ${parsed.dowRestricted ? dow : '*'}`];
}

/** A five-field cron (minute hour day-of-month month day-of-week) in the syntax Temporal accepts. */
const CRON_FIELD = /^(\*|\d+(-\d+)?)(\/\d+)?(,(\*|\d+(-\d+)?)(\/\d+)?)*$/;

/** What is wrong with `cron` as a plain numeric Temporal cron (empty: nothing). */
export function cronProblems(cron: string): string[] {
  const fields = cron.trim().split(/\s+/);
  if (fields.length !== 5) return [`cron ${JSON.stringify(cron)} must have 5 fields (minute hour day-of-month month day-of-week), it has ${fields.length}`];
  const bad = fields.filter((f) => !CRON_FIELD.test(f));
  return bad.length ? [`cron ${JSON.stringify(cron)}: field(s) ${bad.map((b) => JSON.stringify(b)).join(', ')} not understood`] : [];
}

// ----------------------------------------------------------------------------------------------
// Time arithmetic (cron in a timezone, intervals)

interface LocalFields {
  minute: number;
  hour: number;
  day: number;
  month: number;
  dow: number;
}

const formatters = new Map<string, Intl.DateTimeFormat>();
const WEEKDAYS: Record<string, number> = { Sun: 0, Mon: 1, Tue: 2, Wed: 3, Thu: 4, Fri: 5, Sat: 6 };

function localFields(ms: number, timezone: string): LocalFields {
  if (timezone === 'UTC') {
    const d = new Date(ms);
    return { minute: d.getUTCMinutes(), hour: d.getUTCHours(), day: d.getUTCDate(), month: d.getUTCMonth() + 1, dow: d.getUTCDay() };
  }
  let f = formatters.get(timezone);
  if (!f) {
    f = new Intl.DateTimeFormat('en-US', { timeZone: timezone, hourCycle: 'h23', month: 'numeric', day: 'numeric', hour: 'numeric', minute: 'numeric', weekday: 'short' });
    formatters.set(timezone, f);
  }
  const parts: Record<string, string> = {};
  for (const p of f.formatToParts(new Date(ms))) parts[p.type] = p.value;
  return { minute: Number(parts.minute), hour: Number(parts.hour) % 24, day: Number(parts.day), month: Number(parts.month), dow: WEEKDAYS[parts.weekday!] ?? 0 };
}

/** True for an IANA zone name this runtime knows. */
export function isValidTimezone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat('en-US', { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}

const MINUTE = 60_000;
const SEARCH_LIMIT = 120_000; // hour-steps: 13 years, enough for "Feb 29 on a Monday"

/** The first time strictly after (`dir` 1) or strictly before (`dir` -1) `fromMs` that `cron` fires. */
function cronSearch(p: ParsedCron, fromMs: number, timezone: string, dir: 1 | -1): number | undefined {
  let t = dir === 1 ? Math.floor(fromMs / MINUTE) * MINUTE + MINUTE : Math.ceil(fromMs / MINUTE) * MINUTE - MINUTE;
  for (let i = 0; i < SEARCH_LIMIT * 2; i++) {
    const f = localFields(t, timezone);
    const dayOk = p.month.has(f.month) && (!p.domRestricted || p.dom.has(f.day)) && (!p.dowRestricted || p.dow.has(f.dow));
    if (!dayOk && dir === 1 && f.hour < 23) {
      // Jump to 23:00 local as if the day had 24 hours: on a 23-hour (DST) day that is the next
      // midnight exactly, on a 25-hour day 22:00; never past the next day's first minute.
      t += ((23 - f.hour) * 60 - f.minute) * MINUTE;
      continue;
    }
    if (!dayOk || !p.hour.has(f.hour)) {
      // Jump to the next (previous) local hour: DST moves clocks by whole hours, so no match is skipped.
      t = dir === 1 ? t + (60 - f.minute) * MINUTE : t - (f.minute + 1) * MINUTE;
      continue;
    }
    if (p.minute.has(f.minute)) return t;
    t += dir * MINUTE;
  }
  return undefined;
}

/**
 * When a schedule fires: the union of `cron` expressions in `timezone`, or every
 * `interval.everySeconds` aligned on `interval.offsetSeconds` (the interval wins when both are
 * given); neither: it never fires. `startAt`/`endAt` bound `fireTimes` only.
 */
export interface FireSchedule {
  cron?: readonly string[];
  interval?: { everySeconds: number; offsetSeconds: number };
  timezone: string;
  startAt?: Date;
  endAt?: Date;
}

function step(s: FireSchedule, from: Date, dir: 1 | -1): Date | undefined {
  if (s.interval) {
    const every = s.interval.everySeconds * 1000;
    const offset = s.interval.offsetSeconds * 1000;
    const k = dir === 1 ? Math.floor((from.getTime() - offset) / every) + 1 : Math.ceil((from.getTime() - offset) / every) - 1;
    return new Date(offset + k * every);
  }
  const found = (s.cron ?? [])
    .map((c) => cronSearch(parseCron(c), from.getTime(), s.timezone, dir))
    .filter((x): x is number => x !== undefined);
  if (found.length === 0) return undefined;
  return new Date(dir === 1 ? Math.min(...found) : Math.max(...found));
}

/** The first time strictly after `after` that the schedule fires (ignoring start/end). */
export function nextFireTime(s: FireSchedule, after: Date): Date | undefined {
  return step(s, after, 1);
}

/** The last time strictly before `before` that the schedule fires (ignoring start/end). */
export function previousFireTime(s: FireSchedule, before: Date): Date | undefined {
  return step(s, before, -1);
}

/** The next `n` fire times after `after`, respecting startAt/endAt. */
export function fireTimes(s: FireSchedule, after: Date, n: number): Date[] {
  const out: Date[] = [];
  let cursor = s.startAt && s.startAt.getTime() - 1 > after.getTime() ? new Date(s.startAt.getTime() - 1) : after;
  while (out.length < n) {
    const next = nextFireTime(s, cursor);
    if (!next || (s.endAt && next > s.endAt)) break;
    out.push(next);
    cursor = next;
  }
  return out;
}

/** A duration in its largest whole unit: `1d`, `6h`, `30m`, `45s`, else `ms`. */
export function formatDuration(ms: number): string {
  if (ms % 86_400_000 === 0) return `${ms / 86_400_000}d`;
  if (ms % 3_600_000 === 0) return `${ms / 3_600_000}h`;
  if (ms % 60_000 === 0) return `${ms / 60_000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
