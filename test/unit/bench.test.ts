/**
 * The benchmarks' command lines and result files, without a server (no benchmark runs here):
 * - each `npm run bench:<name>` runs bench/<name>.ts, which declares its command line under
 *   that script name: `--help` exits 0 with the usage, an unknown option exits 2 with the
 *   usage line, before the benchmark starts;
 * - numeric options: defaults, ranges, and refusals naming the option;
 * - bench/results.ts: the record's machine fields and flat figures, the figures each benchmark
 *   must write, non-finite figures written as null (and said so), the file written whole under
 *   bench/results-like dirs with no temporary file left, and the machine line.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PROJECT_ROOT } from '../../config';
import { usageLine, UsageError, type CommandDecl } from '../../cli/args';
import { commandStatus } from '../../cli/command';
import { COMMAND as cleaning } from '../../bench/cleaning';
import { COMMAND as incremental } from '../../bench/incremental';
import { COMMAND as emulation } from '../../bench/emulation';
import { COMMAND as landing } from '../../bench/landing';
import { wholeListOption, wholeOption } from '../../bench/options';
import { COMMAND as pipeline } from '../../bench/pipeline';
import { benchRecord, REQUIRED_FIGURES, writeResults } from '../../bench/results';
import { COMMAND as streaming } from '../../bench/streaming';

const BENCHES: Array<[string, CommandDecl]> = [
  ['emulation', emulation],
  ['landing', landing],
  ['cleaning', cleaning],
  ['incremental', incremental],
  ['streaming', streaming],
  ['pipeline', pipeline],
];

async function status(decl: CommandDecl, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await commandStatus(decl, argv, () => Promise.reject(new Error('the benchmark must not start')), { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
  return { code, out, err };
}

describe('benchmark commands', () => {
  it('npm run bench:<name> runs bench/<name>.ts, which declares that script and runs it through the shared runner', () => {
    const scripts = (JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const [name, decl] of BENCHES) {
      assert.equal(scripts[`bench:${name}`], `tsx bench/${name}.ts`);
      assert.equal(decl.script, `bench:${name}`);
      const text = fs.readFileSync(path.join(PROJECT_ROOT, 'bench', `${name}.ts`), 'utf8');
      assert.match(text, /\nif \(require\.main === module\) run(Cli|Command)\(COMMAND, /, name);
      assert.doesNotMatch(text, /process\.argv/, `${name} reads its options from the declaration only`);
    }
  });

  it('--help exits 0 with the usage; an unknown option exits 2 with the usage line; neither starts the benchmark', async () => {
    for (const [name, decl] of BENCHES) {
      const usage = `usage: ${usageLine(decl)}`;
      const help = await status(decl, ['--help']);
      assert.equal(help.code, 0, name);
      assert.equal(help.out.split('\n')[0], usage);
      const unknown = await status(decl, ['--no-such-option']);
      assert.equal(unknown.code, 2, name);
      assert.equal(unknown.err, `unknown option --no-such-option\n${usage}\n`);
    }
  });

  it('keeps the option names', () => {
    assert.equal(usageLine(emulation), 'npm run bench:emulation -- [--posts N] [--rows N] [--batch-size N] [--concurrency N]');
    assert.equal(usageLine(landing), 'npm run bench:landing -- [--records N] [--flush-size N]');
    assert.equal(usageLine(cleaning), 'npm run bench:cleaning -- [--posts N] [--skip-spark] [--skip-s3]');
    assert.equal(usageLine(incremental), 'npm run bench:incremental -- [--posts N] [--dates N] [--new-posts N] [--updated N]');
    assert.equal(usageLine(streaming), 'npm run bench:streaming -- [--rate N] [--duration S] [--ramp R1,R2,...] [--step S] [--poll-ms MS]');
    assert.equal(usageLine(pipeline), 'npm run bench:pipeline -- [--runs N] [--latency-only]');
  });
});

describe('numeric options', () => {
  it('a missing option takes the default; a whole number in range is taken', () => {
    assert.equal(wholeOption({}, 'posts', 100_000, 1, 10), 100_000);
    assert.equal(wholeOption({ posts: '2000' }, 'posts', 1, 1, 10_000), 2000);
    assert.deepEqual(wholeListOption({}, 'ramp', [1, 2], 1, 10), [1, 2]);
    assert.deepEqual(wholeListOption({ ramp: '5,7, 9' }, 'ramp', [1], 1, 10), [5, 7, 9]);
  });

  it('anything else is a UsageError naming the option, the value and the range', () => {
    const refused = (fn: () => unknown, message: string) => assert.throws(fn, (e: Error) => e instanceof UsageError && e.message === message);
    refused(() => wholeOption({ posts: '12x' }, 'posts', 1, 1, 10), '--posts 12x must be a whole number from 1 to 10');
    refused(() => wholeOption({ posts: '1.5' }, 'posts', 1, 1, 10), '--posts 1.5 must be a whole number from 1 to 10');
    refused(() => wholeOption({ posts: '0' }, 'posts', 1, 1, 10), '--posts 0 must be a whole number from 1 to 10');
    refused(() => wholeOption({ posts: '11' }, 'posts', 1, 1, 10), '--posts 11 must be a whole number from 1 to 10');
    refused(() => wholeOption({ posts: '' }, 'posts', 1, 1, 10), '--posts  must be a whole number from 1 to 10');
    refused(() => wholeListOption({ ramp: '5,,7' }, 'ramp', [1], 1, 10), '--ramp 5,,7 must be whole numbers from 1 to 10, separated by commas');
    refused(() => wholeListOption({ ramp: '5,70' }, 'ramp', [1], 1, 10), '--ramp 5,70 must be whole numbers from 1 to 10, separated by commas');
  });
});

describe('bench/results.ts', () => {
  it('the record: name, time, machine, params, the figures flat, the baseline', () => {
    const at = new Date('2025-01-02T03:04:05.000Z');
    const { record, replaced } = benchRecord('incremental', { params: { posts: 2000 }, figures: { incremental_s: 1.5, speedup: 4, extra: 'x' }, baseline: { full_s: [6, 6.2] } }, at);
    assert.deepEqual(replaced, []);
    assert.equal(record.name, 'incremental');
    assert.equal(record.at, '2025-01-02T03:04:05.000Z');
    assert.equal(record.cores, os.availableParallelism());
    assert.equal(record.node, process.version);
    assert.equal(typeof record.load_1m, 'number');
    assert.deepEqual(record.params, { posts: 2000 });
    assert.equal(record.incremental_s, 1.5);
    assert.equal(record.speedup, 4);
    assert.equal(record.extra, 'x');
    assert.deepEqual(record.baseline, { full_s: [6, 6.2] });
  });

  it('requires the issue\'s figures of each benchmark', () => {
    assert.deepEqual(REQUIRED_FIGURES.emulation, ['ratio_plain', 'ratio_transactional']);
    assert.deepEqual(REQUIRED_FIGURES.landing, ['ratio', 'worker_peak_rss_mb']);
    assert.deepEqual(REQUIRED_FIGURES.cleaning, ['duckdb_s', 'spark_ratio']);
    assert.deepEqual(REQUIRED_FIGURES.incremental, ['incremental_s', 'speedup']);
    // A caller that bypasses the types still gets a clear error.
    assert.throws(() => benchRecord('emulation', { params: {}, figures: { ratio_plain: 1 } as never }), /bench emulation: figures missing: ratio_transactional/);
    assert.throws(() => benchRecord('landing', { params: {}, figures: { ratio: 1, worker_peak_rss_mb: 2, cores: 9 } }), /reserved for the record: cores/);
  });

  it('NaN and infinities are written as null, and named', () => {
    const { record, replaced } = benchRecord('cleaning', { params: { posts: NaN }, figures: { duckdb_s: Infinity, spark_ratio: null }, baseline: { runs: [1, NaN] } });
    assert.equal(record.duckdb_s, null);
    assert.equal(record.spark_ratio, null);
    assert.deepEqual(record.params, { posts: null });
    assert.deepEqual(record.baseline, { runs: [1, null] });
    assert.deepEqual(replaced, ['params.posts', 'duckdb_s', 'baseline.runs[1]']);
  });

  it('writes <dir>/<name>.json whole (no temporary file left) and prints the machine line', () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'pinflow-bench-results-'));
    try {
      const lines: string[] = [];
      const file = writeResults('landing', { params: { records: 3 }, figures: { ratio: 0.5, worker_peak_rss_mb: NaN } }, (l) => lines.push(l), path.join(dir, 'results'));
      assert.equal(file, path.join(dir, 'results', 'landing.json'));
      assert.deepEqual(fs.readdirSync(path.join(dir, 'results')), ['landing.json']);
      const written = JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>;
      assert.equal(written.ratio, 0.5);
      assert.equal(written.worker_peak_rss_mb, null);
      assert.equal(written.cores, os.availableParallelism());
      assert.deepEqual(lines[0], '  not finite, written as null: worker_peak_rss_mb');
      assert.match(lines[1]!, new RegExp(`^machine: ${os.availableParallelism()} cores, load \\d+\\.\\d\\d, node ${process.version.replace(/\./g, '\\.')}; figures in .*landing\\.json$`));
      // A second run replaces the file.
      writeResults('landing', { params: { records: 6 }, figures: { ratio: 0.7, worker_peak_rss_mb: 100 } }, () => {}, path.join(dir, 'results'));
      assert.equal((JSON.parse(fs.readFileSync(file, 'utf8')) as Record<string, unknown>).ratio, 0.7);
      assert.deepEqual(fs.readdirSync(path.join(dir, 'results')), ['landing.json']);
    } finally {
      fs.rmSync(dir, { recursive: true, force: true });
    }
  });
});
