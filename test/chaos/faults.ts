/**
 * Injecting the planned faults into a running pipeline, and reporting each one honestly: a
 * fault waits for its phase's workflow to start, fires at its moment measured from that start,
 * and afterwards reads the phase's status from Temporal to say whether the phase was still
 * running when the fault took effect (a hit) or had already ended (a miss, which does not count).
 */
import type { ChildProcess } from 'node:child_process';
import type { Client } from '@temporalio/client';
import type { Config } from '../../config';
import { spawnWorker } from '../helpers/data';
import { stackUp } from '../../stack';
import { SERVICES } from '../../stack/services';
import { phaseState, sleep, waitForStart, type PhaseRef, type PhaseState } from './phases';
import { FAULT_NAMES, type FaultKind, type Phase, type PlannedFault } from './plan';

/** A pinflow worker in a process of its own, which a fault may SIGKILL and replace. */
export class WorkerSlot {
  private current: ReturnType<typeof spawnWorker>;
  private log = '';
  constructor(private readonly env: Record<string, string>) {
    this.current = spawnWorker(env);
  }
  ready(): Promise<void> {
    return this.current.ready;
  }
  /** SIGKILL; resolves once the process is gone. */
  async kill(): Promise<void> {
    const { child } = this.current;
    this.log += this.current.output();
    await new Promise<void>((resolve) => {
      if (child.exitCode !== null || child.signalCode !== null) return resolve();
      child.once('exit', () => resolve());
      child.kill('SIGKILL');
    });
  }
  /** A new worker on the same task queue; resolves when it polls. */
  async respawn(): Promise<void> {
    this.current = spawnWorker(this.env);
    await this.current.ready;
  }
  /** Graceful stop (SIGTERM), SIGKILL after `graceMs`. */
  async stop(graceMs = 20_000): Promise<void> {
    const { child } = this.current;
    this.log += this.current.output();
    if (child.exitCode !== null || child.signalCode !== null) return;
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()));
    child.kill('SIGTERM');
    const timer = setTimeout(() => child.kill('SIGKILL'), graceMs);
    await exited;
    clearTimeout(timer);
  }
  /** Everything the workers of this slot printed (killed ones included): for diagnosis. */
  output(): string {
    return this.log + this.current.output();
  }
  get child(): ChildProcess {
    return this.current.child;
  }
}

interface Disruption {
  /** When the fault was in effect (process dead / server down). */
  effectiveAt: number;
  /** Undoes it; returns what happened, for the fault's line. */
  recover: () => Promise<string>;
}

export interface FaultTarget {
  config: Config;
  worker: WorkerSlot;
}

const SERVER: Record<Exclude<FaultKind, 'worker'>, { service: string; downMs: number }> = {
  kafka: { service: 'kafka', downMs: 3_000 },
  s3: { service: 's3', downMs: 30_000 },
  mysql: { service: 'mysql', downMs: 3_000 },
};

async function disrupt(kind: FaultKind, target: FaultTarget): Promise<Disruption> {
  if (kind === 'worker') {
    await target.worker.kill();
    const effectiveAt = Date.now();
    return {
      effectiveAt,
      recover: async () => {
        await sleep(2_000);
        await target.worker.respawn();
        return `killed; a new worker polled ${((Date.now() - effectiveAt) / 1000).toFixed(1)} s later`;
      },
    };
  }
  const { service, downMs } = SERVER[kind];
  const svc = SERVICES.find((s) => s.name === service);
  if (!svc) throw new Error(`no stack service ${service}`);
  const stopped = await svc.down(target.config);
  if (!stopped) throw new Error(`${service} was not started by this stack (npm run stack -- up), so it cannot be stopped`);
  const effectiveAt = Date.now();
  return {
    effectiveAt,
    recover: async () => {
      await sleep(downMs);
      await stackUp(target.config, [service]);
      return `down ${((Date.now() - effectiveAt) / 1000).toFixed(1)} s, back up`;
    },
  };
}

export interface FaultOutcome {
  fault: PlannedFault;
  /** Fired, took effect while its phase's workflow was running. */
  hit: boolean;
  line: string;
}

/** One fault at a time per target (a second Kafka restart waits for the first to finish). */
class Locks {
  private tails = new Map<string, Promise<void>>();
  async acquire(name: string): Promise<() => void> {
    const prev = this.tails.get(name) ?? Promise.resolve();
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    this.tails.set(name, prev.then(() => mine));
    await prev;
    return release;
  }
}

