/**
 * kafkajs's filterAbortedMessages (the module batch.js calls for every fetched partition) alone,
 * as patched by patches/kafkajs+2.2.4.patch (applied by patch-package on every install): fed
 * messages and aborted-transaction lists in the order the broker lists them (the order of the
 * aborts, not of the transactions' starts), and fetches that start inside transactions, it
 * keeps exactly the records of committed transactions, the non-transactional ones and the
 * markers, against a model of the log. test/integration/kafka-aborted-transactions.test.ts
 * shows the same against a real broker and through landing.
 */
import assert from 'node:assert/strict';
import { createRequire } from 'node:module';
import { describe, it } from 'node:test';
import { assertKafkajsPatched } from '../../adapters/kafka';

interface FilterMessage {
  offset: string;
  key: Buffer | null;
  value: Buffer | null;
  isControlRecord: boolean;
  batchContext: { producerId: string; inTransaction: boolean };
}
type AbortedTransaction = { producerId: string; firstOffset: string };
const filterAbortedMessages = createRequire(__filename)('kafkajs/src/consumer/filterAbortedMessages') as (args: {
  messages: FilterMessage[];
  abortedTransactions?: AbortedTransaction[];
}) => FilterMessage[];

const ABORT = Buffer.from([0, 0, 0, 0]); // control record key: version 0, type 0 (ABORT)
const COMMIT = Buffer.from([0, 0, 0, 1]); // type 1 (COMMIT)

interface LogEntry extends FilterMessage {
  /** What a read_committed reader must deliver (data records only). */
  visible: boolean;
}

const data = (offset: number, producerId: string, inTransaction: boolean, value: string, visible: boolean): LogEntry => ({
  offset: String(offset),
  key: Buffer.from('k'),
  value: Buffer.from(value),
  isControlRecord: false,
  batchContext: { producerId, inTransaction },
  visible,
});
const marker = (offset: number, producerId: string, type: 'abort' | 'commit'): LogEntry => ({
  offset: String(offset),
  key: type === 'abort' ? ABORT : COMMIT,
  value: Buffer.from([0, 0, 0, 0, 0, 0]),
  isControlRecord: true,
  batchContext: { producerId, inTransaction: true },
  visible: false,
});

/** The data values the filter let through (batch.js drops the control records after it). */
const delivered = (messages: FilterMessage[], aborted: AbortedTransaction[]) =>
  filterAbortedMessages({ messages, abortedTransactions: aborted })
    .filter((m) => !m.isControlRecord)
    .map((m) => m.value!.toString());

/** A deterministic PRNG (mulberry32), so a failing seed can be replayed. */
function prng(seed: number): () => number {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/**
 * A random partition log of interleaved transactions of three producers (plus an idempotent
 * non-transactional one), and the aborted-transaction index the broker keeps for it: one entry
 * per aborted transaction, in the order of the abort markers.
 */
function randomLog(seed: number): { log: LogEntry[]; index: Array<AbortedTransaction & { lastOffset: number }> } {
  const rnd = prng(seed);
  const producers = ['4000', '4001', '4002'];
  const open = new Map<string, { firstOffset: number; fate: 'commit' | 'abort' }>();
  const log: LogEntry[] = [];
  const index: Array<AbortedTransaction & { lastOffset: number }> = [];
  const steps = 10 + Math.floor(rnd() * 40);
  for (let step = 0; step < steps || open.size > 0; step++) {
    const closing = step >= steps;
    if (!closing && rnd() < 0.1) {
      log.push(data(log.length, '9000', false, `plain-${log.length}`, true));
      continue;
    }
    const pid = closing ? [...open.keys()][0]! : producers[Math.floor(rnd() * producers.length)]!;
    const txn = open.get(pid);
    if (!txn) {
      const fate = rnd() < 0.5 ? 'abort' : 'commit';
      open.set(pid, { firstOffset: log.length, fate });
      for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) log.push(data(log.length, pid, true, `${fate}-${pid}-${log.length}`, fate === 'commit'));
    } else if (!closing && rnd() < 0.5) {
      for (let n = 1 + Math.floor(rnd() * 3); n > 0; n--) log.push(data(log.length, pid, true, `${txn.fate}-${pid}-${log.length}`, txn.fate === 'commit'));
    } else {
      if (txn.fate === 'abort') index.push({ producerId: pid, firstOffset: String(txn.firstOffset), lastOffset: log.length });
      log.push(marker(log.length, pid, txn.fate));
      open.delete(pid);
    }
  }
  return { log, index };
}

