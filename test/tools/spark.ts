/**
 * Local Apache Spark (PySpark from PyPI, local mode) as a SQL runner for tests and benchmarks.
 *
 * `ensureSpark()` installs a pinned pyspark into its own venv under `.cache/spark/venv`
 * (pip's cache under `.cache/pip`, so a rebuilt venv reuses the downloaded and built wheel)
 * and returns at once, without calling pip, when the marker file of that version is there.
 *
 * `runSparkSql()` runs `test/tools/spark/run_sql.py` with that venv's python: one SparkSession
 * (local[2], no UI, UTC session time zone, 4 shuffle partitions, everything bound to
 * 127.0.0.1, in-memory catalog, scratch dirs in a temp dir of its own) executes the statements
 * in order; a statement with `collect` writes its rows to `<outDir>/<collect>.json`, and one
 * without is still computed in full (a query goes to Spark's `noop` sink). Statements reach
 * python in a JSON file, never on the command line.
 *
 * The JSON rows: column names as Spark names them (duplicates are an error); TIMESTAMP and
 * TIMESTAMP_NTZ as `2020-08-28T03:52:47`, with `.5` / `.123456` only when the fraction is not
 * zero (TIMESTAMP in the session time zone); DATE `YYYY-MM-DD`; integers and DECIMAL as JSON
 * numbers (DECIMAL with its exact digits, `1.50`); DOUBLE/FLOAT NaN and infinities as the
 * strings "NaN", "Infinity", "-Infinity"; arrays as arrays; structs and maps as objects (a
 * map with a duplicate key, which from_json can produce, keeps the LAST value here, while
 * Spark's `m['k']` returns the first); BINARY as base64; DAY-TIME intervals as seconds.
 *
 * Start-up: the JVM's class-data sharing archive (see cdsArchive) roughly halves it after the
 * first run. Spark's own logging is WARN and above (its log4j2 config is written by
 * run_sql.py), to `log` only.
 *
 * Why pyspark 4.0.x: Spark 4 defaults to ANSI SQL mode (`spark.sql.ansi.enabled=true`), as
 * Databricks SQL warehouses do, and runs on Java 17; 4.0.5 is the newest 4.0.x on PyPI.
 * (PyPI here also offers 4.1-4.3; this runner stays on the 4.0 line.)
 */
import { spawn, spawnSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CACHE_DIR, LOG_DIR, isAlive, say, which } from '../../stack/proc';

export const PYSPARK_VERSION = '4.0.5';
/** pyspark 4.0.x pins this exact py4j; named here so the install is fully pinned. */
export const PY4J_VERSION = '0.10.9.9';

export const SPARK_DIR = path.join(CACHE_DIR, 'spark');
export const SPARK_VENV = path.join(SPARK_DIR, 'venv');
export const PIP_CACHE_DIR = path.join(CACHE_DIR, 'pip');
const TMP_ROOT = path.join(CACHE_DIR, 'tmp');
const RUN_SQL_PY = path.join(__dirname, 'spark', 'run_sql.py');
const venvPython = () => path.join(SPARK_VENV, 'bin', 'python');
const markerFile = () => path.join(SPARK_VENV, `.pinflow-pyspark-${PYSPARK_VERSION}`);

export type Log = (line: string) => void;
const defaultLog: Log = (line) => say(`spark: ${line}`);

export interface SparkStatement {
  sql: string;
  /** Writes the statement's rows to `<outDir>/<collect>.json` (a plain file name, no extension). */
  collect?: string;
  /** Name in `timings`; defaults to `collect`, else `#<index>`. */
  name?: string;
}

export interface SparkRunOptions {
  outDir: string;
  /** Extra Spark settings; they win over the defaults below (e.g. `spark.driver.memory`). */
  conf?: Record<string, string>;
  /** Receives Spark's own stderr lines (WARN and above) and the runner's progress lines. */
  log?: Log;
  /** JVM class-data sharing archive for a faster start-up (see cdsArchive); default true. */
  classDataSharing?: boolean;
}

export interface SparkRunResult {
  /** Wall time of each statement (including writing its JSON), in order. */
  timings: { name: string; ms: number }[];
  /** From spawning python until the process tree has exited. */
  totalMs: number;
  /** From spawning python until the SparkSession (and its JVM) answers. */
  startupMs: number;
  /**
   * Peak resident memory of the whole process tree (python driver + the JVM py4j starts):
   * the sum over every process of the tree of its VmHWM (kernel-kept peak RSS) in
   * /proc/<pid>/status. The tree is walked every 200 ms from here (a process's last seen
   * VmHWM counts), and run_sql.py reads it once more just before stopping Spark, when the
   * JVM has done all its work; the larger figure is reported. It is an upper bound of the
   * simultaneous peak, as the processes may peak at different moments.
   */
  peakRssBytes: number;
}

