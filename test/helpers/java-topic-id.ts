/** A topic's id as the Java admin client (the stack's Kafka jars) reports it: 32 hex digits. */
import { execFile } from 'node:child_process';
import path from 'node:path';
import { promisify } from 'node:util';
import { PROJECT_ROOT } from '../../config';

export async function javaTopicId(brokers: string[], topic: string): Promise<string> {
  const libs = path.join(PROJECT_ROOT, '.cache', 'kafka', 'libs', '*');
  const src = path.join(PROJECT_ROOT, 'test', 'fixtures', 'JavaTopicId.java');
  const { stdout } = await promisify(execFile)('java', ['-cp', libs, src, brokers.join(','), topic], { encoding: 'utf8', timeout: 60_000 });
  const line = stdout.split('\n').find((l) => l.startsWith(`${topic} `));
  if (!line) throw new Error(`JavaTopicId printed no id for ${topic}: ${stdout}`);
  return line.split(' ')[1]!;
}
