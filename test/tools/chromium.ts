/**
 * Headless Chromium for the report test (and anyone who wants to render the report): Debian's
 * `chromium` package, installed with apt-get on first use like MariaDB in the stack, driven
 * by playwright-core (which never downloads a browser of its own).
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import { chromium, type Browser, type LaunchOptions } from 'playwright-core';
import { runWithProgress, say, which } from '../../stack/proc';

export const CHROMIUM_PATH = '/usr/bin/chromium';

/**
 * Debian packages: the browser itself, a Latin font (DejaVu) so text has metrics, and a
 * small CJK font (WenQuanYi Zen Hei, 7 MB, instead of Noto CJK's 56 MB) so names such as
 * "日本" render as glyphs in screenshots rather than boxes. `--no-install-recommends` keeps
 * the desktop extras (GTK themes, portals' recommends) out.
 */
export const CHROMIUM_PACKAGES = ['chromium', 'fonts-dejavu-core', 'fonts-wqy-zenhei'] as const;

/**
 * Flags this machine needs. The background-networking group matters on this closed network:
 * without it Chromium opens connections to Google services at start-up, they are refused,
 * and the browser logs errors (or stalls) instead of rendering.
 */
export const CHROMIUM_FLAGS = [
  '--headless',
  '--no-sandbox',
  '--disable-gpu',
  '--disable-quic',
  '--no-first-run',
  '--disable-background-networking',
  '--disable-component-update',
  '--disable-sync',
  '--disable-dev-shm-usage',
] as const;

type Log = (msg: string) => void;

function missingPackages(): string[] {
  return CHROMIUM_PACKAGES.filter((p) => {
    const res = spawnSync('dpkg-query', ['-W', '-f=${Status}', p], { encoding: 'utf8' });
    return res.status !== 0 || !res.stdout.includes('install ok installed');
  });
}

/** apt-get as root, or through passwordless sudo when we are not root. */
function aptCommand(args: string[]): [string, string[]] {
  if (process.getuid?.() === 0) return ['apt-get', args];
  if (which('sudo')) return ['sudo', ['-n', 'apt-get', ...args]];
  throw new Error(`Chromium is not installed and this user cannot run apt-get: install ${CHROMIUM_PACKAGES.join(' ')} as root`);
}

/**
 * Returns the path of Debian's chromium, installing the packages it needs with apt-get when
 * any is missing. Idempotent: with everything installed it only asks dpkg (milliseconds).
 */
export async function ensureChromium(log: Log = say): Promise<string> {
  if (!which('dpkg-query')) {
    if (fs.existsSync(CHROMIUM_PATH)) return CHROMIUM_PATH;
    throw new Error(`${CHROMIUM_PATH} is missing and this is not a Debian system: install Chromium there`);
  }
  const missing = missingPackages();
  if (missing.length === 0 && fs.existsSync(CHROMIUM_PATH)) return CHROMIUM_PATH;
  if (!which('apt-get')) throw new Error(`Chromium needs the Debian packages ${missing.join(' ')} and apt-get is not available`);
  log(`chromium: installing Debian packages ${missing.join(' ')}`);
  const env = { DEBIAN_FRONTEND: 'noninteractive' };
  // Wait for a concurrent apt/dpkg run instead of failing on its lock.
  const lock = ['-o', 'DPkg::Lock::Timeout=300'];
  const install = aptCommand(['install', '-y', '-qq', '--no-install-recommends', ...lock, ...missing]);
  const update = aptCommand(['update', '-qq', ...lock]);
  // The package lists may be stale (a security update replaced the version they name): on a
  // failed install refresh them once and retry, as the stack does for MariaDB.
  try {
    await runWithProgress(install[0], install[1], { label: 'install Chromium (Debian packages)', env });
  } catch {
    await runWithProgress(update[0], update[1], { label: 'apt-get update' });
    await runWithProgress(install[0], install[1], { label: 'install Chromium (Debian packages)', env });
  }
  if (!fs.existsSync(CHROMIUM_PATH)) throw new Error(`installed ${missing.join(' ')} but ${CHROMIUM_PATH} is missing`);
  return CHROMIUM_PATH;
}

/**
 * Launches headless Chromium with the flags above. Every launch gets a fresh, empty profile:
 * playwright creates its user-data-dir in the temp directory and removes it on close (it
 * refuses a --user-data-dir argument, which only launchPersistentContext takes). The caller
 * closes the returned Browser.
 */
export async function launchChromium(options: Pick<LaunchOptions, 'timeout' | 'env'> = {}): Promise<Browser> {
  const executablePath = await ensureChromium();
  return chromium.launch({
    executablePath,
    headless: true,
    args: [...CHROMIUM_FLAGS],
    timeout: options.timeout ?? 60_000,
    env: options.env,
  });
}
