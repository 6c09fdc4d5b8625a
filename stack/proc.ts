/** Process helpers for the local stack: run, spawn detached, pid files, waiting. */
import { spawn, spawnSync } from 'node:child_process';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { PROJECT_ROOT } from '../config';

export const CACHE_DIR = path.join(PROJECT_ROOT, '.cache');
export const DATA_DIR = path.join(PROJECT_ROOT, '.data');
export const LOG_DIR = path.join(DATA_DIR, 'logs');
const RUN_DIR = path.join(DATA_DIR, 'run');

export function say(msg: string): void {
  process.stderr.write(`[stack] ${msg}\n`);
}

/** Runs a command to completion, streaming nothing; throws with its output tail on failure. */
export function run(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; label: string }): string {
  const started = Date.now();
  const res = spawnSync(cmd, args, { env: { ...process.env, ...opts.env }, cwd: opts.cwd ?? PROJECT_ROOT, encoding: 'utf8', maxBuffer: 64 << 20 });
  if (res.error) throw new Error(`${opts.label}: cannot run ${cmd}: ${res.error.message}`);
  if (res.status !== 0) {
    const tail = `${res.stdout ?? ''}${res.stderr ?? ''}`.trim().split('\n').slice(-25).join('\n');
    throw new Error(`${opts.label} failed (exit ${res.status}) after ${((Date.now() - started) / 1000).toFixed(0)} s:\n${tail}`);
  }
  return res.stdout;
}

/** Runs a long install step, printing a dot every 5 s so the user sees it is alive. */
export async function runWithProgress(cmd: string, args: string[], opts: { env?: NodeJS.ProcessEnv; label: string }): Promise<void> {
  say(`${opts.label} ...`);
  const started = Date.now();
  const logPath = path.join(LOG_DIR, `install-${opts.label.replace(/[^a-z0-9]+/gi, '-')}.log`);
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const log = fs.openSync(logPath, 'w');
  const child = spawn(cmd, args, { env: { ...process.env, ...opts.env }, cwd: PROJECT_ROOT, stdio: ['ignore', log, log] });
  const timer = setInterval(() => say(`  ${opts.label}: ${((Date.now() - started) / 1000).toFixed(0)} s`), 10_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  }).finally(() => {
    clearInterval(timer);
    fs.closeSync(log);
  });
  if (code !== 0) {
    const tail = fs.readFileSync(logPath, 'utf8').trim().split('\n').slice(-25).join('\n');
    throw new Error(`${opts.label} failed (exit ${code}); log ${logPath}:\n${tail}`);
  }
  say(`${opts.label}: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

export function which(name: string): string | undefined {
  for (const dir of (process.env.PATH ?? '').split(path.delimiter)) {
    const p = path.join(dir, name);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {
      /* not here */
    }
  }
  return undefined;
}

const pidFile = (name: string) => path.join(RUN_DIR, `${name}.pid`);
export const logFile = (name: string) => path.join(LOG_DIR, `${name}.log`);

/** Starts a server in its own process group, detached from this process, output to its log. */
export function spawnDetached(name: string, cmd: string, args: string[], env: NodeJS.ProcessEnv = {}): number {
  fs.mkdirSync(RUN_DIR, { recursive: true });
  fs.mkdirSync(LOG_DIR, { recursive: true });
  const out = fs.openSync(logFile(name), 'a');
  fs.writeSync(out, `\n==== ${new Date().toISOString()} starting: ${cmd} ${args.join(' ')}\n`);
  const child = spawn(cmd, args, { env: { ...process.env, ...env }, cwd: PROJECT_ROOT, detached: true, stdio: ['ignore', out, out] });
  fs.closeSync(out);
  if (child.pid === undefined) throw new Error(`${name}: could not start ${cmd}`);
  child.unref();
  fs.writeFileSync(pidFile(name), String(child.pid));
  return child.pid;
}

export function readPid(name: string): number | undefined {
  try {
    const pid = Number(fs.readFileSync(pidFile(name), 'utf8').trim());
    return Number.isInteger(pid) && pid > 0 ? pid : undefined;
  } catch {
    return undefined;
  }
}

export function isAlive(pid: number | undefined): boolean {
  if (pid === undefined) return false;
  try {
    process.kill(pid, 0);
    return true;
  } catch {
    return false;
  }
}

/** Stops a server we started: SIGTERM to its process group, SIGKILL after `graceMs`. */
export async function stopProcess(name: string, graceMs = 15_000): Promise<boolean> {
  const pid = readPid(name);
  if (!isAlive(pid)) {
    fs.rmSync(pidFile(name), { force: true });
    return false;
  }
  const signal = (sig: NodeJS.Signals) => {
    try {
      process.kill(-pid!, sig);
    } catch {
      try {
        process.kill(pid!, sig);
      } catch {
        /* gone */
      }
    }
  };
  signal('SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(200);
  if (isAlive(pid)) signal('SIGKILL');
  while (isAlive(pid)) await sleep(100);
  fs.rmSync(pidFile(name), { force: true });
  return true;
}

/** Polls `check` until it returns true; fails naming `label` and pointing at the log. */
export async function waitFor(label: string, check: () => Promise<boolean>, timeoutMs: number, log?: string): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastProgress = Date.now();
  while (Date.now() < deadline) {
    if (await check().catch(() => false)) return;
    if (Date.now() - lastProgress > 10_000) {
      say(`  still waiting for ${label} ...`);
      lastProgress = Date.now();
    }
    await sleep(300);
  }
  throw new Error(`${label} did not become healthy within ${timeoutMs / 1000} s${log ? `; see ${log}` : ''}`);
}

/** True when something accepts TCP connections at host:port. */
export function portOpen(host: string, port: number, timeoutMs = 1000): Promise<boolean> {
  return new Promise((resolve) => {
    const sock = net.connect({ host, port });
    const done = (ok: boolean) => {
      sock.destroy();
      resolve(ok);
    };
    sock.setTimeout(timeoutMs, () => done(false));
    sock.once('connect', () => done(true));
    sock.once('error', () => done(false));
  });
}

export function isLoopbackHost(host: string): boolean {
  return host === '127.0.0.1' || host === 'localhost' || host === '::1' || host === '[::1]';
}
