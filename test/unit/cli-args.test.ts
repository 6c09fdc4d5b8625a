/**
 * The commands' shared command line (cli/args.ts, cli/command.ts), without a server:
 * - the parser: usage line and help from the declaration, strict refusals naming the option
 *   (unknown option, missing value, value given to a switch, unexpected argument), negative
 *   numbers as values;
 * - every command in package.json: `--help` exits 0 printing its usage, an unknown option and
 *   a missing value exit 2 naming the option and printing the usage line (in-process through
 *   the runner, and each command once as a real process);
 * - the commands' own parse functions refuse the same way before reading any value.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { PROJECT_ROOT } from '../../config';
import { defineCommand, HelpRequested, parseCommandLine, usageLine, UsageError, type CommandDecl } from '../../cli/args';
import { commandStatus } from '../../cli/command';
import { COMMAND as chaos } from '../../scripts/chaos';
import { COMMAND as clean, parseCleanArgs } from '../../scripts/clean';
import { COMMAND as codecServer, parseCodecServerArgs } from '../../scripts/codec-server';
import { COMMAND as dbLoad } from '../../scripts/db-load';
import { COMMAND as dbSeed, parseSeedArgs } from '../../scripts/db-seed';
import { COMMAND as demo } from '../../scripts/demo';
import { COMMAND as doctor } from '../../scripts/doctor';
import { COMMAND as emulate, parseEmulateArgs } from '../../scripts/emulate';
import { COMMAND as land, parseLandArgs } from '../../scripts/land';
import { COMMAND as mwaa } from '../../scripts/mwaa';
import { COMMAND as pipeline, parsePipelineArgs } from '../../scripts/pipeline';
import { COMMAND as report } from '../../scripts/report';
import { COMMAND as schedule, parseScheduleArgs } from '../../scripts/schedule';
import { COMMAND as stack } from '../../scripts/stack';
import { COMMAND as stream, parseStreamArgs } from '../../scripts/stream';
import { COMMAND as worker } from '../../workers/main';
import { parseMwaaArgs } from '../../mwaa/cli';
import { parseChaosArgs } from '../chaos/plan';
import { testConfig } from '../helpers/env';

/** Each command: its npm script, the file it runs, its declaration (imported: the files run their command only as the entry point). */
const COMMANDS: Array<{ script: string; file: string; decl: CommandDecl }> = [
  { script: 'stack', file: 'scripts/stack.ts', decl: stack },
  { script: 'worker', file: 'workers/main.ts', decl: worker },
  { script: 'codec-server', file: 'scripts/codec-server.ts', decl: codecServer },
  { script: 'doctor', file: 'scripts/doctor.ts', decl: doctor },
  { script: 'demo', file: 'scripts/demo.ts', decl: demo },
  { script: 'db:load', file: 'scripts/db-load.ts', decl: dbLoad },
  { script: 'db:seed', file: 'scripts/db-seed.ts', decl: dbSeed },
  { script: 'emulate', file: 'scripts/emulate.ts', decl: emulate },
  { script: 'land', file: 'scripts/land.ts', decl: land },
  { script: 'clean', file: 'scripts/clean.ts', decl: clean },
  { script: 'stream', file: 'scripts/stream.ts', decl: stream },
  { script: 'pipeline', file: 'scripts/pipeline.ts', decl: pipeline },
  { script: 'schedule', file: 'scripts/schedule.ts', decl: schedule },
  { script: 'mwaa', file: 'scripts/mwaa.ts', decl: mwaa },
  { script: 'chaos', file: 'scripts/chaos.ts', decl: chaos },
  { script: 'report', file: 'scripts/report.ts', decl: report },
];

const firstValueOption = (decl: CommandDecl) => Object.entries(decl.options).find(([, o]) => o.value)?.[0];

async function status(decl: CommandDecl, argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const code = await commandStatus(decl, argv, async () => assert.fail(`main ran for ${argv.join(' ')}`), { out: (t) => (out += `${t}\n`), err: (t) => (err += `${t}\n`) });
  return { code, out, err };
}

