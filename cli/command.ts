/**
 * The shared shape of pinflow's commands. Every command parses its command line against its
 * declaration (cli/args.ts) before doing anything else, then runs; its exit status:
 * - 0: done (`--help`: the help, on stdout);
 * - 1: failed: `<name> failed: <message>: <innermost cause>` on stderr, secrets redacted
 *   (or the status the command's main returns, e.g. doctor with a system down);
 * - 2: a usage mistake (the message, then `usage: <usage line>`) or bad configuration (the
 *   ConfigError naming every bad setting).
 */
import { ConfigError, loadConfig, type Config } from '../config';
import { redactText } from '../common/redact';
import { HelpRequested, parseCommandLine, usageLine, UsageError, type CommandDecl } from './args';

export { UsageError } from './args';

/** `Workflow execution failed: Kafka at ...: SASL ... failed: ...`: the message, then the innermost cause's. */
export function withRootCause(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  let root: unknown = err;
  for (let i = 0; i < 10 && root instanceof Error && root.cause instanceof Error; i++) root = root.cause;
  const inner = root instanceof Error ? root.message : '';
  return inner && inner !== err.message ? `${err.message}: ${inner}` : err.message;
}

export interface CommandOutput {
  out: (text: string) => void;
  err: (text: string) => void;
}

const CONSOLE: CommandOutput = { out: (t) => console.log(t), err: (t) => console.error(t) };

/**
 * Runs a command and returns its exit status (see the top of this file) without exiting:
 * `main` gets the arguments once they parse, and returns its own status or nothing (0).
 */
export async function commandStatus(decl: CommandDecl, argv: string[], main: (argv: string[]) => Promise<number | void>, output: CommandOutput = CONSOLE): Promise<number> {
  try {
    parseCommandLine(decl, argv);
    return (await main(argv)) ?? 0;
  } catch (err) {
    if (err instanceof HelpRequested) {
      output.out(err.message);
      return 0;
    }
    if (err instanceof UsageError) {
      output.err(`${err.message}\nusage: ${usageLine(decl)}`);
      return 2;
    }
    if (err instanceof ConfigError) {
      output.err(err.message);
      return 2;
    }
    output.err(redactText(`${decl.name ?? decl.script} failed: ${withRootCause(err)}`));
    return 1;
  }
}

/** Runs a command that sets itself up (the stack, the worker, the report): exits with its status. */
export function runCommand(decl: CommandDecl, main: (argv: string[]) => Promise<number | void>): void {
  commandStatus(decl, process.argv.slice(2), main).then((status) => process.exit(status));
}

/** Runs a command on the loaded configuration, with in-process workers logging only errors. */
export function runCli(decl: CommandDecl, main: (config: Config, argv: string[]) => Promise<number | void>): void {
  runCommand(decl, async (argv) => {
    const config = loadConfig();
    // In-process workers log only errors; the command prints what matters. (Loaded here, not
    // at the top: commands without workers, and every --help, start without the worker SDK.)
    const { DefaultLogger, Runtime } = await import('@temporalio/worker');
    Runtime.install({ logger: new DefaultLogger('ERROR') });
    return main(config, argv);
  });
}
