/**
 * The landing contract (pipeline-spec.md section 3): object keys in the Confluent S3 sink
 * layout, and the workflow's input and state. Pure (workflows import it).
 */
import { prefixProblem } from './ids';
import type { IntervalEnd } from './interval';
import { upgradeVersioned, type VersionedKind } from './versioned';

export const DEFAULT_TOPICS_DIR = 'topics';
export const DEAD_LETTER_DIR = 'dead-letter';
export const DEFAULT_FLUSH_SIZE = 10_000;
export const DEFAULT_MAX_OBJECT_BYTES = 32 * 1024 * 1024;

const pad10 = (n: number) => String(n).padStart(10, '0');

/** `<topics-dir>/<topic>/partition=<p>/<topic>+<p>+<startOffset:10>.json` */
export function objectKey(topicsDir: string, topic: string, partition: number, startOffset: number): string {
  return `${topicsDir}/${topic}/partition=${partition}/${topic}+${partition}+${pad10(startOffset)}.json`;
}

export function partitionPrefix(topicsDir: string, topic: string, partition: number): string {
  return `${topicsDir}/${topic}/partition=${partition}/`;
}

/** Dead letters of the records of the object that starts at `startOffset`. */
export function deadLetterKey(topic: string, partition: number, startOffset: number): string {
  return objectKey(DEAD_LETTER_DIR, topic, partition, startOffset);
}

const KEY = /^(?:.*\/)?([^/]+)\/partition=(\d+)\/([^/]+)\+(\d+)\+(\d{10,})\.json$/;

export function parseObjectKey(key: string): { topic: string; partition: number; startOffset: number } | null {
  const m = KEY.exec(key);
  if (!m || m[1] !== m[3] || m[2] !== m[4]) return null;
  return { topic: m[1]!, partition: Number(m[2]), startOffset: Number(m[5]) };
}

export interface PartitionRange {
  topic: string;
  partition: number;
  /** First offset to land (from the bucket's last object, or the log start). */
  from: number;
  /** Land up to, not including, this offset (the high watermark when the range was planned). */
  to: number;
  /** The topic's id (KIP-516) when the range was planned; null on brokers without topic ids. */
  topicId: string | null;
  /** Set when the bucket and the log disagree (only planned when the run accepts gaps). */
  gap?: LandingGap;
  /** Interval boundaries strictly inside (from, to), ascending: landing closes an object at each (common/interval.ts). */
  cuts?: number[];
}

/**
 * Offsets that can no longer be landed: `expired`, records deleted by retention before they
 * were landed ([from, to) is what was lost); `recreated`, the topic was deleted and created
 * again, so its offsets restarted below what the bucket holds ([from, to) of the new topic
 * overlap objects of the old one and are not landed: pinflow never overwrites an object).
 */
export interface LandingGap {
  topic: string;
  partition: number;
  kind: 'expired' | 'recreated';
  from: number;
  to: number;
  detail: string;
}

/** Counts only: a partition's objects are listed in the run's manifest object, never in payloads. */
export interface LandedPartition {
  topic: string;
  partition: number;
  from: number;
  /** Next offset to land after this range. */
  next: number;
  records: number;
  deadLetters: number;
  /** A count; workers of an older version reported the keys (read with a count() that takes both). */
  objects: number | string[];
  deadLetterObjects: number | string[];
}

export interface LandingInput {
  /** Set when the input is carried through continue-as-new (LANDING_INPUT); absent from callers. */
  version?: number;
  prefix: string;
  /** Land the topics matching this regex instead of `<prefix>.pin|geo|user` (as `topics.regex`). */
  topicsRegex?: string;
  mode: 'follow' | 'untilNow';
  flushSize?: number;
  maxObjectBytes?: number;
  topicsDir?: string;
  /** follow: wait this long between rounds that found nothing new (default 5 s). */
  pollIntervalMs?: number;
  /** follow: rounds per run before continue-as-new (default 100). */
  roundsPerRun?: number;
  /**
   * Land on past offsets that can no longer be landed (expired by retention, or a recreated
   * topic), reporting each gap in the result, the status query and the metrics. Default: such
   * a partition fails the run, naming topic, partition and offsets.
   */
  acceptGaps?: boolean;
  /**
   * untilNow only: land each listed partition up to its `end` at most, and no other partition
   * (the daily pipeline lands a date's interval this way).
   */
  endOffsets?: IntervalEnd[];
}

export interface PartitionStatus {
  topic: string;
  partition: number;
  landedOffset: number;
  endOffset: number;
  lag: number;
  records: number;
  deadLetters: number;
  objects: number;
}

