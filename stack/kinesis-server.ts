/**
 * Kinesis: kinesalite from node_modules (npm, an implementation of the Kinesis API on
 * LevelDB; its leveldown native module comes prebuilt in the package), bound to the endpoint's
 * address, streams in .data/kinesis so a restart keeps them. Streams are created on demand by
 * the emulation and streaming activities (`ensureStreams`), not here. Real AWS: nothing to start.
 *
 * A part of the local stack (stack/service.ts says what a part does; stack/services.ts lists them).
 */
import { ListStreamsCommand } from '@aws-sdk/client-kinesis';
import fs from 'node:fs';
import path from 'node:path';
import type { Config } from '../config';
import { createKinesisClient } from '../adapters/kinesis';
import { DATA_DIR, logFile, portOpen, spawnDetached, stopProcess, waitFor } from './proc';
import { requireLocal, type Service } from './service';

const KINESIS_DIR = path.join(DATA_DIR, 'kinesis');
const KINESALITE_VERSION = (JSON.parse(fs.readFileSync(require.resolve('kinesalite/package.json'), 'utf8')) as { version: string }).version;

async function kinesisHealthy(config: Config): Promise<boolean> {
  if (!config.kinesis.endpoint) return false;
  const u = new URL(config.kinesis.endpoint);
  if (!(await portOpen(u.hostname, Number(u.port || 80)))) return false;
  const client = createKinesisClient(config);
  try {
    await client.send(new ListStreamsCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(3_000) });
    return true;
  } finally {
    client.destroy();
  }
}

export const kinesisService: Service = {
  name: 'kinesis',
  describe: (c) => `Kinesis (kinesalite ${KINESALITE_VERSION}) ${c.kinesis.endpoint ?? `AWS ${c.kinesis.region}`}`,
  healthy: (c) => kinesisHealthy(c).catch(() => false),
  async up(config) {
    if (!config.kinesis.endpoint) return; // real AWS: nothing to start
    if (await this.healthy(config)) return;
    const u = new URL(config.kinesis.endpoint);
    requireLocal('Kinesis', u.hostname, config.kinesis.endpoint);
    if (u.protocol !== 'http:') throw new Error(`the local kinesalite serves plain http; KINESIS_ENDPOINT ${config.kinesis.endpoint} asks for ${u.protocol}`);
    fs.mkdirSync(KINESIS_DIR, { recursive: true });
    spawnDetached('kinesis', process.execPath, [
      '--import', 'tsx',
      path.join(__dirname, 'kinesalite.ts'),
      '--host', u.hostname === 'localhost' ? '127.0.0.1' : u.hostname,
      '--port', u.port || '80',
      '--path', KINESIS_DIR,
    ]);
    await waitFor('Kinesis', () => kinesisHealthy(config), 30_000, logFile('kinesis'));
  },
  down: () => stopProcess('kinesis'),
};