function run(file: string, argv: string[]): Promise<{ code: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['--import', 'tsx', file, ...argv], { cwd: PROJECT_ROOT, env: process.env });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d: Buffer) => (stdout += d));
    child.stderr.on('data', (d: Buffer) => (stderr += d));
    child.on('close', (code) => resolve({ code, stdout, stderr }));
  });
}

/** Runs the jobs with at most `n` at a time. */
async function limited<T>(n: number, jobs: Array<() => Promise<T>>): Promise<T[]> {
  const results: T[] = new Array(jobs.length);
  let next = 0;
  await Promise.all(
    Array.from({ length: n }, async () => {
      while (next < jobs.length) {
        const i = next++;
        results[i] = await jobs[i]!();
      }
    }),
  );
  return results;
}

describe('the command-line parser (cli/args.ts)', () => {
  const sample = defineCommand({
    script: 'demo-cmd',
    args: 'start|stop',
    maxArgs: 1,
    options: {
      rows: { value: 'N', help: 'how many rows' },
      dir: { value: 'DIR', help: 'where', required: true },
      wait: { help: 'wait for it' },
    },
    about: 'A command for the tests.',
  });
  const refusal = (argv: string[]) => {
    try {
      parseCommandLine(sample, argv);
    } catch (err) {
      assert.ok(err instanceof UsageError, `${argv.join(' ')}: ${String(err)}`);
      return err.message;
    }
    return assert.fail(`${argv.join(' ')} was accepted`);
  };

  it('builds the usage line and the help from the declaration', () => {
    assert.equal(usageLine(sample), 'npm run demo-cmd -- start|stop [--rows N] --dir DIR [--wait]');
    assert.throws(
      () => parseCommandLine(sample, ['start', '--help']),
      (err: Error) => {
        assert.ok(err instanceof HelpRequested);
        const lines = err.message.split('\n');
        assert.equal(lines[0], 'usage: npm run demo-cmd -- start|stop [--rows N] --dir DIR [--wait]');
        assert.ok(lines.includes('A command for the tests.'));
        assert.ok(lines.includes('  --rows N    how many rows'), err.message);
        assert.ok(lines.includes('  --wait      wait for it'), err.message);
        assert.ok(lines.includes('  -h, --help  print this help and exit'), err.message);
        assert.equal(lines.at(-1), 'exit status: 0 done, 1 failed, 2 usage or configuration error');
        return true;
      },
    );
    assert.throws(() => parseCommandLine(sample, ['-h']), HelpRequested);
  });

  it('parses values, switches and positionals; the last of a repeated option counts', () => {
    assert.deepEqual(parseCommandLine(sample, ['start', '--rows', '5', '--dir=/x', '--wait', '--rows', '7']), { values: { rows: '7', dir: '/x', wait: true }, positionals: ['start'] });
    assert.deepEqual(parseCommandLine(sample, []), { values: {}, positionals: [] });
  });

  it('takes a negative number as a value, and any value starting with - as --name=value', () => {
    assert.equal(parseCommandLine(sample, ['--rows', '-3']).values.rows, '-3');
    assert.equal(parseCommandLine(sample, ['--rows', '-.5']).values.rows, '-.5');
    assert.equal(parseCommandLine(sample, ['--dir=--odd']).values.dir, '--odd');
  });

  it('refuses what it does not know, naming it', () => {
    assert.equal(refusal(['--nope']), 'unknown option --nope');
    assert.equal(refusal(['-x']), 'unknown option -x');
    assert.equal(refusal(['--rows']), '--rows needs a value');
    assert.equal(refusal(['--rows', '--wait']), '--rows needs a value');
    assert.equal(refusal(['--dir', '--odd']), '--dir needs a value (write --dir=--odd if --odd is the value)');
    assert.equal(refusal(['--wait=yes']), '--wait takes no value');
    assert.equal(refusal(['start', 'stop']), 'unexpected argument "stop"');
    const noArgs = defineCommand({ script: 'plain', options: {}, about: 'x' });
    assert.throws(() => parseCommandLine(noArgs, ['extra']), (err: Error) => err instanceof UsageError && err.message === 'unexpected argument "extra"');
  });
});