/**
 * A failed statement. `statementIndex` is 0-based (-1: Spark itself did not start),
 * `errorClass` is Spark's error condition (e.g. `TABLE_OR_VIEW_NOT_FOUND`), and `result`
 * has the timings of the statements before it (their JSON files are written).
 */
export class SparkSqlError extends Error {
  constructor(
    message: string,
    readonly statementIndex: number,
    readonly errorClass: string | undefined,
    readonly sqlState: string | undefined,
    readonly result: SparkRunResult,
  ) {
    super(message);
    this.name = 'SparkSqlError';
  }
}

// ---------------------------------------------------------------------------------------
// Install

/** JAVA_HOME when set and valid, else the one of `java` on PATH (symlinks resolved). */
export function javaHome(): string {
  const fromEnv = process.env.JAVA_HOME;
  if (fromEnv && fs.existsSync(path.join(fromEnv, 'bin', 'java'))) return fromEnv;
  const java = which('java');
  if (!java) throw new Error('Spark needs a Java 17+ runtime (java) on PATH: apt-get install openjdk-17-jre-headless');
  return path.dirname(path.dirname(fs.realpathSync(java)));
}

/** `java -version` output of each JAVA_HOME checked (Java 17+), once per process. */
const javaChecked = new Map<string, string>();
function checkJava(home: string): string {
  const known = javaChecked.get(home);
  if (known !== undefined) return known;
  const res = spawnSync(path.join(home, 'bin', 'java'), ['-version'], { encoding: 'utf8' });
  const text = `${res.stderr ?? ''}${res.stdout ?? ''}`;
  const m = /version "(\d+)(?:\.(\d+))?/.exec(text);
  const major = m ? (m[1] === '1' ? Number(m[2]) : Number(m[1])) : NaN;
  if (!(major >= 17)) throw new Error(`Spark ${PYSPARK_VERSION} needs Java 17 or newer; ${home}/bin/java is ${m ? m[0] : 'unknown'}`);
  javaChecked.set(home, text);
  return text;
}

/**
 * JVM class-data sharing for the Spark driver: the first run dumps the classes it loaded
 * (about 140 MB) to an archive under .cache/spark (-XX:ArchiveClassesAtExit, at JVM exit),
 * later runs map it (-XX:SharedArchiveFile). Measured here on 2 busy cores: session + first
 * query 6-12 s instead of 12-18 s. The archive is keyed by pyspark version and the exact
 * JVM, whose classpath it must match; a JVM that rejects it just starts without it.
 */
function cdsArchive(home: string): { archive: string; flag: string; dumping?: { tmp: string; final: string } } {
  // The install marker's mtime stands for the jars' (a rebuilt venv has new jar mtimes,
  // which make the JVM reject an archive made from the old ones).
  const installed = fs.statSync(markerFile()).mtimeMs;
  const id = createHash('sha256').update(`${fs.realpathSync(home)}\n${checkJava(home)}\n${installed}`).digest('hex').slice(0, 12);
  const archive = path.join(SPARK_DIR, `cds-pyspark-${PYSPARK_VERSION}-${id}.jsa`);
  if (fs.existsSync(archive)) return { archive, flag: `-XX:SharedArchiveFile=${archive}` };
  // Drop archives of other versions or JVMs, and dumps of runs that died.
  for (const name of fs.readdirSync(SPARK_DIR)) {
    const m = /^cds-.*\.jsa(?:\.(\d+)\.\d+\.tmp)?$/.exec(name);
    if (m && (m[1] === undefined || !isAlive(Number(m[1])))) fs.rmSync(path.join(SPARK_DIR, name), { force: true });
  }
  const tmp = `${archive}.${process.pid}.${Date.now()}.tmp`;
  return { archive, flag: `-XX:ArchiveClassesAtExit=${tmp}`, dumping: { tmp, final: archive } };
}