describe('kafkajs filterAbortedMessages (patched)', () => {
  it('the start-up check accepts the installed (patched) kafkajs; every Kafka client is made through it', () => {
    assert.doesNotThrow(() => assertKafkajsPatched());
  });

  it('a data record whose key looks like an abort marker does not end an aborted transaction', () => {
    const zeroKey = (offset: number): LogEntry => ({ ...data(offset, '100', true, `A-aborted-${offset}`, false), key: Buffer.from(ABORT) });
    const log = [data(0, '100', true, 'A-aborted-0', false), zeroKey(1), data(2, '100', true, 'A-aborted-2', false), marker(3, '100', 'abort'), data(4, '300', false, 'plain-4', true)];
    assert.deepEqual(delivered(log, [{ producerId: '100', firstOffset: '0' }]), ['plain-4']);
  });

  it('drops the records of transactions aborted in the reverse order of their starts', () => {
    // A begins (0-1), B begins (2-3), A sends again (4), B aborts (5), A aborts (6), then committed.
    const log = [
      data(0, '100', true, 'A-aborted-0', false),
      data(1, '100', true, 'A-aborted-1', false),
      data(2, '200', true, 'B-aborted-2', false),
      data(3, '200', true, 'B-aborted-3', false),
      data(4, '100', true, 'A-aborted-4', false),
      marker(5, '200', 'abort'),
      marker(6, '100', 'abort'),
      data(7, '200', true, 'B-committed-7', true),
      marker(8, '200', 'commit'),
      data(9, '100', true, 'A-committed-9', true),
      marker(10, '100', 'commit'),
    ];
    // The broker's order: B's abort was written first.
    const aborted = [
      { producerId: '200', firstOffset: '2' },
      { producerId: '100', firstOffset: '0' },
    ];
    assert.deepEqual(delivered(log, aborted), ['B-committed-7', 'A-committed-9']);
    assert.deepEqual(aborted.map((t) => t.producerId), ['200', '100'], 'the caller list is left as it was');
  });

  it('a fetch that starts inside two aborted transactions drops both producers records from its first record on', () => {
    // A's transaction started at 0, B's at 1; this fetch starts at 5 with a record of B.
    const fetched = [
      data(5, '200', true, 'B-aborted-5', false),
      data(6, '100', true, 'A-aborted-6', false),
      marker(7, '200', 'abort'),
      marker(8, '100', 'abort'),
      data(9, '300', true, 'C-committed-9', true),
      marker(10, '300', 'commit'),
    ];
    const aborted = [
      { producerId: '100', firstOffset: '0' },
      { producerId: '200', firstOffset: '1' },
    ];
    assert.deepEqual(delivered(fetched, aborted), ['C-committed-9']);
  });

  it('a producer whose transaction was aborted has its next (committed) transaction delivered, and its non-transactional records', () => {
    const log = [
      data(0, '100', true, 'A-aborted-0', false),
      marker(1, '100', 'abort'),
      data(2, '100', false, 'A-plain-2', true),
      data(3, '100', true, 'A-committed-3', true),
      marker(4, '100', 'commit'),
    ];
    assert.deepEqual(delivered(log, [{ producerId: '100', firstOffset: '0' }]), ['A-plain-2', 'A-committed-3']);
    assert.deepEqual(delivered(log.slice(2), []), ['A-plain-2', 'A-committed-3'], 'no aborted list: every data record');
  });

  it('matches a model of the log for random interleavings and fetch ranges, the aborted list in broker order', () => {
    let checked = 0;
    for (let seed = 1; seed <= 300; seed++) {
      const { log, index } = randomLog(seed);
      const rnd = prng(seed * 7919);
      // From the log start, and fetches over random ranges (often starting inside transactions).
      const ranges: Array<[number, number]> = [[0, log.length]];
      for (let i = 0; i < 4; i++) {
        const from = Math.floor(rnd() * log.length);
        ranges.push([from, from + 1 + Math.floor(rnd() * (log.length - from))]);
      }
      for (const [from, to] of ranges) {
        const fetched = log.slice(from, to);
        // The broker returns the aborted transactions overlapping the fetched range, in index order.
        const aborted = index.filter((t) => t.lastOffset >= from && Number(t.firstOffset) < to).map(({ producerId, firstOffset }) => ({ producerId, firstOffset }));
        const expected = fetched.filter((m) => m.visible).map((m) => m.value!.toString());
        assert.deepEqual(delivered(fetched, aborted), expected, `seed ${seed}, fetch [${from}, ${to}), aborted ${JSON.stringify(aborted)}`);
        checked++;
      }
    }
    assert.equal(checked, 1500);
  });
});
