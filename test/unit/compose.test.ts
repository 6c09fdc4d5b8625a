/** No Docker engine runs here: check the compose file's shape instead of running it. */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { describe, it } from 'node:test';
import { parse } from 'yaml';

interface Service {
  image?: string;
  ports?: string[];
  depends_on?: Record<string, unknown> | string[];
  environment?: Record<string, string>;
}

const file = path.join(__dirname, '..', '..', 'docker-compose.temporal.yaml');
const compose = parse(fs.readFileSync(file, 'utf8')) as { services: Record<string, Service> };

describe('docker-compose.temporal.yaml', () => {
  it('has Temporal server + UI, Kafka, MySQL, an S3 server and the worker', () => {
    for (const name of ['temporal', 'temporal-ui', 'kafka', 'mysql', 's3', 'worker']) assert.ok(compose.services[name], `service ${name}`);
  });

  it('pins every image to an exact tag (no latest, no bare major)', () => {
    for (const [name, svc] of Object.entries(compose.services)) {
      assert.ok(svc.image, `${name} has an image`);
      const tag = svc.image.split(':')[1];
      assert.ok(tag, `${name} image ${svc.image} has a tag`);
      assert.notEqual(tag, 'latest');
      assert.match(tag, /\d+\.\d+|RELEASE\.\d{4}/, `${name} tag ${tag} is specific`);
    }
  });

  it('publishes the same ports as the local stack defaults', () => {
    const published = (svc: string) => (compose.services[svc]!.ports ?? []).map((p) => p.split(':')[0]);
    assert.deepEqual(published('temporal'), ['7233']);
    assert.deepEqual(published('temporal-ui'), ['8233']);
    assert.deepEqual(published('kafka'), ['9092']);
    assert.deepEqual(published('mysql'), ['3306']);
    assert.deepEqual(published('s3'), ['7070']);
  });

  it('runs the same Kafka version the local stack pins', () => {
    const pom = fs.readFileSync(path.join(__dirname, '..', '..', 'stack', 'kafka', 'pom.xml'), 'utf8');
    const version = /<kafka\.version>([^<]+)</.exec(pom)![1];
    assert.equal(compose.services.kafka!.image, `apache/kafka:${version}`);
  });

  it('points the worker at the compose services', () => {
    const env = compose.services.worker!.environment!;
    assert.equal(env.TEMPORAL_ADDRESS, 'temporal:7233');
    assert.equal(env.KAFKA_BROKERS, 'kafka:9092');
    assert.match(env.MYSQL_URL!, /@mysql:3306\//);
    assert.equal(env.S3_ENDPOINT, 'http://s3:7070');
  });
});
