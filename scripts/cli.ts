/** The shared shape of pinflow's commands: exit 2 on usage or configuration errors, 1 on failure. */
import { DefaultLogger, Runtime } from '@temporalio/worker';
import { ConfigError, loadConfig, type Config } from '../common/config';

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
    console.error(`${name} failed: ${err instanceof Error ? err.message : String(err)}`);
    process.exit(1);
  });
}
