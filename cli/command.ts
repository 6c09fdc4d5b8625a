/** The shared shape of pinflow's commands: exit 2 on usage or configuration errors, 1 on failure. */
import { WorkflowExecutionAlreadyStartedError } from '@temporalio/client';
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { ConfigError, loadConfig, type Config } from '../config';
import { redactText } from '../common/redact';

/** A command-line mistake: the command exits 2 with this message (and the usage line). */
export class UsageError extends Error {}

export function runCli(name: string, usage: string, main: (config: Config, argv: string[]) => Promise<void>): void {
  (async () => {
    const config = loadConfig();
    // In-process workers log only errors; the command prints what matters.
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    await main(config, process.argv.slice(2));
    process.exit(0);
  })().catch((err) => {
    if (err instanceof UsageError || err instanceof ConfigError) {
      console.error(`${err.message}\nusage: ${usage}`);
      process.exit(2);
    }
    console.error(redactText(`${name} failed: ${withRootCause(err)}`));
    process.exit(1);
  });
}

/** `Workflow execution failed: Kafka at ...: SASL ... failed: ...`: the message, then the innermost cause's. */
export function withRootCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let root: unknown = err;
  for (let i = 0; i < 10 && root instanceof Error && root.cause instanceof Error; i++) root = root.cause;
  const inner = root instanceof Error ? root.message : '';
  return inner && inner !== err.message ? `${err.message}: ${inner}` : err.message;
}

/**
 * Parses `--name value` options and `--flag` switches; anything else is a UsageError.
 * Returns the options given (switches as 'true').
 */
export function parseOptions(argv: string[], spec: { values: string[]; flags?: string[] }): Map<string, string> {
  const values = new Set(spec.values);
  const flags = new Set(spec.flags ?? []);
  const opts = new Map<string, string>();
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i]!;
    if (flags.has(a)) opts.set(a, 'true');
    else if (values.has(a)) {
      const v = argv[++i];
      if (v === undefined || (v.startsWith('--') && (values.has(v) || flags.has(v)))) throw new UsageError(`${a} needs a value`);
      opts.set(a, v);
    } else throw new UsageError(`unknown option ${a}`);
  }
  return opts;
}

/**
 * Starts a workflow whose id admits one run at a time; if it is already running, a UsageError
 * names it and says how to wait or cancel (`what`: e.g. "a landing workflow for prefix X").
 */
/**
 * Starts a workflow, turning "already started" into a usage error (exit 2). With `usedOnce`,
 * the id may not be reused at all (a start with REJECT_DUPLICATE), and the message says so.
 */
export async function startOrRefuse<H>(start: () => Promise<H>, workflowId: string, what: string, usedOnce?: string): Promise<H> {
  try {
    return await start();
  } catch (err) {
    if (err instanceof WorkflowExecutionAlreadyStartedError) {
      if (usedOnce) throw new UsageError(`${what} already exists (${workflowId}, running or finished); ${usedOnce}`);
      throw new UsageError(`${what} is already running (${workflowId}); wait for it, or cancel it: temporal workflow cancel -w ${workflowId}`);
    }
    throw err;
  }
}