/**
 * Did the fault hit its phase? Yes when the phase's workflow, read after the fault took effect,
 * is still running, or closed after that moment; otherwise it is a miss and does not count.
 */
export function judge(phase: Phase, state: PhaseState, effectiveAt: number): { hit: boolean; text: string } {
  if (state.running) {
    const doing = state.inFlight.length ? `in flight: ${state.inFlight.join('; ')}` : 'no activity in flight';
    return { hit: true, text: `${phase} still ${state.status} after the fault took effect (${doing}) -> hit` };
  }
  if (state.closeMs !== undefined && state.closeMs > effectiveAt) {
    return { hit: true, text: `${phase} ended ${secs(state.closeMs - effectiveAt)} after the fault took effect (${state.status}) -> hit` };
  }
  if (state.closeMs !== undefined) {
    return { hit: false, text: `${phase} had already ended (${state.status}) ${((effectiveAt - state.closeMs) / 1000).toFixed(1)} s before the fault took effect -> MISSED, does not count` };
  }
  return { hit: false, text: `${phase} status ${state.status} -> MISSED, does not count` };
}

const secs = (ms: number) => `${ms >= 0 ? '+' : ''}${(ms / 1000).toFixed(1)} s`;

/**
 * Runs the plan against a pipeline run. `refs` name each phase's workflow; `expectedMs` is each
 * phase's duration in the fault-free run. Stop with `signal` when the run is over: faults not
 * yet fired then report why (their phase never started, or the run ended first) as misses.
 */
export function injectFaults(opts: {
  client: Client;
  target: FaultTarget;
  faults: PlannedFault[];
  refs: Record<Phase, PhaseRef>;
  expectedMs: Record<Phase, number>;
  signal: AbortSignal;
  print: (line: string) => void;
}): Promise<FaultOutcome[]> {
  const { client, target, faults, refs, expectedMs, signal, print } = opts;
  const locks = new Locks();
  const total = faults.length;
  const starts = new Map<Phase, Promise<number | null>>();
  const startOf = (p: Phase) => {
    if (!starts.has(p)) starts.set(p, waitForStart(client, refs[p], signal));
    return starts.get(p)!;
  };

  return Promise.all(
    faults.map(async (f): Promise<FaultOutcome> => {
      const head = `fault ${f.n}/${total}: ${FAULT_NAMES[f.kind]} during ${f.phase}`;
      const plannedMs = Math.round(f.at * expectedMs[f.phase]);
      const report = (hit: boolean, text: string): FaultOutcome => {
        const line = `${head} ${text}`;
        print(line);
        return { fault: f, hit, line };
      };
      const phaseStart = await startOf(f.phase);
      if (phaseStart === null) return report(false, `(planned ${secs(plannedMs)} into it): not fired, ${f.phase} never started before the run ended -> MISSED`);
      await sleep(phaseStart + plannedMs - Date.now(), signal);
      if (signal.aborted) return report(false, `(planned ${secs(plannedMs)} into it): not fired, the run ended first -> MISSED`);
      const release = await locks.acquire(f.kind);
      const firedAt = Date.now();
      try {
        if (signal.aborted) return report(false, `(planned ${secs(plannedMs)} into it): not fired, the run ended while it waited for an earlier fault of its kind -> MISSED`);
        let d: Disruption;
        try {
          d = await disrupt(f.kind, target);
        } catch (err) {
          return report(false, `at ${secs(firedAt - phaseStart)} into it (planned ${secs(plannedMs)}): FAILED TO INJECT: ${(err as Error).message} -> MISSED`);
        }
        // Verified after the fault took effect, from the workflow's own status and close time.
        const state = await phaseState(client, refs[f.phase]).catch((err: Error): PhaseState => ({ running: false, status: `unknown (${err.message})`, closeMs: undefined, inFlight: [] }));
        const { hit, text } = judge(f.phase, state, d.effectiveAt);
        const what = await d.recover().catch((err: Error) => `FAILED TO RECOVER: ${err.message}`);
        const when = `at ${secs(firedAt - phaseStart)} into it (planned ${secs(plannedMs)} = ${Math.round(f.at * 100)}% of the fault-free ${(expectedMs[f.phase] / 1000).toFixed(1)} s)`;
        return report(hit, `${when}: ${what}; ${text}`);
      } finally {
        release();
      }
    }),
  );
}
