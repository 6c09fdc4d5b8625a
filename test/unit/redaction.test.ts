/**
 * The redaction point (common/redact.ts) and the REST proxy's credential settings: every
 * secret setting's value and URL credentials are redacted from classify()'s failures (and
 * their causes and stacks), from what an activity throws (the worker's interceptor) and from
 * log lines; the REST proxy settings are validated at start-up, naming each bad setting and
 * never printing a secret.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ApplicationFailure } from '@temporalio/common';
import type { LogLevel, LogMetadata } from '@temporalio/common';
import { ConfigError, loadConfig } from '../../config';
import { classify, NonRetryable } from '../../common/errors';
import { MIN_SECRET_LENGTH, redactError, redactText, REDACTED } from '../../common/redact';
import { rememberSecret, secretPartsOf } from '../../config/secrets';
import { parseProxyHeaders } from '../../config/rest-proxy-settings';
import { redactingActivityInterceptor, RedactingLogger } from '../../workers/redaction';
import { requestHeaders } from '../../adapters/rest-proxy';

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

const unique = () => Math.random().toString(36).slice(2, 10);

describe('REST proxy credential settings', () => {
  it('basic auth and headers load into the config; the request carries them', () => {
    const c = loadConfig({ REST_PROXY_URL: 'https://proxy.example/kafka', REST_PROXY_USERNAME: 'svc', REST_PROXY_PASSWORD: 'pw-123456789', REST_PROXY_HEADERS: '{"x-api-key": "k-1;2,3=4:5"}' });
    assert.deepEqual(c.restProxyAuth, { basic: { username: 'svc', password: 'pw-123456789' }, headers: { 'x-api-key': 'k-1;2,3=4:5' } });
    const h = requestHeaders({ url: c.restProxyUrl!, ...c.restProxyAuth });
    assert.equal(h.Authorization, `Basic ${Buffer.from('svc:pw-123456789').toString('base64')}`);
    assert.equal(h['x-api-key'], 'k-1;2,3=4:5');
    assert.equal(h['Content-Type'], 'application/vnd.kafka.json.v2+json');
    assert.equal(loadConfig({ REST_PROXY_URL: 'http://127.0.0.1:8082' }).restProxyAuth, undefined);
  });

  it('a REST_PROXY_URL carrying credentials is refused, naming the setting, never printing it', () => {
    const secret = `UrlSecret${unique()}`;
    for (const url of [`https://user:${secret}@proxy.example/`, `http://${secret}@127.0.0.1:8082`]) {
      const e = configError({ REST_PROXY_URL: url });
      assert.match(e.message, /REST_PROXY_URL must not carry credentials \(user:password@\): set REST_PROXY_USERNAME and REST_PROXY_PASSWORD, or REST_PROXY_HEADERS \(value hidden: secret\)/);
      assert.ok(!e.message.includes(secret), e.message);
    }
  });

  it('names every bad REST proxy setting at once, without their values', () => {
    const pw = `PwSecret${unique()}`;
    let e = configError({ REST_PROXY_URL: 'http://127.0.0.1:8082', REST_PROXY_PASSWORD: pw, REST_PROXY_HEADERS: `{"x-api-key": "${pw}", "Content-Type": "text/plain"}` });
    assert.match(e.message, /- REST_PROXY_USERNAME must be set together with its pair/);
    assert.match(e.message, /- REST_PROXY_HEADERS may not set Content-Type: pinflow sets it \(value hidden: secret\)/);
    assert.ok(!e.message.includes(pw));
    e = configError({ REST_PROXY_USERNAME: 'a:b', REST_PROXY_PASSWORD: pw, REST_PROXY_HEADERS: `x-api-key: ${pw}` });
    assert.match(e.message, /- REST_PROXY_USERNAME must not contain ":"/);
    assert.match(e.message, /- REST_PROXY_HEADERS must be a JSON object of header names to values/);
    assert.match(e.message, /- REST_PROXY_PASSWORD needs REST_PROXY_URL/);
    assert.ok(!e.message.includes(pw));
    e = configError({ REST_PROXY_URL: 'http://127.0.0.1:8082', REST_PROXY_USERNAME: 'svc', REST_PROXY_PASSWORD: pw, REST_PROXY_HEADERS: `{"authorization": "Bearer ${pw}"}` });
    assert.match(e.message, /REST_PROXY_HEADERS sets Authorization, which REST_PROXY_USERNAME \/ REST_PROXY_PASSWORD also set/);
    assert.ok(!e.message.includes(pw));
  });

  it('REST_PROXY_HEADERS: a JSON object of HTTP tokens to printable values', () => {
    assert.deepEqual(parseProxyHeaders('{"x-api-key": "abc", "X-Tenant": "t 1"}'), { 'x-api-key': 'abc', 'X-Tenant': 't 1' });
    for (const [text, problem] of [
      ['[]', /must be a JSON object/],
      ['{}', /at least one header/],
      ['{"bad name": "x"}', /not an HTTP token/],
      ['{"x-a": 1}', /must have a string value/],
      ['{"x-a": "line\\nbreak"}', /printable ASCII/],
      ['{"x-a": "1", "X-A": "2"}', /names header X-A twice/],
      ['{"Host": "evil"}', /may not set Host/],
      ['{"x-a": "  "}', /empty value/],
    ] as const) {
      const r = parseProxyHeaders(text);
      assert.equal(typeof r, 'string', text);
      assert.match(r as string, problem, text);
    }
  });
});

describe('redaction', () => {
  it('remembers the secret parts of each kind of setting value', () => {
    assert.deepEqual(secretPartsOf('mysql://app:p%40ss-word-1@db:3306/x'), ['p%40ss-word-1', 'p@ss-word-1', 'app']);
    assert.deepEqual(secretPartsOf('http://127.0.0.1:8082'), [], 'an address alone is not a secret');
    assert.deepEqual(secretPartsOf('{"x-api-key": "k1", "n": 2}'), ['{"x-api-key": "k1", "n": 2}', 'k1']);
    assert.deepEqual(secretPartsOf('2026-05:AAAA,old:BBBB'), ['2026-05:AAAA,old:BBBB', 'AAAA', 'BBBB']);
    assert.deepEqual(secretPartsOf('dapi-plain-token'), ['dapi-plain-token']);
  });

  it('loadConfig remembers every secret setting: classify() redacts them, in raw and encoded forms, and URL userinfo', () => {
    const token = `dapi-${unique()}-redact`;
    const mysqlPw = `My#Pw-${unique()}`;
    const s3Secret = `s3/secret+${unique()}`;
    loadConfig({ DATABRICKS_TOKEN: token, MYSQL_URL: `mysql://app:${encodeURIComponent(mysqlPw)}@127.0.0.1:3306/x`, S3_ACCESS_KEY_ID: 'AKIAREDACTTEST1', S3_SECRET_ACCESS_KEY: s3Secret });
    const inner = new Error(`login failed for token=${token}; url ${encodeURIComponent(mysqlPw)}; b64 ${Buffer.from(s3Secret).toString('base64')}; raw ${mysqlPw}`);
    inner.stack = `Error: ${inner.message}\n    at somewhere (file.js:1:1) ${token}`;
    const outer = new Error(`wrapped: see https://user:other-pass@host.example/path and ${token}`, { cause: inner });
    const failure = classify('Databricks', 'dbc.example', outer);
    const all = [failure.message, failure.stack, outer.message, outer.stack, inner.message, inner.stack].join('\n');
    for (const s of [token, mysqlPw, encodeURIComponent(mysqlPw), s3Secret, Buffer.from(s3Secret).toString('base64'), 'other-pass']) assert.ok(!all.includes(s), `${s} redacted:\n${all}`);
    assert.match(failure.message, /^Databricks at dbc\.example: wrapped: see https:\/\/\*\*\*@host\.example\/path and \[redacted\]$/);
    assert.match(inner.message, /^login failed for token=\[redacted\]; url \[redacted\]; b64 \[redacted\]; raw \[redacted\]$/);
  });

  it('an ApplicationFailure passing through classify() is redacted too, keeping its type and retry decision', () => {
    const key = `key-${unique()}-passthrough`;
    rememberSecret(key);
    const f = ApplicationFailure.nonRetryable(`refused ${key}`, NonRetryable.auth);
    const out = classify('REST proxy', 'http://p', f);
    assert.equal(out, f);
    assert.equal(f.message, `refused ${REDACTED}`);
    assert.equal(f.type, NonRetryable.auth);
    assert.equal(f.nonRetryable, true);
  });

  it(`values shorter than ${MIN_SECRET_LENGTH} characters are not remembered (they would mangle ordinary text)`, () => {
    rememberSecret('pinflow');
    assert.equal(redactText('topic pinflow.pin'), 'topic pinflow.pin');
  });

  it("the worker's interceptor redacts whatever an activity throws, before the SDK logs or converts it", async () => {
    const secret = `stray-${unique()}-secret`;
    rememberSecret(secret);
    const { inbound } = redactingActivityInterceptor({} as never);
    const thrown = new TypeError(`library said ${secret}`, { cause: new Error(`because ${secret}`) });
    const err = (await inbound!.execute!({ args: [], headers: {} }, async () => {
      throw thrown;
    }).catch((e: unknown) => e)) as Error & { cause: Error };
    assert.equal(err, thrown, 'the same error, type kept');
    assert.equal(err.message, `library said ${REDACTED}`);
    assert.equal(err.cause.message, `because ${REDACTED}`);
    assert.ok(!String(err.stack).includes(secret));
  });

  it('the worker runtime logger redacts messages, string fields and errors', () => {
    const secret = `log-${unique()}-secret`;
    rememberSecret(secret);
    const lines: Array<[LogLevel, string, LogMetadata | undefined]> = [];
    const log = new RedactingLogger({
      log: (l, m, meta) => lines.push([l, m, meta]),
      trace: () => {},
      debug: () => {},
      info: () => {},
      warn: () => {},
      error: () => {},
    });
    log.warn(`Activity failed ${secret}`, { error: new Error(`x ${secret}`), url: `http://u:${secret}@h/`, n: 1 });
    const [level, message, meta] = lines[0]!;
    assert.equal(level, 'WARN');
    assert.equal(message, `Activity failed ${REDACTED}`);
    assert.equal((meta!.error as Error).message, `x ${REDACTED}`);
    assert.equal(meta!.url, 'http://***@h/');
    assert.equal(meta!.n, 1);
    assert.equal(redactError(undefined), undefined);
  });
});
