/**
 * Test helpers: a Config built from the environment plus overrides, the stack brought up
 * once per test file (idempotent, fast when it already runs), and unique names so tests
 * isolate their data and pass in any order on a stack earlier runs already used.
 *
 * With PINFLOW_UNIT_TESTS=1 (`npm run test:unit`) every entry point here that reaches the stack
 * (ensureStack, stackTestContext, workflowTestEnv, runWorkflow, backgroundWorker) refuses with
 * the one error below, so a test that needs a server fails at once in test/unit/ instead of
 * quietly using a stack that happens to run. The Temporal worker, the adapters and the stack
 * are loaded on first use, so a unit test that only needs testConfig() or runScript() starts fast.
 */
import { randomBytes } from 'node:crypto';
import { spawn, spawnSync } from 'node:child_process';
import { createRequire } from 'node:module';
import type { WorkflowHandle, WorkflowHandleWithFirstExecutionRunId } from '@temporalio/client';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import type * as TemporalWorker from '@temporalio/worker';
import type { S3Client } from '@aws-sdk/client-s3';
import type { Kafka } from 'kafkajs';
import { after, before } from 'node:test';
import { loadConfig, PROJECT_ROOT, readEnv, type Config } from '../../config';
import { createServer, type AddressInfo } from 'node:net';

let runtimeInstalled = false;

/** Quiet the worker runtime in tests: failures surface through assertions, not logs. */
export function quietRuntime(): void {
  if (runtimeInstalled) return;
  runtimeInstalled = true;
  try {
    const { DefaultLogger, Runtime } = createRequire(__filename)('@temporalio/worker') as typeof TemporalWorker;
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

/** Throws when this process runs the unit tests (PINFLOW_UNIT_TESTS=1), which run without the stack. */
function refuseInUnitTests(what: string): void {
  if (process.env.PINFLOW_UNIT_TESTS === '1') throw new Error(`unit tests run without the stack (${what} refused): this test belongs in test/integration/`);
}

let stackReady: Promise<void> | undefined;
export async function ensureStack(config: Config = testConfig()): Promise<void> {
  refuseInUnitTests('ensureStack');
  return (stackReady ??= import('../../stack').then(({ stackUp }) => stackUp(config)));
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

/** runScript without blocking this process (for when a worker in this process must keep working). */
export function runScriptAsync(script: string, args: string[], env: Record<string, string> = {}, timeoutMs = 180_000): Promise<CliResult> {
  return new Promise((resolve) => {
    const child = spawn('npm', ['run', '--silent', script, '--', ...args], { cwd: PROJECT_ROOT, env: { ...process.env, ...env }, timeout: timeoutMs });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr: stderr.replace(/^npm warn.*\n/gm, '') }));
  });
}

export { SAMPLE_DIR_DEFAULT as SAMPLE_DIR } from '../../cli/paths';

/**
 * Runs one workflow to its end on a worker of its own (unique task queue, this process),
 * optionally doing `during(handle)` while it runs.
 */
export async function runWorkflow<R>(
  env: TestWorkflowEnvironment,
  config: Config,
  type: string,
  args: unknown[],
  during?: (handle: WorkflowHandle) => Promise<void>,
): Promise<{ handle: WorkflowHandleWithFirstExecutionRunId; result: R }> {
  refuseInUnitTests('runWorkflow');
  const { createWorker } = await import('../../workers/worker');
  const taskQueue = uniqueName(`tq-${type}`);
  const w = await createWorker(config, { connection: env.nativeConnection, taskQueue });
  try {
    const handle = await env.client.workflow.start(type, { taskQueue, workflowId: uniqueName(type), args });
    const result = (await w.worker.runUntil(async () => {
      if (during) await during(handle);
      return handle.result();
    })) as R;
    return { handle, result };
  } finally {
    await w.close();
  }
}

/** A test environment on the stack's Temporal server (the dev server `ensureStack` started). */
export async function workflowTestEnv(config: Config = testConfig()): Promise<TestWorkflowEnvironment> {
  refuseInUnitTests('workflowTestEnv');
  const { TestWorkflowEnvironment: Env } = await import('@temporalio/testing');
  const { temporalConnectionOptions } = await import('../../workers/connection');
  const { dataConverterOf } = await import('../../workers/codec');
  const { address, ...connectionOptions } = temporalConnectionOptions(config);
  // The same TLS / API key and payload codec as connectClient and createWorker, when configured.
  return Env.createFromExistingServer({ address, namespace: config.temporal.namespace, connectionOptions, client: { dataConverter: dataConverterOf(config) } });
}

/**
 * A worker polling `config`'s task queue in this process for the whole test file (for tests
 * that drive the system through commands or schedules). `stop()` drains it.
 */
export async function backgroundWorker(env: TestWorkflowEnvironment, config: Config): Promise<{ stop: () => Promise<void> }> {
  refuseInUnitTests('backgroundWorker');
  const { createWorker } = await import('../../workers/worker');
  const w = await createWorker(config, { connection: env.nativeConnection, taskQueue: config.temporal.taskQueue });
  const running = w.worker.run();
  return {
    async stop() {
      w.worker.shutdown();
      await running;
      await w.close();
    },
  };
}

/**
 * The usual set-up of a test file that drives workflows against the stack: registers the file's
 * before/after hooks (stack up, a workflow environment, Kafka and S3 clients) and returns them,
 * filled once `before` has run.
 */
export function stackTestContext(config: Config = testConfig()): { env: TestWorkflowEnvironment; kafka: Kafka; s3: S3Client; config: Config } {
  const ctx = { config } as { env: TestWorkflowEnvironment; kafka: Kafka; s3: S3Client; config: Config };
  before(async () => {
    refuseInUnitTests('stackTestContext');
    quietRuntime();
    await ensureStack(config);
    ctx.env = await workflowTestEnv(config);
    ctx.kafka = (await import('../../adapters/kafka')).createKafka(config);
    ctx.s3 = (await import('../../adapters/s3')).createS3Client(config);
  });
  after(async () => ctx.env?.teardown());
  return ctx;
}

/** The UTC date `offset` days from today, YYYY-MM-DD. */
export const utcDay = (offset: number): string => new Date(Date.now() + offset * 86_400_000).toISOString().slice(0, 10);

/**
 * Polls `fn` until it returns something other than undefined; an error counts as "not yet" and
 * the last one is named when the wait times out.
 */
export async function until<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  for (;;) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (err) {
      last = err;
    }
    if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}${last ? ` (last error: ${(last as Error).message})` : ''}`);
    await new Promise((r) => setTimeout(r, everyMs));
  }
}

/** A TCP port free on 127.0.0.1 at the time of asking. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once('error', reject);
    s.listen(0, '127.0.0.1', () => {
      const { port } = s.address() as AddressInfo;
      s.close(() => resolve(port));
    });
  });
}
