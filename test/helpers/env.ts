/**
 * Test helpers: a Config built from the environment plus overrides, the stack brought up
 * once per test file (idempotent, fast when it already runs), and unique names so tests
 * isolate their data and pass in any order on a stack earlier runs already used.
 */
import { randomBytes } from 'node:crypto';
import { spawnSync } from 'node:child_process';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { loadConfig, PROJECT_ROOT, readEnv, type Config } from '../../common/config';
import { stackUp } from '../../scripts/stack/index';

let runtimeInstalled = false;

/** Quiet the worker runtime in tests: failures surface through assertions, not logs. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    Runtime.install({ logger: new DefaultLogger('ERROR') });
  } catch {
    /* already installed by another helper in this process */
  }
}

export function testConfig(overrides: Record<string, string> = {}): Config {
  return loadConfig({ ...readEnv(), ...overrides });
}

export function uniqueName(stem: string): string {
  return `${stem}-${Date.now().toString(36)}-${randomBytes(3).toString('hex')}`;
}

let stackReady: Promise<void> | undefined;
export function ensureStack(config: Config = testConfig()): Promise<void> {
  return (stackReady ??= stackUp(config));
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs a project script the way a user does (`npm run X -- args`), with extra env. */
export function runScript(script: string, args: string[], env: Record<string, string> = {}, timeoutMs = 180_000): CliResult {
  const res = spawnSync('npm', ['run', '--silent', script, '--', ...args], {
    cwd: PROJECT_ROOT,
    env: { ...process.env, ...env },
    encoding: 'utf8',
    timeout: timeoutMs,
  });
  return { code: res.status, stdout: res.stdout ?? '', stderr: (res.stderr ?? '').replace(/^npm warn.*\n/gm, '') };
}

export { SAMPLE_DIR_DEFAULT as SAMPLE_DIR } from '../../scripts/paths';
