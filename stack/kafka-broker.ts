/**
 * Kafka: Apache Kafka in KRaft combined mode (broker + controller in one JVM), jars from
 * Maven Central resolved by stack/kafka/pom.xml. 3.9.x is a version AWS MSK offers.
 *
 * A part of the local stack (stack/service.ts says what a part does; stack/services.ts lists them).
 */
import fs from 'node:fs';
import path from 'node:path';
import { LOCAL_KAFKA_SECURED, type Config } from '../config';
import { createKafka } from '../adapters/kafka';
import { CACHE_DIR, DATA_DIR, isAlive, isLoopbackHost, logFile, portOpen, readPid, run, runWithProgress, say, spawnDetached, stopProcess, waitFor, which } from './proc';
import { hostPortOf, requireLocal, type Service } from './service';
import { ensureServerCert, STACK_CA } from './tls';

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
