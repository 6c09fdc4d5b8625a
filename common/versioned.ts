/**
 * Versioned state carried through continue-as-new. Every carry object and continue-as-new
 * input has a `version`; each kind of carry declares its current version and one upgrade
 * function per older version (`upgrades[v]` turns version v into v + 1; state from before
 * versions existed is version 0). A run continued from an older worker's state reads it
 * through `upgradeVersioned`, so the fields today's code expects are always there.
 *
 * State of a NEWER version than the running code knows comes from a worker of a later
 * release: this code cannot read it, so it throws a plain Error, which fails the workflow
 * task (not the workflow). Temporal retries the task, and a worker of the newer release picks
 * it up: a rolling deploy or a rollback never loses the run (docs/upgrading.md).
 * Pure and deterministic: workflows import it.
 */
import { ApplicationFailure } from '@temporalio/common';
import { NonRetryable } from './errors';

/** One step: state of version v (without its `version` field's guarantees) to version v + 1. */
export type Upgrade = (old: Record<string, unknown>) => Record<string, unknown>;

export interface VersionedKind {
  /** Named in errors, e.g. "landing carry". */
  what: string;
  /** The version this code writes. `upgrades.length` must equal it. */
  current: number;
  upgrades: readonly Upgrade[];
}

/** The version a raw carried object declares (0 when it has none). */
export function versionOf(raw: unknown): number {
  if (raw === null || typeof raw !== 'object' || Array.isArray(raw)) return -1;
  const v = (raw as { version?: unknown }).version;
  return v === undefined ? 0 : typeof v === 'number' && Number.isInteger(v) && v >= 0 ? v : -1;
}

/** Brings carried state of any older version up to `kind.current`, one upgrade at a time. */
export function upgradeVersioned<T>(kind: VersionedKind, raw: unknown): T & { version: number } {
  if (kind.upgrades.length !== kind.current) throw new Error(`${kind.what}: ${kind.upgrades.length} upgrade functions for version ${kind.current}`);
  let version = versionOf(raw);
  if (version < 0) {
    throw ApplicationFailure.nonRetryable(`${kind.what}: not an object with a whole-number version (got ${describe(raw)})`, NonRetryable.badInput);
  }
  if (version > kind.current) {
    throw new Error(`${kind.what} version ${version} was written by a newer pinflow (this worker reads up to ${kind.current}): a worker of that release must run it`);
  }
  let state = { ...(raw as Record<string, unknown>) };
  while (version < kind.current) {
    state = { ...kind.upgrades[version]!(state), version: version + 1 };
    version += 1;
  }
  return { ...state, version } as T & { version: number };
}

function describe(raw: unknown): string {
  if (raw === null || typeof raw !== 'object') return JSON.stringify(raw) ?? String(raw);
  if (Array.isArray(raw)) return 'an array';
  return `version ${JSON.stringify((raw as { version?: unknown }).version)}`;
}
