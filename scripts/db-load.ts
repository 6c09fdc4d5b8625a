/**
 * npm run db:load -- --dir DIR [--replace]
 *
 * Loads pinterest_data.csv, geolocation_data.csv and user_data.csv (header row, columns in any
 * order, empty field = NULL, DATETIME as `YYYY-MM-DD HH:MM:SS` or ISO-8601) into the source
 * tables. Every file is validated completely before anything is written; a malformed file is
 * rejected naming file, line and column, and nothing is loaded. Non-empty tables are refused
 * unless --replace; each table is replaced inside one transaction.
 */
import fs from 'node:fs';
import path from 'node:path';
import { parse } from 'csv-parse';
import type { Pool } from 'mysql2/promise';
import { applySchema, createMysqlPool, ensureDatabase, insertRows, tableCounts } from '../adapters/mysql';
import type { Config } from '../config';
import { SOURCE_TABLES, type ColumnType, type SourceTable } from '../common/source-tables';
import { defineCommand, parseCommandLine, UsageError } from '../cli/args';
import { runCli } from '../cli/command';

export class LoadError extends Error {
  override name = 'LoadError';
}

const INT = /^[-+]?\d+$/;
const DOUBLE = /^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$/;
const DATETIME = /^(\d{4})-(\d{2})-(\d{2})[ T](\d{2}):(\d{2}):(\d{2})(\.\d{1,6})?(Z|[+-]00:?00)?$/;

function convert(type: ColumnType, raw: string): { ok: true; value: string | number | null } | { ok: false; why: string } {
  if (raw === '') return { ok: true, value: null };
  switch (type) {
    case 'text':
      return { ok: true, value: raw };
    case 'int': {
      const v = raw.trim();
      if (!INT.test(v)) return { ok: false, why: `bad number ${JSON.stringify(raw)} (expected an integer)` };
      const n = Number(v);
      if (n < -2_147_483_648 || n > 2_147_483_647) return { ok: false, why: `number ${raw} out of INT range` };
      return { ok: true, value: n };
    }
    case 'double': {
      const v = raw.trim();
      if (!DOUBLE.test(v)) return { ok: false, why: `bad number ${JSON.stringify(raw)}` };
      return { ok: true, value: Number(v) };
    }
    case 'datetime': {
      const m = DATETIME.exec(raw.trim());
      if (!m) return { ok: false, why: `bad datetime ${JSON.stringify(raw)} (expected YYYY-MM-DD HH:MM:SS or ISO-8601)` };
      const [, y, mo, d, h, mi, s, frac] = m;
      const t = Date.UTC(+y!, +mo! - 1, +d!, +h!, +mi!, +s!);
      const back = new Date(t);
      if (back.getUTCMonth() !== +mo! - 1 || back.getUTCDate() !== +d! || +h! > 23 || +mi! > 59 || +s! > 59) {
        return { ok: false, why: `bad datetime ${JSON.stringify(raw)} (no such date or time)` };
      }
      return { ok: true, value: `${y}-${mo}-${d} ${h}:${mi}:${s}${frac ?? ''}` };
    }
  }
}

