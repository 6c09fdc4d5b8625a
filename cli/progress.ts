/** A one-line terminal progress bar that redraws in place on a TTY and prints every 5 s otherwise. */
export function progressLine(done: number, total: number | null, extra: string, width = 30): string {
  if (total === null || total <= 0) return `${done.toLocaleString('en')} ${extra}`;
  const frac = Math.min(1, done / total);
  const filled = Math.round(frac * width);
  return `[${'#'.repeat(filled)}${'.'.repeat(width - filled)}] ${(frac * 100).toFixed(0).padStart(3)}% ${done.toLocaleString('en')}/${total.toLocaleString('en')} ${extra}`;
}

export class ProgressPrinter {
  private lastPrint = 0;
  private readonly tty = Boolean(process.stderr.isTTY);
  update(line: string, final = false): void {
    if (this.tty) {
      process.stderr.write(`\r\x1b[2K${line}${final ? '\n' : ''}`);
    } else if (final || Date.now() - this.lastPrint >= 5_000) {
      this.lastPrint = Date.now();
      process.stderr.write(`${line}\n`);
    }
  }
}

/**
 * Calls `fn` every `ms` (one call at a time). `stop()` clears the timer and waits for a call
 * in flight, so a caller can close the connection `fn` uses without racing it.
 */
export function pollEvery(ms: number, fn: () => Promise<void>): { stop: () => Promise<void> } {
  let inFlight: Promise<void> | undefined;
  const timer = setInterval(() => {
    if (!inFlight) inFlight = fn().catch(() => undefined).finally(() => (inFlight = undefined));
  }, ms);
  return {
    async stop() {
      clearInterval(timer);
      await inFlight;
    },
  };
}