function dirBytes(dir: string): number {
  let total = 0;
  let entries: fs.Dirent[];
  try {
    entries = fs.readdirSync(dir, { withFileTypes: true });
  } catch {
    return 0;
  }
  for (const e of entries) {
    const p = path.join(dir, e.name);
    if (e.isDirectory()) total += dirBytes(p);
    else if (e.isFile()) {
      try {
        total += fs.statSync(p).size;
      } catch {
        /* removed meanwhile */
      }
    }
  }
  return total;
}

const mb = (n: number) => `${(n / 1e6).toFixed(0)} MB`;

/**
 * Runs pip (or any step) with its output in a log file, and every 10 s a line with the
 * elapsed time, pip's current phase from its log, and how much it has downloaded so far
 * (the size of its private temp dir, where pip streams the archive before unpacking it).
 */
export async function runLogged(cmd: string, args: string[], label: string, log: Log, tmpDir: string): Promise<void> {
  fs.mkdirSync(LOG_DIR, { recursive: true });
  fs.mkdirSync(tmpDir, { recursive: true });
  const logPath = path.join(LOG_DIR, `install-${label.replace(/[^a-z0-9]+/gi, '-')}.log`);
  const fd = fs.openSync(logPath, 'w');
  const started = Date.now();
  log(`${label} ... (log ${path.relative(process.cwd(), logPath)})`);
  const child = spawn(cmd, args, {
    env: { ...process.env, TMPDIR: tmpDir, PIP_NO_INPUT: '1', PIP_DISABLE_PIP_VERSION_CHECK: '1', PYTHONUNBUFFERED: '1' },
    stdio: ['ignore', fd, fd],
  });
  const timer = setInterval(() => {
    let phase = '';
    try {
      const lines = fs.readFileSync(logPath, 'utf8').trim().split('\n');
      const size = lines.map((l) => /Downloading pyspark-\S+ \(([\d.]+ [kMG]B)\)/.exec(l)).filter(Boolean).pop();
      phase = (lines.pop() ?? '').trim().slice(0, 80);
      if (size) phase = `${phase} [archive ${size[1]}]`;
    } catch {
      /* no log yet */
    }
    log(`  ${label}: ${((Date.now() - started) / 1000).toFixed(0)} s, ${mb(dirBytes(tmpDir))} in pip's temp dir; ${phase}`);
  }, 10_000);
  const code = await new Promise<number | null>((resolve, reject) => {
    child.on('error', reject);
    child.on('exit', resolve);
  }).finally(() => {
    clearInterval(timer);
    fs.closeSync(fd);
  });
  if (code !== 0) {
    const tail = fs.readFileSync(logPath, 'utf8').trim().split('\n').slice(-25).join('\n');
    throw new Error(`${label} failed (exit ${code}); log ${logPath}:\n${tail}`);
  }
  log(`${label}: done in ${((Date.now() - started) / 1000).toFixed(0)} s`);
}

/** A cross-process install lock (a directory with the holder's pid), taken over when stale. */
export async function withInstallLock<T>(fn: () => Promise<T>): Promise<T> {
  const lock = path.join(SPARK_DIR, '.install.lock');
  fs.mkdirSync(SPARK_DIR, { recursive: true });
  for (;;) {
    try {
      fs.mkdirSync(lock);
      fs.writeFileSync(path.join(lock, 'pid'), String(process.pid));
      break;
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
      let holder: number | undefined;
      try {
        holder = Number(fs.readFileSync(path.join(lock, 'pid'), 'utf8'));
      } catch {
        /* being created or removed */
      }
      if (holder !== undefined && !isAlive(holder)) fs.rmSync(lock, { recursive: true, force: true });
      else await sleep(500);
    }
  }
  try {
    return await fn();
  } finally {
    fs.rmSync(lock, { recursive: true, force: true });
  }
}

/**
 * Installs pyspark (pinned) into `.cache/spark/venv` unless that version is there already,
 * and checks Java. Returns the venv's python and the pyspark version.
 */
