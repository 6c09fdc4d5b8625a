/**
 * landingWorkflow: Kafka topics to S3 in the Confluent S3 sink layout, exactly once.
 *
 * A round plans offset ranges per partition (from = after the bucket's last object, to = the
 * high watermark now, or the end of a date's interval with `endOffsets`) and lands each topic's
 * ranges in one heartbeating activity, closing objects at the date boundaries inside them
 * (common/interval.ts), so every object lies within one date's interval. `untilNow`
 * runs one round and returns counts and the key of a manifest object listing what it wrote
 * (payloads stay small whatever the run's size); `follow` repeats rounds (waiting when
 * nothing is new) and continues as new every `roundsPerRun` rounds. Object boundaries depend
 * only on the ranges recorded in this history, so a retried or crashed round rewrites the same
 * objects.
 */
import {
  allHandlersFinished,
  condition,
  continueAsNew,
  defineQuery,
  proxyActivities,
  setCurrentDetails,
  metricMeter,
  setHandler,
  sleep,
  upsertSearchAttributes,
  workflowInfo,
} from '@temporalio/workflow';
import type { Activities } from '../activities';
import {
  DEFAULT_FLUSH_SIZE,
  DEFAULT_MAX_OBJECT_BYTES,
  DEFAULT_TOPICS_DIR,
  LANDING_CARRY,
  upgradeLandingCarry,
  upgradeLandingInput,
  validateLandingInput,
  type LandingCarry,
  type LandingGap,
  type LandingInput,
  type LandingResult,
  type LandingStatus,
  type PartitionRange,
  type PartitionStatus,
} from '../common/landing';
import { landingSearchAttributes } from '../common/search-attributes';
import { LANDING_PLAN, LANDING_WRITE, rejectInvalidInput } from './policies';

const planner = proxyActivities<Activities>(LANDING_PLAN);
const lander = proxyActivities<Activities>(LANDING_WRITE);

export const landingStatusQuery = defineQuery<LandingStatus>('status');

/** Gaps kept in the status (the oldest dropped first), so a long follow run's state stays small. */
const MAX_GAPS_KEPT = 100;

