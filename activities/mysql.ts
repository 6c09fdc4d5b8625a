/** MySQL adapter: the only module that talks to the source database. */
import mysql from 'mysql2/promise';
import { addressOf, type Config } from '../common/config';
import { guarded } from '../common/errors';
import type { SystemCheck } from '../common/types';

export function createMysqlPool(config: Config): mysql.Pool {
  return mysql.createPool({
    uri: config.mysql.url,
    connectionLimit: 4,
    connectTimeout: 5_000,
    dateStrings: true,
    supportBigNumbers: true,
    enableKeepAlive: true,
  });
}

export function mysqlAdapter(config: Config) {
  const address = addressOf(config, 'mysql');
  let pool: mysql.Pool | undefined;
  const getPool = () => (pool ??= createMysqlPool(config));

  const activities = {
    /** Doctor: one round trip to the database named in MYSQL_URL. */
    async checkMysql(): Promise<SystemCheck> {
      return guarded('MySQL', address, async () => {
        const started = performance.now();
        const [rows] = await getPool().query<mysql.RowDataPacket[]>('SELECT VERSION() AS version, DATABASE() AS db');
        const latencyMs = Math.round(performance.now() - started);
        return { system: 'mysql', address, latencyMs, detail: `${rows[0]?.version} database ${rows[0]?.db}` };
      });
    },
  };

  return {
    activities,
    pool: getPool,
    async close() {
      await pool?.end();
      pool = undefined;
    },
  };
}
