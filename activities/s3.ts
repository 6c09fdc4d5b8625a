/** S3 adapter: the only module that talks to object storage. */
import { DeleteObjectCommand, GetObjectCommand, PutObjectCommand, S3Client } from '@aws-sdk/client-s3';
import { NodeHttpHandler } from '@smithy/node-http-handler';
import { randomUUID } from 'node:crypto';
import http from 'node:http';
import https from 'node:https';
import { addressOf, type Config } from '../common/config';
import { guarded } from '../common/errors';
import type { SystemCheck } from '../common/types';

// The pinned SDK supports Node 20 (this machine's); its notice about future releases is noise here.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export function createS3Client(config: Config): S3Client {
  return new S3Client({
    region: config.s3.region,
    endpoint: config.s3.endpoint,
    forcePathStyle: config.s3.forcePathStyle,
    credentials: config.s3.credentials,
    maxAttempts: 3,
    requestHandler: new NodeHttpHandler({
      connectionTimeout: 5_000,
      requestTimeout: 60_000,
      httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
      httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 64 }),
    }),
  });
}

export function s3Adapter(config: Config) {
  const address = addressOf(config, 's3');
  const bucket = config.s3.bucket;
  let client: S3Client | undefined;
  const getClient = () => (client ??= createS3Client(config));

  const activities = {
    /** Doctor: put, read back and delete a small object under `_doctor/`. */
    async checkS3(): Promise<SystemCheck> {
      return guarded('S3', address, async () => {
        const s3 = getClient();
        const key = `_doctor/${randomUUID()}.txt`;
        const body = `pinflow doctor ${new Date().toISOString()}`;
        const started = performance.now();
        await s3.send(new PutObjectCommand({ Bucket: bucket, Key: key, Body: body }));
        try {
          const got = await s3.send(new GetObjectCommand({ Bucket: bucket, Key: key }));
          const text = await got.Body?.transformToString();
          if (text !== body) throw new Error(`read back ${JSON.stringify(text)} instead of what was written`);
        } finally {
          await s3.send(new DeleteObjectCommand({ Bucket: bucket, Key: key }));
        }
        const latencyMs = Math.round(performance.now() - started);
        return { system: 's3', address, latencyMs, detail: `put/get/delete in bucket ${bucket}` };
      });
    },
  };

  return {
    activities,
    client: getClient,
    async close() {
      client?.destroy();
      client = undefined;
    },
  };
}
