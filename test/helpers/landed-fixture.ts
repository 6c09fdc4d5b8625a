/**
 * Landed objects on local disk, in the Confluent S3 sink layout, without Kafka: for the
 * cleaning tests and the cleaning benchmark. Messages are built as the emulator builds them
 * (pipeline-spec.md section 2: column names as keys, DATETIME as ISO-8601 without zone).
 */
import fs from 'node:fs';
import path from 'node:path';
import { objectKey } from '../../common/landing';
import { SOURCE_TABLES, type SourceTable } from '../../common/source-tables';
import { readTableCsv } from '../../scripts/db-load';
import { SAMPLE_DIR } from './env';

export type Topic = SourceTable['topic'];
export type Messages = Record<Topic, Array<Record<string, unknown>>>;

/** A source row (values in column order) as the emulator's message object. */
export function toMessage(table: SourceTable, row: unknown[]): Record<string, unknown> {
  const msg: Record<string, unknown> = {};
  table.columns.forEach((c, i) => {
    const v = row[i];
    msg[c.name] = c.type === 'datetime' && typeof v === 'string' ? v.replace(' ', 'T') : v;
  });
  return msg;
}

/** The real sample's 2,019 rows per table as messages, in file order. */
export async function sampleMessages(dir = SAMPLE_DIR): Promise<Messages> {
  const out = {} as Messages;
  for (const t of SOURCE_TABLES) {
    const rows = await readTableCsv(path.join(dir, `${t.name}.csv`), t);
    out[t.topic] = rows.map((r) => toMessage(t, r));
  }
  return out;
}

/**
 * Writes `lines` (already serialised values, one per record) of one topic as objects of
 * `flushSize` lines each under `<root>/topics/<topic>/partition=<p>/`; offsets count from 0.
 */
export function writeTopicObjects(root: string, topic: string, lines: string[], opts: { flushSize?: number; partition?: number; firstOffset?: number } = {}): string[] {
  const flush = opts.flushSize ?? 10_000;
  const partition = opts.partition ?? 0;
  const written: string[] = [];
  for (let i = 0; i < lines.length; i += flush) {
    const key = objectKey('topics', topic, partition, (opts.firstOffset ?? 0) + i);
    const file = path.join(root, key);
    fs.mkdirSync(path.dirname(file), { recursive: true });
    fs.writeFileSync(file, lines.slice(i, i + flush).join('\n') + '\n');
    written.push(key);
  }
  return written;
}

/** Writes messages for `<prefix>.pin|geo|user` and returns the topic folders. */
export function writeLanded(root: string, prefix: string, messages: Partial<Record<Topic, unknown[]>>, flushSize = 10_000): Record<Topic, string | null> {
  const dirs = { pin: null, geo: null, user: null } as Record<Topic, string | null>;
  for (const t of SOURCE_TABLES) {
    const list = messages[t.topic];
    if (!list || list.length === 0) continue;
    writeTopicObjects(root, `${prefix}.${t.topic}`, list.map((m) => (typeof m === 'string' ? m : JSON.stringify(m))), { flushSize });
    dirs[t.topic] = path.join(root, 'topics', `${prefix}.${t.topic}`);
  }
  return dirs;
}