describe('every command: --help, unknown options and missing values', () => {
  it('package.json runs each command from its file, and each declares its command line under its own script name', () => {
    const scripts = (JSON.parse(fs.readFileSync(path.join(PROJECT_ROOT, 'package.json'), 'utf8')) as { scripts: Record<string, string> }).scripts;
    for (const { script, file, decl } of COMMANDS) {
      assert.equal(scripts[script], `tsx ${file}`, `npm run ${script}`);
      assert.ok(decl, `${file} exports COMMAND`);
      assert.equal(decl.script, script, `${file} declares npm run ${script}`);
      for (const [name, o] of Object.entries(decl.options)) assert.ok(o.help.trim(), `${script} --${name} has help`);
    }
  });

  it('in process: --help exits 0 with the usage; an unknown option or a missing value exits 2 naming it, with the usage line', async () => {
    for (const { script, decl } of COMMANDS) {
      const usage = `usage: ${usageLine(decl)}`;
      assert.ok(usage.startsWith(`usage: npm run ${script}`), usage);
      const help = await status(decl, ['--help']);
      assert.equal(help.code, 0, `${script} --help`);
      assert.equal(help.out.split('\n')[0], usage);
      assert.equal(help.err, '');

      const unknown = await status(decl, ['--no-such-option']);
      assert.equal(unknown.code, 2, `${script} --no-such-option`);
      assert.equal(unknown.err, `unknown option --no-such-option\n${usage}\n`);

      const option = firstValueOption(decl);
      if (option) {
        const missing = await status(decl, [`--${option}`]);
        assert.equal(missing.code, 2, `${script} --${option}`);
        assert.equal(missing.err, `--${option} needs a value\n${usage}\n`);
      } else if (!decl.args) {
        const extra = await status(decl, ['extra']);
        assert.equal(extra.code, 2, `${script} extra`);
        assert.equal(extra.err, `unexpected argument "extra"\n${usage}\n`);
      }
    }
  });

  it('each file runs its declared command through the shared runner, as the entry point only', () => {
    for (const { file } of COMMANDS) {
      const text = fs.readFileSync(path.join(PROJECT_ROOT, file), 'utf8');
      assert.match(text, /\nif \(require\.main === module\) (\{\n\s*)?run(Cli|Command)\(COMMAND, /, file);
    }
  });

  it('as processes: --help exits 0 with the usage; mistakes exit 2 with the message and the usage line', async () => {
    const checks: Array<{ file: string; argv: string[]; code: number; stdout?: RegExp; stderr?: RegExp }> = [
      { file: 'scripts/land.ts', argv: ['--help'], code: 0, stdout: /^usage: npm run land -- \[--until-now\] .*\n\n[\s\S]*\n {2}--follow {2,}keep landing/ },
      { file: 'scripts/stack.ts', argv: ['--help'], code: 0, stdout: /^usage: npm run stack -- up\|down\|status\|logs \[temporal\|kafka\|mysql\|s3\|kinesis \.\.\.\]\n/ },
      { file: 'scripts/land.ts', argv: ['--until-now', '--nope'], code: 2, stderr: /^unknown option --nope\nusage: npm run land -- \[--until-now\]/ },
      { file: 'scripts/stream.ts', argv: ['start', '--topic'], code: 2, stderr: /^--topic needs a value\nusage: npm run stream -- start\|stop\|status / },
      { file: 'scripts/db-seed.ts', argv: ['--rows'], code: 2, stderr: /^--rows needs a value\nusage: npm run db:seed -- / },
      { file: 'scripts/report.ts', argv: [], code: 2, stderr: /^give DIR, .*\nusage: npm run report -- DIR\n$/ },
      { file: 'workers/main.ts', argv: ['--wait'], code: 2, stderr: /^unknown option --wait\nusage: npm run worker -- \[--version\]\n$/ },
    ];
    const results = await limited(3, checks.map((c) => () => run(c.file, c.argv)));
    checks.forEach((c, i) => {
      const r = results[i]!;
      const what = `${c.file} ${c.argv.join(' ')}: exit ${r.code}\n${r.stdout}${r.stderr}`;
      assert.equal(r.code, c.code, what);
      if (c.stdout) assert.match(r.stdout, c.stdout, what);
      if (c.stderr) assert.match(r.stderr, c.stderr, what);
    });
  });
});

/** `fn` throws a UsageError whose message matches `message`. */
function refuses(fn: () => unknown, message: RegExp): void {
  assert.throws(fn, (err: Error) => {
    assert.ok(err instanceof UsageError, String(err));
    assert.match(err.message, message);
    return true;
  });
}

describe("the commands' own parse functions", () => {
  const config = testConfig();
  const parsers: Array<[string, (argv: string[]) => unknown, string[]]> = [
    ['land', (a) => parseLandArgs(a, config), []],
    ['clean', (a) => parseCleanArgs(a, config), []],
    ['emulate', (a) => parseEmulateArgs(a, config), []],
    ['pipeline', (a) => parsePipelineArgs(a, config), []],
    ['stream', (a) => parseStreamArgs(a, config), ['start']],
    ['schedule', (a) => parseScheduleArgs(a, config), ['create']],
    ['mwaa', (a) => parseMwaaArgs(a, config), ['plan']],
    ['chaos', (a) => parseChaosArgs(a, () => 1), []],
    ['db:seed', (a) => parseSeedArgs(a), []],
    ['codec-server', (a) => parseCodecServerArgs(a), []],
  ];

  it('refuse unknown options and missing values, and throw HelpRequested for --help, before looking at any value', () => {
    for (const [name, parse, lead] of parsers) {
      assert.throws(() => parse([...lead, '--nope']), (err: Error) => err instanceof UsageError && err.message === 'unknown option --nope', name);
      assert.throws(() => parse([...lead, '--prefix']), (err: Error) => err instanceof UsageError && /^(--prefix needs a value|unknown option --prefix)$/.test(err.message), name);
      assert.throws(() => parse([...lead, '--help']), HelpRequested, name);
    }
  });

  it('keep their own checks: values, combinations, commands', () => {
    refuses(() => parseLandArgs(['--follow', '--until-now'], config), /^give --follow or --until-now, not both$/);
    refuses(() => parseEmulateArgs(['--rate', '-5'], config), /rate -5 must be/);
    refuses(() => parseEmulateArgs(['--records', '10', '--duration', '1m'], config), /--records or --duration, not both/);
    refuses(() => parseSeedArgs(['--rows', '-3']), /^--rows must be a whole number 1-50,000,000 \(got -3\)$/);
    refuses(() => parseStreamArgs([], config), /^expected start, stop or status, got ""$/);
    refuses(() => parseStreamArgs(['start', 'stop'], config), /^unexpected argument "stop"$/);
    refuses(() => parseScheduleArgs(['launch'], config), /^expected one of create\|update\|.* got "launch"$/);
    refuses(() => parseMwaaArgs(['migrate'], config), /unknown command migrate/);
    refuses(() => parseCodecServerArgs(['--port', '70000']), /^--port 70000: must be a TCP port$/);
    refuses(() => parseChaosArgs(['--seed', '-1'], () => 1), /^--seed -1 must be a whole number/);
  });

  it('map the options to the inputs', () => {
    const land = parseLandArgs(['--follow', '--flush-size', '500', '--prefix', 'p1', '--accept-gaps', '--wait'], config);
    assert.deepEqual(land, { input: { prefix: 'p1', mode: 'follow', topicsRegex: undefined, flushSize: 500, maxObjectBytes: undefined, topicsDir: undefined, acceptGaps: true }, wait: true });
    const stream = parseStreamArgs(['status', '--topic', 'geo', '--timeout', '5'], config);
    assert.deepEqual({ command: stream.command, topics: stream.topics, timeoutMs: stream.timeoutMs }, { command: 'status', topics: ['geo'], timeoutMs: 5000 });
    const pipeline = parsePipelineArgs(['--date', '2024-05-01', '--out', 'out/x'], config);
    assert.equal(pipeline.wait, true, '--out implies --wait');
    assert.equal(pipeline.out, path.resolve('out/x'));
    assert.deepEqual(parseSeedArgs(['--rows', '10', '--replace']), { rows: 10, seed: 100, replace: true });
    assert.equal(parseScheduleArgs(['update', '--no-legacy-dag'], config).legacyDag, null);
  });
});