export async function ensureSpark(log: Log = defaultLog): Promise<{ python: string; version: string }> {
  checkJava(javaHome());
  const done = () => fs.existsSync(markerFile()) && fs.existsSync(venvPython());
  if (done()) return { python: venvPython(), version: PYSPARK_VERSION };
  return withInstallLock(async () => {
    if (done()) return { python: venvPython(), version: PYSPARK_VERSION };
    const started = Date.now();
    // A venv with another (or a half-installed) pyspark is rebuilt from scratch: cheap, since
    // pip's cache keeps the wheel, and it leaves nothing of an older version behind.
    fs.rmSync(SPARK_VENV, { recursive: true, force: true });
    const python3 = which('python3');
    if (!python3) throw new Error('Spark needs python3 (3.9+) on PATH');
    const tmpDir = path.join(TMP_ROOT, `spark-install-${process.pid}`);
    try {
      await runLogged(python3, ['-m', 'venv', SPARK_VENV], 'spark venv', log, tmpDir);
      await runLogged(
        venvPython(),
        ['-m', 'pip', 'install', '--cache-dir', PIP_CACHE_DIR, '--progress-bar', 'off', `pyspark==${PYSPARK_VERSION}`, `py4j==${PY4J_VERSION}`],
        `pip install pyspark ${PYSPARK_VERSION}`,
        log,
        tmpDir,
      );
    } finally {
      fs.rmSync(tmpDir, { recursive: true, force: true });
    }
    const check = spawnSync(venvPython(), ['-c', 'import pyspark; print(pyspark.__version__)'], { encoding: 'utf8' });
    const got = check.stdout?.trim();
    if (check.status !== 0 || got !== PYSPARK_VERSION) {
      throw new Error(`pyspark installed but "import pyspark" gives ${got || check.stderr?.trim()} instead of ${PYSPARK_VERSION}`);
    }
    fs.writeFileSync(markerFile(), `${new Date().toISOString()}\n`);
    log(`pyspark ${PYSPARK_VERSION} ready in ${((Date.now() - started) / 1000).toFixed(0)} s (${SPARK_VENV})`);
    return { python: venvPython(), version: PYSPARK_VERSION };
  });
}

// ---------------------------------------------------------------------------------------
// Run

const SAFE_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

/** Settings every run gets; `opts.conf` overrides any of them. */
export function defaultSparkConf(scratch: string): Record<string, string> {
  return {
    'spark.master': 'local[2]',
    'spark.app.name': 'pinflow-spark-sql',
    // The 24 GiB machine also runs Kafka, Temporal, MariaDB, DuckDB and the worker: 4 GiB
    // of heap for the driver (which is also the executor in local mode) leaves them room.
    'spark.driver.memory': '4g',
    'spark.ui.enabled': 'false',
    'spark.ui.showConsoleProgress': 'false',
    'spark.sql.session.timeZone': 'UTC',
    'spark.sql.shuffle.partitions': '4',
    'spark.default.parallelism': '2',
    // Nothing leaves the machine: bind and advertise loopback only, no Hive metastore, no
    // event log, no jar resolution (only spark-delta.ts's one-off install sets
    // spark.jars.packages; its runs name the cached jars in spark.jars).
    'spark.driver.host': '127.0.0.1',
    'spark.driver.bindAddress': '127.0.0.1',
    'spark.sql.catalogImplementation': 'in-memory',
    'spark.eventLog.enabled': 'false',
    // Scratch files (shuffle, spills) go to java.io.tmpdir, which run_sql.py points here.
    'spark.sql.warehouse.dir': path.join(scratch, 'warehouse'),
  };
}

function readStatus(pid: number): { ppid: number; hwm: number } | undefined {
  try {
    const s = fs.readFileSync(`/proc/${pid}/status`, 'utf8');
    const ppid = Number(/^PPid:\s+(\d+)/m.exec(s)?.[1] ?? 0);
    const hwm = Number(/^VmHWM:\s+(\d+) kB/m.exec(s)?.[1] ?? 0) * 1024;
    return { ppid, hwm };
  } catch {
    return undefined;
  }
}

/** Every process below `root` (and root), with its VmHWM now. */
function treeHwm(root: number): Map<number, number> {
  const byParent = new Map<number, number[]>();
  const hwm = new Map<number, number>();
  for (const name of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(name)) continue;
    const st = readStatus(Number(name));
    if (!st) continue;
    hwm.set(Number(name), st.hwm);
    const list = byParent.get(st.ppid) ?? [];
    list.push(Number(name));
    byParent.set(st.ppid, list);
  }
  const out = new Map<number, number>();
  const stack = [root];
  while (stack.length) {
    const pid = stack.pop()!;
    if (!hwm.has(pid) || out.has(pid)) continue;
    out.set(pid, hwm.get(pid)!);
    stack.push(...(byParent.get(pid) ?? []));
  }
  return out;
}

/** Lines the JVM prints whatever the log level; kept out of `log`. */
const JVM_NOISE = /^WARNING: Using incubator modules: jdk\.incubator\.vector$|\[cds[,\]]/;
const CDS_REJECTED = /\[cds[,\]].*Unable to use shared archive/;

