/**
 * MySQL: MariaDB from Debian packages, its own data directory under .data/mysql, the
 * project database and user created from MYSQL_URL. It serves TLS (plain TCP too) with the
 * stack CA's certificate for localhost/127.0.0.1 (stack/tls.ts), so MYSQL_SSL_MODE=
 * verify-full with MYSQL_SSL_CA=.data/kafka/tls/ca.pem works against it.
 *
 * A part of the local stack (stack/service.ts says what a part does; stack/services.ts lists them).
 */
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mysql from 'mysql2/promise';
import type { Config } from '../config';
import { mysqlConnectionOptions } from '../adapters/mysql-connection';
import { DATA_DIR, isAlive, logFile, readPid, run, runWithProgress, say, spawnDetached, stopProcess, waitFor, which } from './proc';
import { requireLocal, type Service } from './service';
import { ensureServerCert } from './tls';

const MYSQL_DIR = path.join(DATA_DIR, 'mysql');
export const MYSQL_SOCKET = path.join(MYSQL_DIR, 'mysqld.sock');

async function mysqlHealthy(config: Config): Promise<boolean> {
  // The configured TLS and IAM settings, like every other connection (adapters/mysql-connection.ts).
  const conn = await mysql.createConnection(mysqlConnectionOptions(config, { connectTimeout: 2_000 }));
  try {
    await conn.query('SELECT 1');
    return true;
  } finally {
    await conn.end();
  }
}

/** Whether the MariaDB this stack started serves TLS (root over its socket); undefined: not ours or not answering. */
async function localMysqlServesTls(): Promise<boolean | undefined> {
  if (!isAlive(readPid('mysql'))) return undefined;
  const root = await mysql.createConnection({ socketPath: MYSQL_SOCKET, user: 'root', connectTimeout: 2_000 }).catch(() => undefined);
  if (!root) return undefined;
  try {
    const [rows] = await root.query<mysql.RowDataPacket[]>("SHOW GLOBAL VARIABLES LIKE 'have_ssl'");
    return rows[0]?.Value === 'YES';
  } finally {
    await root.end();
  }
}

const MYSQL_RESTART_HINT = 'restart it to serve TLS: npm run stack -- down mysql && npm run stack -- up mysql (the data stays in .data/mysql)';

async function ensureMariadb(): Promise<void> {
  if (which('mariadbd') || fs.existsSync('/usr/sbin/mariadbd')) return;
  if (!which('apt-get')) throw new Error('MariaDB is not installed and apt-get is not available: install mariadb-server, or point MYSQL_URL at a server');
  await runWithProgress('apt-get', ['update', '-qq'], { label: 'apt-get update' });
  await runWithProgress('apt-get', ['install', '-y', '-qq', '--no-install-recommends', 'mariadb-server', 'mariadb-client'], {
    label: 'install MariaDB (Debian packages)',
    env: { DEBIAN_FRONTEND: 'noninteractive' },
  });
}

export const mysqlService: Service = {
  name: 'mysql',
  describe: (c) => {
    const u = new URL(c.mysql.url);
    return `MariaDB/MySQL ${u.hostname}:${u.port || 3306}${u.pathname}`;
  },
  healthy: (c) => mysqlHealthy(c).catch(() => false),
  async up(config) {
    if (await this.healthy(config)) {
      // A server started before the stack served TLS keeps running as it is: say how to upgrade it.
      if ((await localMysqlServesTls().catch(() => undefined)) === false) say(`mysql: the running MariaDB serves no TLS; ${MYSQL_RESTART_HINT}`);
      return;
    }
    const u = new URL(config.mysql.url);
    const port = Number(u.port || 3306);
    requireLocal('MySQL', u.hostname, `${u.hostname}:${port}`);
    await ensureMariadb();
    const mariadbd = which('mariadbd') ?? '/usr/sbin/mariadbd';
    const dataDir = path.join(MYSQL_DIR, 'data');
    const cert = ensureServerCert('mysql');
    if (!isAlive(readPid('mysql'))) {
      if (!fs.existsSync(path.join(dataDir, 'mysql'))) {
        fs.mkdirSync(MYSQL_DIR, { recursive: true });
        run(
          which('mariadb-install-db') ?? 'mysql_install_db',
          ['--no-defaults', `--datadir=${dataDir}`, '--user=root', '--auth-root-authentication-method=normal', '--skip-test-db'],
          { label: 'mariadb-install-db' },
        );
        say(`mysql: initialised ${dataDir}`);
      }
      // A socket file left by a server that was killed would pass the wait below before the new one listens.
      fs.rmSync(MYSQL_SOCKET, { force: true });
      spawnDetached('mysql', mariadbd, [
        '--no-defaults',
        `--datadir=${dataDir}`,
        '--user=root',
        `--bind-address=${u.hostname === 'localhost' ? '127.0.0.1' : u.hostname}`,
        `--port=${port}`,
        `--socket=${MYSQL_SOCKET}`,
        `--pid-file=${path.join(MYSQL_DIR, 'mysqld.pid')}`,
        '--innodb-buffer-pool-size=1G',
        '--max-connections=300',
        '--character-set-server=utf8mb4',
        '--collation-server=utf8mb4_unicode_ci',
        '--skip-name-resolve',
        // A dev server: durability of the last second on an OS crash is not worth an fsync per commit.
        '--innodb-flush-log-at-trx-commit=2',
        '--innodb-log-file-size=256M',
        // TLS beside plain TCP: users created REQUIRE SSL (and clients with MYSQL_SSL_MODE) use it.
        `--ssl-cert=${cert.cert}`,
        `--ssl-key=${cert.key}`,
        `--ssl-ca=${cert.ca}`,
      ]);
    }
    const socketAccepts = () =>
      new Promise<boolean>((resolve) => {
        const sock = net.connect(MYSQL_SOCKET, () => (sock.end(), resolve(true)));
        sock.on('error', () => resolve(false));
      });
    await waitFor('MariaDB socket', socketAccepts, 60_000, logFile('mysql'));
    // Create the database and user named in MYSQL_URL (root over the socket, no password).
    const root = await mysql.createConnection({ socketPath: MYSQL_SOCKET, user: 'root' });
    try {
      const db = decodeURIComponent(u.pathname.slice(1));
      const user = decodeURIComponent(u.username);
      const pass = decodeURIComponent(u.password);
      await root.query(`CREATE DATABASE IF NOT EXISTS \`${db}\` CHARACTER SET utf8mb4`);
      for (const host of ['localhost', '127.0.0.1', '%']) {
        await root.query('CREATE USER IF NOT EXISTS ?@? IDENTIFIED BY ?', [user, host, pass]);
        await root.query('ALTER USER ?@? IDENTIFIED BY ?', [user, host, pass]);
        await root.query(`GRANT ALL PRIVILEGES ON \`${db}\`.* TO ?@?`, [user, host]);
        // Tests create their own isolated databases named <db>_test_*.
        await root.query(`GRANT ALL PRIVILEGES ON \`${db}\\_test\\_%\`.* TO ?@?`, [user, host]);
      }
    } finally {
      await root.end();
    }
    if (config.mysql.tls && (await localMysqlServesTls()) === false) {
      throw new Error(`MYSQL_SSL_MODE=${config.mysql.tls.mode} asks for TLS, and the running MariaDB (started by an earlier npm run stack) serves none; ${MYSQL_RESTART_HINT}`);
    }
    await waitFor('MySQL', () => mysqlHealthy(config), 30_000, logFile('mysql'));
  },
  down: () => stopProcess('mysql', 30_000),
};
