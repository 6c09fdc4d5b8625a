/**
 * Delta Lake on the local Spark SQL runner (test/tools/spark.ts): the Databricks warehouse's
 * table format on a local PySpark, so statements written for Delta tables (CREATE TABLE ...
 * USING DELTA, MERGE INTO, DELETE, INSERT OVERWRITE / REPLACE WHERE on a partitioned table)
 * run for real instead of being compared as text.
 *
 * `ensureDelta()` installs, once per Delta version:
 *  - the `delta-spark` Python package (PyPI) of the Delta line made for the pinned pyspark
 *    (DELTA_VERSION; Delta 4.0.x is the line for Spark 4.0.x) into the runner's venv, with
 *    `--no-deps`: its one dependency, importlib-metadata, serves only
 *    `configure_spark_with_delta_pip`, which the runner does not use;
 *  - the jars of `io.delta:delta-spark_<scala>:<that version>` (and `io.delta:delta-storage`,
 *    which it depends on) from Maven Central, resolved by Spark's own Ivy
 *    (`spark.jars.packages`) into `.cache/spark/ivy-delta-<version>` during one session that
 *    also creates, merges into and reads a Delta table. Scala's library and ANTLR's runtime,
 *    which pyspark already ships, are excluded. The Scala version is read from pyspark's own
 *    scala-library jar.
 * The resolved jar files are listed in `jars.json` in that folder; a later call finds them and
 * returns at once, without pip, Ivy or network.
 *
 * `deltaConf()` is what a run passes as `runSparkSql(..., { conf })`: those jars on
 * `spark.jars` (no resolution at run time), Delta's SQL extension and catalog, and Delta's
 * log-replay parallelism sized for local mode. Tables are managed tables of the in-memory
 * catalog, in the run's own warehouse dir (a temp dir removed after the run): they live as
 * long as the one SparkSession of one `runSparkSql` call.
 */
import { spawnSync } from 'node:child_process';
import fs from 'node:fs';
import path from 'node:path';
import { CACHE_DIR, say } from '../../stack/proc';
import { ensureSpark, PYSPARK_VERSION, runLogged, runSparkSql, SPARK_DIR, SPARK_VENV, withInstallLock, type Log } from './spark';

/** The Delta release for each pyspark minor line the runner can pin. */
const DELTA_FOR_SPARK: Record<string, string> = { '4.0': '4.0.1' };

function deltaVersionFor(pyspark: string): string {
  const line = pyspark.split('.').slice(0, 2).join('.');
  const v = DELTA_FOR_SPARK[line];
  if (!v) throw new Error(`no Delta Lake release is pinned for pyspark ${pyspark} (pinned: ${Object.keys(DELTA_FOR_SPARK).map((l) => `Spark ${l}.x`).join(', ')})`);
  return v;
}

export const DELTA_VERSION = deltaVersionFor(PYSPARK_VERSION);
export const DELTA_IVY_DIR = path.join(SPARK_DIR, `ivy-delta-${DELTA_VERSION}`);
const JARS_FILE = path.join(DELTA_IVY_DIR, 'jars.json');
const pipMarker = () => path.join(SPARK_VENV, `.pinflow-delta-spark-${DELTA_VERSION}`);
const venvPython = () => path.join(SPARK_VENV, 'bin', 'python');

const defaultLog: Log = (line) => say(`delta: ${line}`);

export interface DeltaRuntime {
  version: string;
  /** `io.delta:delta-spark_<scala>:<version>` */
  artifact: string;
  /** The resolved jar files (absolute paths). */
  jars: string[];
}

/** The Scala binary version pyspark is built for, from the scala-library jar it ships. */
export function sparkScalaVersion(): string {
  const lib = fs.readdirSync(path.join(SPARK_VENV, 'lib')).find((d) => d.startsWith('python'));
  const jarsDir = lib ? path.join(SPARK_VENV, 'lib', lib, 'site-packages', 'pyspark', 'jars') : '';
  const jar = jarsDir && fs.existsSync(jarsDir) ? fs.readdirSync(jarsDir).find((f) => /^scala-library-\d+\.\d+\.\d+\.jar$/.test(f)) : undefined;
  const m = jar ? /^scala-library-(\d+\.\d+)\./.exec(jar) : null;
  if (!m) throw new Error(`cannot tell pyspark's Scala version: no scala-library-*.jar in ${jarsDir || `${SPARK_VENV}/lib/python*`}`);
  return m[1]!;
}

/** Settings for a Delta-enabled run; `extra` wins over them. */
export function deltaConf(rt: DeltaRuntime, extra: Record<string, string> = {}): Record<string, string> {
  return {
    ...(rt.jars.length > 0 ? { 'spark.jars': rt.jars.join(',') } : {}),
    'spark.sql.extensions': 'io.delta.sql.DeltaSparkSessionExtension',
    'spark.sql.catalog.spark_catalog': 'org.apache.spark.sql.delta.catalog.DeltaCatalog',
    // Replaying a table's log uses 50 partitions by default: far too many tasks on 2 cores.
    'spark.databricks.delta.snapshotPartitions': '2',
    ...extra,
  };
}