export interface LandingStatus {
  mode: 'follow' | 'untilNow';
  rounds: number;
  records: number;
  deadLetters: number;
  objects: number;
  deadLetterObjects: number;
  partitions: PartitionStatus[];
  /** Offsets that could not be landed (runs with acceptGaps only), first seen first. */
  gaps: LandingGap[];
  done: boolean;
}

/**
 * What a follow-mode run carries into its next run through continue-as-new (common/versioned.ts).
 * Version 1 added `version`; version 0 (no version) status may lack `deadLetterObjects` and `gaps`.
 */
export interface LandingCarry {
  version: number;
  status: LandingStatus;
}

export const LANDING_CARRY: VersionedKind = {
  what: 'landing carry',
  current: 1,
  upgrades: [
    (old) => {
      const status = (old.status ?? {}) as Record<string, unknown>;
      return { ...old, status: { ...status, deadLetterObjects: status.deadLetterObjects ?? 0, gaps: status.gaps ?? [] } };
    },
  ],
};

/** Landing inputs carried through continue-as-new. Version 1 added `version` and nothing else. */
export const LANDING_INPUT: VersionedKind = { what: 'landing input', current: 1, upgrades: [(old) => old] };

export const upgradeLandingCarry = (raw: unknown): LandingCarry => upgradeVersioned<LandingCarry>(LANDING_CARRY, raw);
export const upgradeLandingInput = (raw: LandingInput): LandingInput => upgradeVersioned<LandingInput>(LANDING_INPUT, raw);

export interface LandingResult extends LandingStatus {
  /**
   * untilNow: the S3 key of this run's manifest, a JSON object listing every object written
   * (data and dead-letter) per partition; null when the run wrote nothing.
   */
  manifestKey: string | null;
}

/** The manifest object of one landing run: `manifests/<prefix>/landing/<workflowId>/<runId>.json`. */
export function landingManifestKey(prefix: string, workflowId: string, runId: string): string {
  return `manifests/${prefix}/landing/${workflowId}/${runId}.json`;
}

export interface LandingManifest {
  prefix: string;
  workflowId: string;
  runId: string;
  topicsDir: string;
  partitions: Array<{ topic: string; partition: number; from: number; next: number; objects: string[]; deadLetterObjects: string[] }>;
}

export function validateLandingInput(input: LandingInput): string[] {
  const problems: string[] = [];
  const prefixError = prefixProblem(input.prefix, 'prefix', 'a valid topic prefix');
  if (prefixError) problems.push(prefixError);
  if (input.mode !== 'follow' && input.mode !== 'untilNow') problems.push(`mode ${JSON.stringify(input.mode)} must be "follow" or "untilNow"`);
  if (input.topicsRegex !== undefined) {
    try {
      new RegExp(input.topicsRegex);
    } catch (e) {
      problems.push(`topicsRegex is not a valid regular expression: ${(e as Error).message}`);
    }
  }
  const fs = input.flushSize;
  if (fs !== undefined && !(Number.isInteger(fs) && fs >= 1 && fs <= 1_000_000)) problems.push(`flushSize ${fs} must be 1-1000000`);
  const mb = input.maxObjectBytes;
  if (mb !== undefined && !(Number.isInteger(mb) && mb >= 1024 && mb <= 5 * 1024 ** 3)) problems.push(`maxObjectBytes ${mb} must be 1 KiB - 5 GiB`);
  if (input.topicsDir !== undefined && !/^[A-Za-z0-9._-]+(\/[A-Za-z0-9._-]+)*$/.test(input.topicsDir)) problems.push(`topicsDir ${JSON.stringify(input.topicsDir)} is not a valid key prefix`);
  if (input.endOffsets !== undefined) {
    if (input.mode !== 'untilNow') problems.push('endOffsets applies to mode "untilNow" only');
    const bad = Array.isArray(input.endOffsets) ? input.endOffsets.findIndex((e) => !e || typeof e.topic !== 'string' || !Number.isSafeInteger(e.partition) || e.partition < 0 || !Number.isSafeInteger(e.end) || e.end < 0) : 0;
    if (bad >= 0) problems.push(`endOffsets${Array.isArray(input.endOffsets) ? `[${bad}]` : ''} must be {topic, partition, end} with whole numbers >= 0`);
  }
  return problems;
}

/** Internal pinflow topics a `topics.regex` never lands. */
export const isInternalTopic = (topic: string) => /\.(emulation-progress|doctor)$/.test(topic) || topic.startsWith('__');