export async function landingWorkflow(given: LandingInput, carried?: LandingCarry): Promise<LandingResult> {
  // Carried state and input of any older version, brought up to today's (common/versioned.ts).
  const input = upgradeLandingInput(given);
  const carry = carried === undefined ? undefined : upgradeLandingCarry(carried);
  rejectInvalidInput('landing', validateLandingInput(input));
  upsertSearchAttributes(landingSearchAttributes(input.prefix, input.mode));

  const topicsDir = input.topicsDir ?? DEFAULT_TOPICS_DIR;
  const flushSize = input.flushSize ?? DEFAULT_FLUSH_SIZE;
  const maxObjectBytes = input.maxObjectBytes ?? DEFAULT_MAX_OBJECT_BYTES;
  const status: LandingStatus = {
    mode: input.mode,
    rounds: 0,
    records: 0,
    deadLetters: 0,
    objects: 0,
    partitions: [],
    done: false,
    deadLetterObjects: 0,
    gaps: [],
    ...carry?.status,
  };
  /** untilNow: what this run landed per partition, for its manifest. */
  const landedRanges: Array<{ topic: string; partition: number; from: number; next: number }> = [];
  setHandler(landingStatusQuery, () => status);

  /** A gap is reported once, however many rounds see it (a recreated topic's stays until the topic passes it). */
  const noteGap = (g: LandingGap) => {
    if (status.gaps.some((x) => x.topic === g.topic && x.partition === g.partition && x.kind === g.kind && x.from === g.from)) return;
    if (status.gaps.length >= MAX_GAPS_KEPT) status.gaps.shift();
    status.gaps.push(g);
    metricMeter.createCounter('pinflow_landing_gap_offsets', 'offsets', 'Offsets that could not be landed (retention, recreated topic)').add(Math.max(0, g.to - g.from), { topic: g.topic, kind: g.kind });
  };

  const partitionStatus = (topic: string, partition: number): PartitionStatus => {
    let s = status.partitions.find((p) => p.topic === topic && p.partition === partition);
    if (!s) {
      s = { topic, partition, landedOffset: 0, endOffset: 0, lag: 0, records: 0, deadLetters: 0, objects: 0 };
      status.partitions.push(s);
    }
    return s;
  };

  /** One round: plan ranges, land every topic in parallel. Returns how many records it landed. */
  async function round(): Promise<number> {
    const ranges: PartitionRange[] = await planner.landingPlan({ prefix: input.prefix, topicsRegex: input.topicsRegex, topicsDir, acceptGaps: input.acceptGaps, ...(input.endOffsets ? { endOffsets: input.endOffsets } : {}) });
    for (const r of ranges) {
      if (r.gap) noteGap(r.gap);
      const s = partitionStatus(r.topic, r.partition);
      s.landedOffset = r.from;
      s.endOffset = r.to;
      s.lag = r.to - r.from;
    }
    const byTopic = new Map<string, PartitionRange[]>();
    for (const r of ranges.filter((x) => x.to > x.from)) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r]);
    setCurrentDetails(`round ${status.rounds + 1}: ${ranges.reduce((n, r) => n + (r.to - r.from), 0)} offsets to land in ${byTopic.size} topic(s)`);
    const results = await Promise.all(
      [...byTopic].map(([topic, rs]) =>
        lander.landTopic({
          runId: workflowRunKey(),
          topic,
          topicId: rs[0]!.topicId,
          ranges: rs.map((r) => ({ partition: r.partition, from: r.from, to: r.to, ...(r.cuts?.length ? { cutAt: r.cuts } : {}) })),
          flushSize,
          maxObjectBytes,
          topicsDir,
        }),
      ),
    );
    let landed = 0;
    for (const res of results) {
      for (const landedPartition of res.partitions) {
        const p = { ...landedPartition, objects: count(landedPartition.objects), deadLetterObjects: count(landedPartition.deadLetterObjects) };
        const s = partitionStatus(p.topic, p.partition);
        s.landedOffset = p.next;
        s.lag = Math.max(0, s.endOffset - p.next);
        s.records += p.records;
        s.deadLetters += p.deadLetters;
        s.objects += p.objects;
        status.records += p.records;
        status.deadLetters += p.deadLetters;
        status.objects += p.objects;
        status.deadLetterObjects += p.deadLetterObjects;
        landed += p.records + p.deadLetters;
        if (input.mode === 'untilNow' && p.objects + p.deadLetterObjects > 0) landedRanges.push({ topic: p.topic, partition: p.partition, from: p.from, next: p.next });
      }
    }
    status.rounds += 1;
    return landed;
  }

  if (input.mode === 'untilNow') {
    await round();
    const info = workflowInfo();
    // Retried like the landing itself: the objects are written, only their list is missing.
    const manifestKey = landedRanges.length ? await lander.writeLandingManifest({ prefix: input.prefix, workflowId: info.workflowId, runId: info.runId, topicsDir, partitions: landedRanges }) : null;
    status.done = true;
    setCurrentDetails(`done: ${status.records} records in ${status.objects} objects, ${status.deadLetters} dead letters${status.gaps.length ? `, ${status.gaps.length} gap(s)` : ''}`);
    return { ...status, manifestKey };
  }

  const roundsPerRun = input.roundsPerRun ?? 100;
  const pollMs = input.pollIntervalMs ?? 5_000;
  for (let i = 0; i < roundsPerRun; i++) {
    const landed = await round();
    if (landed === 0) await sleep(pollMs);
  }
  await condition(allHandlersFinished);
  return continueAsNew<typeof landingWorkflow>(input, { version: LANDING_CARRY.current, status });
}

/** A count, also from a worker of an older version that still reports the list of keys. */
function count(x: number | string[]): number {
  return typeof x === 'number' ? x : x.length;
}

/** Names the round's throwaway consumer groups after this run. */
function workflowRunKey(): string {
  return workflowInfo().workflowId;
}