interface RunEvent {
  event: 'ready' | 'statement' | 'error' | 'memory';
  index?: number;
  ms?: number;
  epochMs?: number;
  errorClass?: string | null;
  sqlState?: string | null;
  message?: string;
  peakRssBytes?: number;
}

interface ProcOutcome {
  code: number | null;
  signal: NodeJS.Signals | null;
  spawnedAt: number;
  totalMs: number;
  /** The last 60 non-empty output lines (stdout and stderr). */
  tail: string[];
  /** Sum over the process tree of each process's largest VmHWM seen (sampled every 200 ms). */
  peakHwmSum: number;
}

/** Runs `cmd` until it and everything holding its output pipes has exited, sampling memory. */
async function runTree(cmd: string, args: string[], env: NodeJS.ProcessEnv, cwd: string, log: Log, watch: (line: string) => void): Promise<ProcOutcome> {
  const spawnedAt = Date.now();
  const child = spawn(cmd, args, { env, cwd, stdio: ['ignore', 'pipe', 'pipe'] });
  const tail: string[] = [];
  const onLine = (line: string) => {
    if (!line.trim()) return;
    tail.push(line);
    if (tail.length > 60) tail.shift();
    watch(line);
    if (!JVM_NOISE.test(line)) log(line);
  };
  for (const stream of [child.stdout, child.stderr]) {
    let buf = '';
    stream.setEncoding('utf8');
    stream.on('data', (d: string) => {
      buf += d;
      const lines = buf.split('\n');
      buf = lines.pop()!;
      lines.forEach(onLine);
    });
    stream.on('end', () => onLine(buf));
  }
  const seen = new Map<number, number>();
  const sampler = setInterval(() => {
    if (child.pid === undefined) return;
    try {
      for (const [pid, hwm] of treeHwm(child.pid)) seen.set(pid, Math.max(hwm, seen.get(pid) ?? 0));
    } catch {
      /* /proc unreadable: the python side still reports */
    }
  }, 200);
  try {
    // 'close', not 'exit': the JVM holds python's output pipes until it has exited too.
    const [code, signal] = await new Promise<[number | null, NodeJS.Signals | null]>((resolve, reject) => {
      child.on('error', reject);
      child.on('close', (c, s) => resolve([c, s]));
    });
    const peakHwmSum = [...seen.values()].reduce((a, b) => a + b, 0);
    return { code, signal, spawnedAt, totalMs: Date.now() - spawnedAt, tail, peakHwmSum };
  } finally {
    clearInterval(sampler);
  }
}

/**
 * Runs the statements in order in one local SparkSession. Throws `SparkSqlError` naming the
 * (0-based) index of the statement that failed and Spark's error class and message.
 */
