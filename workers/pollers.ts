/**
 * Which workers poll a task queue for workflow tasks, as far as Temporal and this host can tell.
 *
 * Temporal lists a poller (DescribeTaskQueue) for about a minute after its last poll, so a
 * worker that exited or was killed a moment ago is still listed, and nothing in the listing
 * says it is gone: a live idle worker's last poll may be as old. A pinflow worker's identity
 * (`pinflow@<build id> <pid>@<host>`, workers/version.ts) names its process, so a listed
 * poller whose process on this host no longer exists (or is a zombie) is known stale and left
 * out; so is one of this very process when no worker it created for that task queue is open
 * (workers/worker.ts createWorker registers each until its close). Pollers on other hosts, and
 * identities that are not a pinflow worker's, count as live: only their taking a task tells
 * (workers/worker.ts `withWorker`).
 *
 * Loads no worker SDK: commands that start a workflow without waiting for it use it too.
 */
import fs from 'node:fs';
import os from 'node:os';
import type { Client } from '@temporalio/client';

/** How long Temporal lists a poller after its last poll. */
const LISTED_MS = 60_000;

export interface Poller {
  identity: string;
  /** When it last polled (ms since the epoch). */
  lastAccessMs: number;
}

/** The process a pinflow worker identity names (workers/version.ts workerIdentity), if it is one. */
export function processOf(identity: string): { pid: number; host: string } | undefined {
  const m = /^pinflow@\S+ (\d+)@(\S+)$/.exec(identity);
  return m ? { pid: Number(m[1]), host: m[2]! } : undefined;
}

/** True when no process `pid` runs on this host: none exists, or it exited and awaits its parent (a zombie). */
export function processGone(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch (err) {
    // EPERM: it exists, under another user.
    return (err as NodeJS.ErrnoException).code === 'ESRCH';
  }
  try {
    // /proc/<pid>/stat: "<pid> (<comm>) <state> ..."; Z (zombie) and X (dead) have exited.
    return /\) [ZX] /.test(fs.readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

/** This process's open workers, by task queue. */
const ownWorkers = new Map<string, number>();

/** Registers a worker of this process on `taskQueue` until the returned release is called. */
export function registerOwnWorker(taskQueue: string): () => void {
  ownWorkers.set(taskQueue, (ownWorkers.get(taskQueue) ?? 0) + 1);
  let released = false;
  return () => {
    if (released) return;
    released = true;
    const n = (ownWorkers.get(taskQueue) ?? 1) - 1;
    if (n > 0) ownWorkers.set(taskQueue, n);
    else ownWorkers.delete(taskQueue);
  };
}

/**
 * True when the poller is a pinflow worker of this host whose process is gone, or of this
 * process with no worker of it open on `taskQueue`.
 */
export function isStale(p: Poller, taskQueue: string, host = os.hostname(), gone: (pid: number) => boolean = processGone): boolean {
  const proc = processOf(p.identity);
  if (proc === undefined || proc.host !== host) return false;
  return proc.pid === process.pid ? !ownWorkers.has(taskQueue) : gone(proc.pid);
}

/** Every poller Temporal lists for the queue's workflow tasks, seen in the last minute. */
export async function workflowPollers(client: Client, taskQueue: string, now = Date.now()): Promise<Poller[]> {
  const res = await client.workflowService.describeTaskQueue({
    namespace: client.options.namespace,
    taskQueue: { name: taskQueue },
    taskQueueType: 1, // TASK_QUEUE_TYPE_WORKFLOW
  });
  return (res.pollers ?? [])
    .map((p) => {
      const t = p.lastAccessTime;
      return { identity: p.identity ?? '', lastAccessMs: t ? Number(t.seconds ?? 0) * 1000 + Math.floor((t.nanos ?? 0) / 1e6) : 0 };
    })
    .filter((p) => p.lastAccessMs > now - LISTED_MS);
}

/** The listed pollers that may be live (see the top of this file). */
export async function livePollers(client: Client, taskQueue: string): Promise<Poller[]> {
  return (await workflowPollers(client, taskQueue)).filter((p) => !isStale(p, taskQueue));
}
