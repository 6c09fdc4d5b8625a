/**
 * S3: versitygw (posix backend), built from the Go module proxy. A real S3 gateway:
 * multipart upload, ListObjectsV2, SigV4. Data under .data/s3/<bucket>/.
 *
 * A part of the local stack (stack/service.ts says what a part does; stack/services.ts lists them).
 */
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import fs from 'node:fs';
import path from 'node:path';
import { LOCAL_S3_CREDENTIALS, type Config } from '../config';
import { createS3Client } from '../adapters/s3';
import { CACHE_DIR, DATA_DIR, logFile, portOpen, runWithProgress, say, spawnDetached, stopProcess, waitFor, which } from './proc';
import { requireLocal, type Service } from './service';

export const VERSITYGW_VERSION = 'v1.8.0';
const VERSITYGW_BIN = path.join(CACHE_DIR, 'bin', `versitygw-${VERSITYGW_VERSION}`);

async function ensureVersitygw(): Promise<void> {
  if (fs.existsSync(VERSITYGW_BIN)) return;
  if (!which('go')) throw new Error('Building the S3 server (versitygw) needs Go on PATH: apt-get install golang');
  const gobin = path.join(CACHE_DIR, 'go', 'bin');
  await runWithProgress('go', ['install', '-trimpath', `github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}`], {
    label: `build versitygw ${VERSITYGW_VERSION} (Go module proxy)`,
    env: {
      GOBIN: gobin,
      GOMODCACHE: path.join(CACHE_DIR, 'go', 'mod'),
      GOCACHE: path.join(CACHE_DIR, 'go', 'build'),
      GOFLAGS: '-modcacherw',
      CGO_ENABLED: '0',
    },
  });
  fs.mkdirSync(path.dirname(VERSITYGW_BIN), { recursive: true });
  fs.renameSync(path.join(gobin, 'versitygw'), VERSITYGW_BIN);
}

async function s3Healthy(config: Config): Promise<boolean> {
  if (!config.s3.endpoint) return false;
  const u = new URL(config.s3.endpoint);
  if (!(await portOpen(u.hostname, Number(u.port || 80)))) return false;
  const res = await fetch(new URL('/health', config.s3.endpoint), { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
  if (res?.status === 200) return true;
  // Not our gateway: any S3 answer (even 403/404 for a missing bucket) means it is up.
  const s3 = createS3Client(config);
  try {
    await s3.send(new HeadBucketCommand({ Bucket: config.s3.bucket }));
    return true;
  } catch (e) {
    return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== undefined;
  } finally {
    s3.destroy();
  }
}

async function ensureBucket(config: Config): Promise<void> {
  const s3 = createS3Client(config);
  try {
    await s3.send(new HeadBucketCommand({ Bucket: config.s3.bucket }));
  } catch {
    await s3.send(new CreateBucketCommand({ Bucket: config.s3.bucket })).catch((e: Error) => {
      if (e.name !== 'BucketAlreadyOwnedByYou' && e.name !== 'BucketAlreadyExists') throw e;
    });
    say(`s3: created bucket ${config.s3.bucket}`);
  } finally {
    s3.destroy();
  }
}

export const s3Service: Service = {
  name: 's3',
  describe: (c) => `S3 (versitygw ${VERSITYGW_VERSION}) ${c.s3.endpoint ?? 'AWS'} bucket ${c.s3.bucket}`,
  healthy: (c) => s3Healthy(c).catch(() => false),
  async up(config) {
    if (!config.s3.endpoint) return ensureBucket(config); // real AWS: nothing to start
    if (!(await this.healthy(config))) {
      const u = new URL(config.s3.endpoint);
      requireLocal('S3', u.hostname, config.s3.endpoint);
      await ensureVersitygw();
      const root = path.join(DATA_DIR, 's3');
      fs.mkdirSync(root, { recursive: true });
      const creds = config.s3.credentials ?? LOCAL_S3_CREDENTIALS;
      spawnDetached('s3', VERSITYGW_BIN, ['--port', `${u.hostname}:${u.port || 80}`, '--health', '/health', '--quiet', 'posix', root], {
        // Credentials through the environment, so they never show in `ps`.
        ROOT_ACCESS_KEY_ID: creds.accessKeyId,
        ROOT_SECRET_ACCESS_KEY: creds.secretAccessKey,
      });
      await waitFor('S3', () => s3Healthy(config), 30_000, logFile('s3'));
    }
    await ensureBucket(config);
  },
  down: () => stopProcess('s3'),
};