export async function runSparkSql(statements: SparkStatement[], opts: SparkRunOptions): Promise<SparkRunResult> {
  const { python } = await ensureSpark(opts.log);
  const names = statements.map((s, i) => s.name ?? s.collect ?? `#${i}`);
  const collects = new Set<string>();
  for (const [i, s] of statements.entries()) {
    if (s.collect === undefined) continue;
    if (!SAFE_NAME.test(s.collect)) throw new Error(`statement ${i}: collect name "${s.collect}" must be a plain file name ([A-Za-z0-9._-])`);
    if (collects.has(s.collect)) throw new Error(`statement ${i}: collect name "${s.collect}" is used twice`);
    collects.add(s.collect);
  }
  const outDir = path.resolve(opts.outDir);
  fs.mkdirSync(outDir, { recursive: true });
  fs.mkdirSync(TMP_ROOT, { recursive: true });
  const scratch = fs.mkdtempSync(path.join(TMP_ROOT, 'spark-run-'));
  const conf = { ...defaultSparkConf(scratch), ...opts.conf };
  const home = javaHome();
  const cds = opts.classDataSharing === false ? undefined : cdsArchive(home);
  if (cds) conf['spark.driver.extraJavaOptions'] = `${cds.flag} ${conf['spark.driver.extraJavaOptions'] ?? ''}`.trim();
  const jobFile = path.join(scratch, 'job.json');
  const eventsFile = path.join(scratch, 'events.jsonl');
  fs.writeFileSync(jobFile, JSON.stringify({ statements: statements.map((s) => ({ sql: s.sql, collect: s.collect ?? null })), outDir, conf, scratch, eventsFile }));

  const log = opts.log ?? (() => undefined);
  const tz = conf['spark.sql.session.timeZone'] ?? 'UTC';
  const env: NodeJS.ProcessEnv = {
    ...process.env,
    JAVA_HOME: home,
    PYSPARK_PYTHON: python,
    PYSPARK_DRIVER_PYTHON: python,
    SPARK_LOCAL_IP: '127.0.0.1',
    SPARK_LOCAL_HOSTNAME: 'localhost',
    // PySpark turns TIMESTAMP values into Python datetimes in the process's time zone: make
    // it the session's, so collected values read as Spark shows them.
    TZ: tz,
    PYTHONUNBUFFERED: '1',
    PYTHONDONTWRITEBYTECODE: '1',
    TMPDIR: scratch,
  };
  // A SPARK_HOME or submit args of another installation would take precedence over the venv's.
  for (const k of ['SPARK_HOME', 'PYSPARK_SUBMIT_ARGS', 'SPARK_CONF_DIR', 'HADOOP_CONF_DIR', 'YARN_CONF_DIR']) delete env[k];

  let proc: ProcOutcome | undefined;
  let cdsRejected = false;
  let events: RunEvent[] = [];
  try {
    proc = await runTree(python, [RUN_SQL_PY, jobFile], env, scratch, log, (line) => {
      if (CDS_REJECTED.test(line)) cdsRejected = true;
    });
    try {
      events = fs
        .readFileSync(eventsFile, 'utf8')
        .split('\n')
        .filter((l) => l.trim())
        .map((l) => JSON.parse(l) as RunEvent);
    } catch {
      /* python died before writing any */
    }
  } finally {
    fs.rmSync(scratch, { recursive: true, force: true });
    if (cds?.dumping) {
      // The JVM writes the archive when it exits normally, which it does after a failed
      // statement too (python stops the session, then exits 1); a signal may cut it short.
      const ok = proc !== undefined && proc.signal === null && (proc.code === 0 || proc.code === 1) && fs.existsSync(cds.dumping.tmp);
      if (ok) fs.renameSync(cds.dumping.tmp, cds.dumping.final);
      else fs.rmSync(cds.dumping.tmp, { force: true });
    } else if (cds && cdsRejected) {
      // Stale (e.g. a jar changed): the JVM ran without it; the next run dumps a new one.
      log(`removing the class-data sharing archive the JVM rejected: ${cds.archive}`);
      fs.rmSync(cds.archive, { force: true });
    }
  }
  const { code, signal, totalMs, spawnedAt, tail, peakHwmSum } = proc!; // set, or runTree threw

  const ready = events.find((e) => e.event === 'ready');
  const timings = events.filter((e) => e.event === 'statement').map((e) => ({ name: names[e.index!]!, ms: e.ms! }));
  const reported = events.find((e) => e.event === 'memory')?.peakRssBytes ?? 0;
  const result: SparkRunResult = { timings, totalMs, startupMs: ready ? ready.epochMs! - spawnedAt : totalMs, peakRssBytes: Math.max(peakHwmSum, reported) };

  const failed = events.find((e) => e.event === 'error');
  if (failed) {
    const i = failed.index ?? -1;
    const cls = failed.errorClass ?? undefined;
    const message = failed.message ?? 'unknown error';
    const sql = i >= 0 ? (statements[i]?.sql ?? '').trim().replace(/\s+/g, ' ') : '';
    const where = i >= 0 ? `statement ${i} (0-based) of ${statements.length}${names[i] !== `#${i}` ? ` "${names[i]}"` : ''}` : 'start-up';
    const text = [
      `Spark SQL ${where} failed: ${cls && !message.startsWith(`[${cls}]`) ? `[${cls}] ` : ''}${message}`,
      ...(sql ? [`  SQL: ${sql.length > 300 ? `${sql.slice(0, 300)} ...` : sql}`] : []),
      ...(i < 0 ? tail.slice(-15) : []),
    ].join('\n');
    throw new SparkSqlError(text, i, cls, failed.sqlState ?? undefined, result);
  }
  if (code !== 0) {
    throw new Error(`Spark SQL runner exited with ${signal ?? `code ${code}`} after ${(totalMs / 1000).toFixed(1)} s:\n${tail.slice(-25).join('\n')}`);
  }
  if (!ready || timings.length !== statements.length) throw new Error(`Spark SQL runner exited 0 but reported ${timings.length} of ${statements.length} statements`);
  return result;
}
