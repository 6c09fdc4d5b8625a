/** The local stack's commands (`npm run stack -- up|down|status|logs [part...]`) over the parts in stack/services.ts. */
import fs from 'node:fs';
import type { Config } from '../config';
import { logFile, say } from './proc';
import type { Service } from './service';
import { SERVICES } from './services';

function pick(names: string[]): Service[] {
  if (names.length === 0) return SERVICES;
  const unknown = names.filter((n) => !SERVICES.some((s) => s.name === n));
  if (unknown.length) throw new Error(`unknown stack part(s): ${unknown.join(', ')}; known: ${SERVICES.map((s) => s.name).join(', ')}`);
  return SERVICES.filter((s) => names.includes(s.name));
}

/** Brings every part up (installing on first use); returns once all are healthy. Idempotent. */
export async function stackUp(config: Config, names: string[] = []): Promise<void> {
  const parts = pick(names);
  // Installs and JVM start-up dominate: start them side by side.
  const results = await Promise.allSettled(
    parts.map(async (s) => {
      const started = Date.now();
      await s.up(config);
      say(`${s.name.padEnd(8)} healthy  ${s.describe(config)}  (${((Date.now() - started) / 1000).toFixed(1)} s)`);
    }),
  );
  const failed = results.flatMap((r, i) => (r.status === 'rejected' ? [`${parts[i]!.name}: ${(r.reason as Error).message}`] : []));
  if (failed.length) throw new Error(`stack up failed:\n${failed.join('\n')}`);
}

export async function stackDown(config: Config, names: string[] = []): Promise<void> {
  for (const s of pick(names).reverse()) {
    const stopped = await s.down(config);
    say(`${s.name.padEnd(8)} ${stopped ? 'stopped' : 'was not started by this stack'}`);
  }
}

export async function stackStatus(config: Config, names: string[] = []): Promise<boolean> {
  const parts = pick(names);
  const health = await Promise.all(parts.map((s) => s.healthy(config)));
  parts.forEach((s, i) => console.log(`${s.name.padEnd(8)} ${health[i] ? 'healthy  ' : 'DOWN     '} ${s.describe(config)}`));
  return health.every(Boolean);
}

export function stackLogs(names: string[] = [], lines = 40): void {
  for (const s of pick(names)) {
    const file = logFile(s.name);
    console.log(`==> ${file} <==`);
    if (!fs.existsSync(file)) {
      console.log('(no log: not started by this stack)');
      continue;
    }
    console.log(fs.readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n'));
  }
}