/** Parses and validates one file completely; throws LoadError naming file, line and column. */
export async function readTableCsv(file: string, table: SourceTable): Promise<unknown[][]> {
  const name = path.basename(file);
  if (!fs.existsSync(file)) throw new LoadError(`${file}: missing (expected one file per table: ${SOURCE_TABLES.map((t) => `${t.name}.csv`).join(', ')})`);
  const parser = fs.createReadStream(file).pipe(parse({ info: true, relax_column_count: false, bom: true }));
  let header: string[] | undefined;
  let order: number[] = [];
  const rows: unknown[][] = [];
  const seen = new Map<number, number>();
  const keyIdx = table.columns.findIndex((c) => c.name === table.key);
  try {
    for await (const rec of parser as AsyncIterable<{ record: string[]; info: { lines: number } }>) {
      const line = rec.info.lines;
      if (!header) {
        header = rec.record.map((h) => h.trim());
        const known = new Set(table.columns.map((c) => c.name));
        const unknown = header.filter((h) => !known.has(h));
        if (unknown.length) throw new LoadError(`${name}: line 1: unknown column ${unknown.map((u) => JSON.stringify(u)).join(', ')} (table ${table.name} has ${[...known].join(', ')})`);
        const missing = table.columns.filter((c) => !header!.includes(c.name)).map((c) => c.name);
        if (missing.length) throw new LoadError(`${name}: line 1: missing column ${missing.join(', ')}`);
        const dup = header.find((h, i) => header!.indexOf(h) !== i);
        if (dup) throw new LoadError(`${name}: line 1: column ${dup} appears twice`);
        order = table.columns.map((c) => header!.indexOf(c.name));
        continue;
      }
      const row = table.columns.map((c, i) => {
        const r = convert(c.type, rec.record[order[i]!] ?? '');
        if (!r.ok) throw new LoadError(`${name}: line ${line}: column ${c.name}: ${r.why}`);
        return r.value;
      });
      const key = row[keyIdx];
      if (key === null) throw new LoadError(`${name}: line ${line}: column ${table.key}: the key may not be empty`);
      const prev = seen.get(key as number);
      if (prev !== undefined) throw new LoadError(`${name}: line ${line}: column ${table.key}: key ${key} already on line ${prev}`);
      seen.set(key as number, line);
      rows.push(row);
    }
  } catch (err) {
    if (err instanceof LoadError) throw err;
    throw new LoadError(`${name}: ${(err as Error).message}`);
  }
  if (!header) throw new LoadError(`${name}: empty file (no header row)`);
  return rows;
}

const BATCH = 1_000;

export async function loadDir(config: Config, dir: string, opts: { replace: boolean; log?: (s: string) => void }): Promise<Record<string, number>> {
  const log = opts.log ?? (() => {});
  const data = new Map<SourceTable, unknown[][]>();
  for (const t of SOURCE_TABLES) {
    const rows = await readTableCsv(path.join(dir, `${t.name}.csv`), t);
    data.set(t, rows);
    log(`${t.name}.csv: ${rows.length} rows valid`);
  }
  await ensureDatabase(config);
  const pool: Pool = createMysqlPool(config, 2);
  try {
    await applySchema(pool);
    if (!opts.replace) {
      const counts = await tableCounts(pool);
      const full = Object.entries(counts).filter(([, n]) => n > 0);
      if (full.length) throw new LoadError(`refusing to load into non-empty table(s) ${full.map(([t, n]) => `${t} (${n} rows)`).join(', ')}; pass --replace to replace them`);
    }
    const loaded: Record<string, number> = {};
    const conn = await pool.getConnection();
    try {
      // One transaction for all three tables: all are replaced, or none.
      await conn.beginTransaction();
      for (const [t, rows] of data) {
        await conn.query(`DELETE FROM \`${t.name}\``);
        for (let i = 0; i < rows.length; i += BATCH) await insertRows(conn, t, rows.slice(i, i + BATCH));
        loaded[t.name] = rows.length;
      }
      await conn.commit();
    } catch (err) {
      await conn.rollback().catch(() => undefined);
      throw err;
    } finally {
      conn.release();
    }
    for (const [t, n] of Object.entries(loaded)) log(`${t}: ${n} rows loaded`);
    return loaded;
  } finally {
    await pool.end();
  }
}

export const COMMAND = defineCommand({
  script: 'db:load',
  options: {
    dir: { value: 'DIR', help: 'the folder holding the three CSV files', required: true },
    replace: { help: 'replace tables that already hold rows' },
  },
  about:
    'Loads pinterest_data.csv, geolocation_data.csv and user_data.csv from DIR into the source tables (header row, columns in any order, empty field = NULL). ' +
    'Every file is validated completely before anything is written; a malformed file is refused naming file, line and column, and nothing is loaded. ' +
    'Non-empty tables are refused unless --replace; the three tables are replaced in one transaction.',
});

if (require.main === module) {
  runCli(COMMAND, async (config, argv) => {
    const opts = parseCommandLine(COMMAND, argv).values;
    if (!opts.dir) throw new UsageError('--dir is required');
    await loadDir(config, path.resolve(opts.dir), { replace: Boolean(opts.replace), log: (s) => console.log(s) });
  });
}
