/**
 * An independent checker for what a topic holds: reads topics read_committed with the Apache
 * Kafka Java client (test/fixtures/JavaConsumer.java, run from the Kafka jars the stack already
 * downloaded), not with kafkajs, so a kafkajs bug cannot hide itself in a test that uses kafkajs
 * both to write and to check. Returns every record read_committed delivers from the log start to
 * the end offsets (last stable offsets) at the time of the call, sorted by topic, partition and
 * offset.
 */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { PROJECT_ROOT } from '../../config';

export interface JavaRecord {
  topic: string;
  partition: number;
  offset: number;
  /** null for a record without a value (a tombstone). */
  value: Buffer | null;
}

const KAFKA_LIBS = path.join(PROJECT_ROOT, '.cache', 'kafka', 'libs');
const PROGRAM = path.join(PROJECT_ROOT, 'test', 'fixtures', 'JavaConsumer.java');

export function javaConsume(brokers: string[], topics: string[], opts: { timeoutMs?: number } = {}): Promise<JavaRecord[]> {
  const timeoutMs = opts.timeoutMs ?? 60_000;
  const args = ['-cp', `${KAFKA_LIBS}/*`, PROGRAM, brokers.join(','), String(timeoutMs), ...topics];
  return new Promise((resolve, reject) => {
    // The program's own deadline plus time to compile the source and start the JVM.
    execFile('java', args, { encoding: 'utf8', maxBuffer: 1024 * 1024 * 1024, timeout: timeoutMs + 60_000 }, (err, stdout, stderr) => {
      if (err) {
        reject(new Error(`JavaConsumer ${topics.join(' ')} failed (${err.code ?? err.signal ?? err.message}): ${stderr.trim()}`));
        return;
      }
      const records: JavaRecord[] = [];
      for (const line of stdout.split('\n')) {
        if (line === '') continue;
        const [topic, partition, offset, value] = line.split('\t');
        if (topic === undefined || partition === undefined || offset === undefined || value === undefined) {
          reject(new Error(`JavaConsumer: unexpected output line ${JSON.stringify(line)}`));
          return;
        }
        records.push({ topic, partition: Number(partition), offset: Number(offset), value: value === '-' ? null : Buffer.from(value, 'base64') });
      }
      records.sort((a, b) => (a.topic < b.topic ? -1 : a.topic > b.topic ? 1 : a.partition - b.partition || a.offset - b.offset));
      resolve(records);
    });
  });
}
