/**
 * The local Kinesis: kinesalite (an implementation of the Kinesis API on LevelDB) from
 * node_modules, bound to one address, its streams in a LevelDB folder so a restart keeps them.
 * Started by `npm run stack -- up` (stack/kinesis-server.ts); SIGTERM closes the store cleanly.
 *
 *   node --import tsx stack/kinesalite.ts --host 127.0.0.1 --port 4567 --path .data/kinesis
 */
import type http from 'node:http';
import { createRequire } from 'node:module';
import { parseArgs } from 'node:util';

interface KinesaliteOptions {
  path?: string;
  createStreamMs?: number;
  deleteStreamMs?: number;
  updateStreamMs?: number;
  shardLimit?: number;
}

const { values } = parseArgs({
  options: {
    host: { type: 'string', default: '127.0.0.1' },
    port: { type: 'string', default: '4567' },
    path: { type: 'string' },
    'shard-limit': { type: 'string', default: '100000' },
    'create-stream-ms': { type: 'string', default: '100' },
  },
});

// kinesalite ships no type declarations: it exports a function returning an http.Server.
const kinesalite = createRequire(__filename)('kinesalite') as (opts: KinesaliteOptions) => http.Server;

const server = kinesalite({
  path: values.path,
  // The account-wide shard limit (default 10) would refuse streams after a few test runs.
  shardLimit: Number(values['shard-limit']),
  createStreamMs: Number(values['create-stream-ms']),
  deleteStreamMs: Number(values['create-stream-ms']),
  updateStreamMs: Number(values['create-stream-ms']),
});

server.listen(Number(values.port), values.host, () => {
  console.log(`kinesalite listening on http://${values.host}:${values.port}, data ${values.path ?? '(in memory)'}`);
});

let closing = false;
function shutdown(signal: string) {
  if (closing) return;
  closing = true;
  console.log(`kinesalite: ${signal}, closing`);
  server.closeAllConnections();
  server.close(() => process.exit(0));
  setTimeout(() => process.exit(0), 5_000).unref();
}
process.on('SIGTERM', () => shutdown('SIGTERM'));
process.on('SIGINT', () => shutdown('SIGINT'));