function readJars(): string[] | undefined {
  try {
    const names = JSON.parse(fs.readFileSync(JARS_FILE, 'utf8')) as string[];
    const jars = names.map((n) => path.join(DELTA_IVY_DIR, 'jars', n));
    return jars.length > 0 && jars.every((j) => fs.existsSync(j)) ? jars : undefined;
  } catch {
    return undefined;
  }
}

function pipInstalled(): boolean {
  if (!fs.existsSync(pipMarker())) return false;
  const check = spawnSync(venvPython(), ['-c', 'import importlib.metadata as m; print(m.version("delta-spark"))'], { encoding: 'utf8' });
  return check.status === 0 && check.stdout.trim() === DELTA_VERSION;
}

/** The statements of the install's check run: a Delta table is created, merged into and read. */
const CHECK_SQL = [
  'CREATE TABLE delta_check (k INT, v STRING) USING DELTA',
  "INSERT INTO delta_check VALUES (1, 'a'), (2, 'b')",
  "MERGE INTO delta_check t USING (SELECT 2 AS k, 'B' AS v UNION ALL SELECT 3, 'c') s ON t.k = s.k WHEN MATCHED THEN UPDATE SET v = s.v WHEN NOT MATCHED THEN INSERT *",
];

/**
 * Installs delta-spark (pip) and the Delta jars (Ivy, from Maven Central) unless they are
 * cached, then returns the jars. Idempotent; concurrent callers wait on the install lock.
 */
export async function ensureDelta(log: Log = defaultLog): Promise<DeltaRuntime> {
  await ensureSpark(log);
  const artifact = () => `io.delta:delta-spark_${sparkScalaVersion()}:${DELTA_VERSION}`;
  const ready = (): DeltaRuntime | undefined => {
    const jars = pipInstalled() ? readJars() : undefined;
    return jars && { version: DELTA_VERSION, artifact: artifact(), jars };
  };
  const cached = ready();
  if (cached) return cached;
  return withInstallLock(async () => {
    const again = ready();
    if (again) return again;
    const started = Date.now();
    if (!pipInstalled()) {
      const tmpDir = path.join(CACHE_DIR, 'tmp', `delta-install-${process.pid}`);
      try {
        await runLogged(
          venvPython(),
          ['-m', 'pip', 'install', '--cache-dir', path.join(CACHE_DIR, 'pip'), '--progress-bar', 'off', '--no-deps', `delta-spark==${DELTA_VERSION}`],
          `pip install delta-spark ${DELTA_VERSION}`,
          log,
          tmpDir,
        );
      } finally {
        fs.rmSync(tmpDir, { recursive: true, force: true });
      }
      fs.writeFileSync(pipMarker(), `${new Date().toISOString()}\n`);
      if (!pipInstalled()) throw new Error(`delta-spark installed but its metadata does not say ${DELTA_VERSION}`);
    }
    if (!readJars()) {
      // A half-done resolution leaves nothing that could mislead the next one.
      fs.rmSync(DELTA_IVY_DIR, { recursive: true, force: true });
      fs.mkdirSync(DELTA_IVY_DIR, { recursive: true });
      const resolveStarted = Date.now();
      log(`resolving ${artifact()} from Maven Central into ${path.relative(process.cwd(), DELTA_IVY_DIR)} ...`);
      const out = path.join(DELTA_IVY_DIR, 'check');
      await runSparkSql([...CHECK_SQL.map((sql) => ({ sql })), { sql: 'SELECT k, v FROM delta_check ORDER BY k', collect: 'rows' }], {
        outDir: out,
        log,
        classDataSharing: false,
        conf: deltaConf(
          { version: DELTA_VERSION, artifact: artifact(), jars: [] },
          {
            'spark.jars.packages': artifact(),
            'spark.jars.excludes': 'org.scala-lang:scala-library,org.antlr:antlr4-runtime',
            'spark.jars.ivy': DELTA_IVY_DIR,
          },
        ),
      });
      const rows = JSON.parse(fs.readFileSync(path.join(out, 'rows.json'), 'utf8')) as unknown;
      fs.rmSync(out, { recursive: true, force: true });
      const want = [
        { k: 1, v: 'a' },
        { k: 2, v: 'B' },
        { k: 3, v: 'c' },
      ];
      if (JSON.stringify(rows) !== JSON.stringify(want)) throw new Error(`Delta check run read ${JSON.stringify(rows)}, expected ${JSON.stringify(want)}`);
      const names = fs.readdirSync(path.join(DELTA_IVY_DIR, 'jars')).filter((f) => f.endsWith('.jar')).sort();
      if (!names.some((n) => n.startsWith('io.delta_delta-spark_')) || !names.some((n) => n.startsWith('io.delta_delta-storage-'))) {
        throw new Error(`Ivy resolved ${names.join(', ') || 'no jars'} into ${DELTA_IVY_DIR}; expected io.delta delta-spark and delta-storage`);
      }
      fs.writeFileSync(JARS_FILE, `${JSON.stringify(names, null, 2)}\n`);
      log(`Delta jars resolved and checked in ${((Date.now() - resolveStarted) / 1000).toFixed(0)} s: ${names.join(', ')}`);
    }
    log(`Delta Lake ${DELTA_VERSION} ready in ${((Date.now() - started) / 1000).toFixed(0)} s`);
    const rt = ready();
    if (!rt) throw new Error('Delta install finished but its jars or package are missing');
    return rt;
  });
}
