/**
 * Payload encryption: the AES-256-GCM codec (round trip, rotation, wrong key, tampering),
 * its settings, the codec server (token, CORS, the Temporal codec protocol) and a workflow
 * run end to end with encryption on, whose raw history holds no plaintext of its input.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { ConfigError, loadConfig, PROJECT_ROOT } from '../../config';
import type { CleaningResult } from '../../common/cleaning';
import { payloadsToJson, startCodecServer, type RunningCodecServer } from '../../scripts/codec-server';
import { temporalCliPath } from '../../stack/services';
import { connectClient } from '../../workers/client';
import { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, keyringOf, PayloadDecryptionError } from '../../workers/codec';
import { createWorker } from '../../workers/worker';
import { ensureStack, quietRuntime, testConfig, uniqueName } from '../helpers/env';

const TMP = path.join(PROJECT_ROOT, '.cache', 'tmp');
const key = () => randomBytes(32).toString('base64');
const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');
const json = (v: unknown) => defaultPayloadConverter.toPayload(v);
const codecFor = (env: Record<string, string>) => new AesGcmCodec(keyringOf(loadConfig(env))!);

function configError(env: Record<string, string>): ConfigError {
  try {
    loadConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) return e;
    throw e;
  }
  assert.fail('expected a ConfigError');
}

describe('payload codec (AES-256-GCM)', () => {
  it('round-trips every kind of payload; each encryption uses a fresh IV; no plaintext remains', async () => {
    const codec = codecFor({ TEMPORAL_ENCRYPTION_KEY: key(), TEMPORAL_ENCRYPTION_KEY_ID: 'k1' });
    const marker = `secret-row-${randomBytes(4).toString('hex')}`;
    const originals: Payload[] = [json({ marker, n: 1, nested: { a: [1, 2, 3] } }), json(null), json(marker), { metadata: { encoding: new TextEncoder().encode('binary/plain') }, data: randomBytes(5000) }];
    const encoded = await codec.encode(originals);
    for (const p of encoded) {
      assert.equal(text(p.metadata!.encoding), ENCRYPTED_ENCODING);
      assert.equal(text(p.metadata![KEY_ID_METADATA]), 'k1');
      assert.deepEqual(Object.keys(p.metadata!).sort(), ['encoding', KEY_ID_METADATA].sort(), 'the original metadata is inside the ciphertext');
      assert.ok(!Buffer.from(p.data!).includes(marker), 'no plaintext in the ciphertext');
    }
    const decoded = await codec.decode(encoded);
    assert.equal(decoded.length, originals.length);
    for (const [i, p] of decoded.entries()) {
      assert.deepEqual(Buffer.from(p.data!), Buffer.from(originals[i]!.data!));
      assert.deepEqual(Object.keys(p.metadata!), Object.keys(originals[i]!.metadata!));
      for (const k of Object.keys(p.metadata!)) assert.equal(text(p.metadata![k]), text(originals[i]!.metadata![k]));
    }
    assert.equal(defaultPayloadConverter.fromPayload<{ marker: string }>(decoded[0]!).marker, marker);
    const twice = await codec.encode([originals[0]!, originals[0]!]);
    assert.notDeepEqual(Buffer.from(twice[0]!.data!), Buffer.from(twice[1]!.data!), 'a random IV per payload');
    assert.deepEqual(Buffer.from(twice[0]!.data!.subarray(0, 12)).equals(Buffer.from(twice[1]!.data!.subarray(0, 12))), false);
    // Payloads written before encryption was on pass through.
    assert.deepEqual(await codec.decode([originals[0]!]), [originals[0]]);
  });

  it('rotation: payloads of the old key still decrypt, new payloads use the new key id', async () => {
    const k1 = key();
    const k2 = key();
    const before = codecFor({ TEMPORAL_ENCRYPTION_KEY: k1, TEMPORAL_ENCRYPTION_KEY_ID: '2026-05' });
    const old = await before.encode([json({ v: 'old' })]);
    const rotated = codecFor({ TEMPORAL_ENCRYPTION_KEY: k2, TEMPORAL_ENCRYPTION_KEY_ID: '2026-11', TEMPORAL_ENCRYPTION_KEYS_OLD: `2026-05:${k1}` });
    assert.equal(rotated.currentKeyId, '2026-11');
    assert.deepEqual(defaultPayloadConverter.fromPayload((await rotated.decode(old))[0]!), { v: 'old' });
    const fresh = await rotated.encode([json({ v: 'new' })]);
    assert.equal(text(fresh[0]!.metadata![KEY_ID_METADATA]), '2026-11');
    assert.deepEqual(defaultPayloadConverter.fromPayload((await rotated.decode(fresh))[0]!), { v: 'new' });
    // The same through a key file.
    const file = path.join(TMP, `helper6-keys-${process.pid}.json`);
    fs.mkdirSync(TMP, { recursive: true });
    fs.writeFileSync(file, JSON.stringify({ current: '2026-11', keys: { '2026-05': k1, '2026-11': k2 } }));
    try {
      const fromFile = codecFor({ TEMPORAL_ENCRYPTION_KEY_FILE: file });
      assert.equal(fromFile.currentKeyId, '2026-11');
      assert.deepEqual(defaultPayloadConverter.fromPayload((await fromFile.decode(old))[0]!), { v: 'old' });
      assert.deepEqual(defaultPayloadConverter.fromPayload((await fromFile.decode(fresh))[0]!), { v: 'new' });
    } finally {
      fs.rmSync(file, { force: true });
    }
    // The old process, without the new key, says which key it lacks.
    await assert.rejects(before.decode(fresh), (e: Error) => {
      assert.ok(e instanceof PayloadDecryptionError);
      assert.match(e.message, /payload encrypted with key "2026-11", which this process does not have \(known: 2026-05\)/);
      return true;
    });
  });

  it('a wrong key, altered bytes or a relabelled key id fail with a clear error', async () => {
    const right = codecFor({ TEMPORAL_ENCRYPTION_KEY: key(), TEMPORAL_ENCRYPTION_KEY_ID: 'k1' });
    const wrong = codecFor({ TEMPORAL_ENCRYPTION_KEY: key(), TEMPORAL_ENCRYPTION_KEY_ID: 'k1' });
    const [p] = await right.encode([json({ a: 1 })]);
    const authFailure = /encrypted payload \(key "k1"\) failed authentication: it was altered, or encrypted with a different key of that id/;
    await assert.rejects(wrong.decode([p!]), authFailure);
    for (const at of [0, 20, p!.data!.length - 1]) {
      const data = Buffer.from(p!.data!);
      data[at] = data[at]! ^ 0x01;
      await assert.rejects(right.decode([{ ...p!, data }]), authFailure, `byte ${at} flipped`);
    }
    await assert.rejects(right.decode([{ ...p!, data: p!.data!.subarray(0, 10) }]), /too short/);
    const both = codecFor({ TEMPORAL_ENCRYPTION_KEY: key(), TEMPORAL_ENCRYPTION_KEY_ID: 'k2', TEMPORAL_ENCRYPTION_KEYS_OLD: `k1:${key()}` });
    const [q] = await both.encode([json({ a: 1 })]);
    const relabelled = { ...q!, metadata: { ...q!.metadata, [KEY_ID_METADATA]: new TextEncoder().encode('k1') } };
    await assert.rejects(both.decode([relabelled]), /key "k1"\) failed authentication/);
  });

  it('settings: bad keys are named without their values; key, id, old keys and key file validated together', () => {
    const secret = key();
    const short = randomBytes(16).toString('base64');
    let e = configError({ TEMPORAL_ENCRYPTION_KEY: short, TEMPORAL_ENCRYPTION_KEYS_OLD: `old:${secret.slice(0, 20)}`, TEMPORAL_ENCRYPTION_KEY_ID: 'bad id!' });
    assert.match(e.message, /TEMPORAL_ENCRYPTION_KEY must be base64 of exactly 32 bytes .*\(value hidden: secret\)/);
    assert.match(e.message, /TEMPORAL_ENCRYPTION_KEYS_OLD entry 1 \(id "old"\) must hold a base64 key of exactly 32 bytes \(value hidden: secret\)/);
    assert.match(e.message, /TEMPORAL_ENCRYPTION_KEY_ID must be 1-64 letters/);
    assert.doesNotMatch(e.message, new RegExp(short.replace(/[+/=]/g, '.')));
    assert.doesNotMatch(e.message, new RegExp(secret.slice(0, 20).replace(/[+/=]/g, '.')));
    e = configError({ TEMPORAL_ENCRYPTION_KEY: 'not base64 at all!!' });
    assert.match(e.message, /TEMPORAL_ENCRYPTION_KEY must be base64/);
    e = configError({ TEMPORAL_ENCRYPTION_KEYS_OLD: `a:${key()}`, TEMPORAL_ENCRYPTION_KEY_ID: 'x' });
    assert.match(e.message, /TEMPORAL_ENCRYPTION_KEYS_OLD needs TEMPORAL_ENCRYPTION_KEY/);
    assert.match(e.message, /TEMPORAL_ENCRYPTION_KEY_ID needs TEMPORAL_ENCRYPTION_KEY/);
    e = configError({ TEMPORAL_ENCRYPTION_KEY: secret, TEMPORAL_ENCRYPTION_KEY_ID: 'same', TEMPORAL_ENCRYPTION_KEYS_OLD: `same:${key()}` });
    assert.match(e.message, /TEMPORAL_ENCRYPTION_KEYS_OLD must not reuse the current key's id "same"/);
    fs.mkdirSync(TMP, { recursive: true });
    const file = path.join(TMP, `helper6-badkeys-${process.pid}.json`);
    try {
      fs.writeFileSync(file, JSON.stringify({ current: 'b', keys: { a: secret } }));
      e = configError({ TEMPORAL_ENCRYPTION_KEY_FILE: file, TEMPORAL_ENCRYPTION_KEY: secret });
      assert.match(e.message, /TEMPORAL_ENCRYPTION_KEY_FILE "current" names key "b", which is not in "keys"; cannot be combined with TEMPORAL_ENCRYPTION_KEY/);
      assert.ok(!e.message.includes(secret));
      fs.writeFileSync(file, '{not json');
      assert.match(configError({ TEMPORAL_ENCRYPTION_KEY_FILE: file }).message, /TEMPORAL_ENCRYPTION_KEY_FILE must be a JSON file/);
    } finally {
      fs.rmSync(file, { force: true });
    }
    assert.match(configError({ TEMPORAL_ENCRYPTION_KEY_FILE: '/no/such/keys.json' }).message, /TEMPORAL_ENCRYPTION_KEY_FILE must be a readable file/);
    assert.match(configError({ CODEC_SERVER_TOKEN: 'short' }).message, /CODEC_SERVER_TOKEN must be at least 16 characters .*\(value hidden: secret\)/);
    // A key without an id gets a stable id derived from it; encryption is off without a key.
    const c = loadConfig({ TEMPORAL_ENCRYPTION_KEY: secret });
    assert.match(c.encryption!.keyId, /^k-[0-9a-f]{12}$/);
    assert.equal(loadConfig({ TEMPORAL_ENCRYPTION_KEY: secret }).encryption!.keyId, c.encryption!.keyId);
    assert.equal(loadConfig({}).encryption, undefined);
  });

  it('logging the codec (the SDK logs worker options at DEBUG) cannot print a key', () => {
    const secret = key();
    const codec = codecFor({ TEMPORAL_ENCRYPTION_KEY: secret });
    const dumped = JSON.stringify({ payloadCodecs: [codec] }) + inspect(codec, { depth: 5, showHidden: true });
    assert.ok(!dumped.includes(secret) && !dumped.includes(Buffer.from(secret, 'base64').toString('hex')), dumped);
  });
});

describe('codec server', () => {
  const token = randomBytes(24).toString('hex');
  const ui = 'http://127.0.0.1:8233';
  const k = key();
  const env = { TEMPORAL_ENCRYPTION_KEY: k, TEMPORAL_ENCRYPTION_KEY_ID: 'srv', CODEC_SERVER_TOKEN: token, TEMPORAL_UI_URL: ui, TEMPORAL_NAMESPACE: 'default' };
  const codec = codecFor(env);
  let server: RunningCodecServer;
  const lines: string[] = [];

  before(async () => {
    server = await startCodecServer(loadConfig(env), { port: 0, log: (l) => lines.push(l) });
  });
  after(async () => server?.close());

  const b64 = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('base64');
  const wire = (ps: Payload[]) => ({ payloads: ps.map((p) => ({ metadata: Object.fromEntries(Object.entries(p.metadata ?? {}).map(([kk, v]) => [kk, b64(v)])), data: b64(p.data) })) });
  const post = (pathName: string, body: unknown, headers: Record<string, string> = {}) =>
    fetch(`${server.url}${pathName}`, { method: 'POST', headers: { 'Content-Type': 'application/json', 'X-Namespace': 'default', ...headers }, body: JSON.stringify(body) });
  const bearer = { Authorization: `Bearer ${token}` };

  it('decodes with the token (any mount path, query ignored); refuses without it (401)', async () => {
    const encrypted = await codec.encode([json({ hello: 'world' })]);
    for (const p of ['/decode', '/default/decode', '/decode?preserveStorageRefs=true']) {
      const res = await post(p, wire(encrypted), bearer);
      assert.equal(res.status, 200, p);
      const body = (await res.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
      assert.equal(Buffer.from(body.payloads[0]!.metadata.encoding!, 'base64').toString(), 'json/plain');
      assert.deepEqual(JSON.parse(Buffer.from(body.payloads[0]!.data, 'base64').toString()), { hello: 'world' });
    }
    for (const headers of [{} as Record<string, string>, { Authorization: 'Bearer wrong-token-wrong-token' }, { Authorization: `Basic ${Buffer.from(`x:${token}`).toString('base64')}` }]) {
      const res = await post('/decode', wire(encrypted), headers);
      assert.equal(res.status, 401);
      assert.match(((await res.json()) as { error: string }).error, /missing or wrong token/);
    }
    assert.ok(lines.some((l) => /^POST \/decode 200 1 payloads \d+ ms$/.test(l)), lines.join('\n'));
    assert.ok(!lines.join('\n').includes('world'), 'the request log holds no payload contents');
  });

  it('encode answers payloads the workers decrypt (the UI starting a workflow with input)', async () => {
    const res = await post('/encode', wire([json({ started: 'from the UI' })]), bearer);
    assert.equal(res.status, 200);
    const body = (await res.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
    const p = body.payloads[0]!;
    assert.equal(Buffer.from(p.metadata.encoding!, 'base64').toString(), ENCRYPTED_ENCODING);
    const back = await codec.decode([{ metadata: Object.fromEntries(Object.entries(p.metadata).map(([kk, v]) => [kk, Buffer.from(v, 'base64')])), data: Buffer.from(p.data, 'base64') }]);
    assert.deepEqual(defaultPayloadConverter.fromPayload(back[0]!), { started: 'from the UI' });
  });

  it('CORS: the UI origin gets its preflight and headers; any other origin gets none', async () => {
    const preflight = (origin: string) =>
      fetch(`${server.url}/decode`, { method: 'OPTIONS', headers: { Origin: origin, 'Access-Control-Request-Method': 'POST', 'Access-Control-Request-Headers': 'authorization,content-type,x-namespace' } });
    const ok = await preflight(ui);
    assert.equal(ok.status, 204);
    assert.equal(ok.headers.get('access-control-allow-origin'), ui);
    assert.equal(ok.headers.get('access-control-allow-credentials'), 'true');
    assert.match(ok.headers.get('access-control-allow-methods') ?? '', /POST/);
    const allowed = (ok.headers.get('access-control-allow-headers') ?? '').toLowerCase().split(/,\s*/);
    for (const h of ['authorization', 'content-type', 'x-namespace']) assert.ok(allowed.includes(h), `allows ${h}`);
    for (const origin of ['http://evil.example', 'http://localhost:8233', 'http://127.0.0.1:8234']) {
      const no = await preflight(origin);
      assert.equal(no.status, 403, origin);
      assert.equal(no.headers.get('access-control-allow-origin'), null, origin);
      assert.equal(no.headers.get('access-control-allow-headers'), null, origin);
    }
    const encrypted = wire(await codec.encode([json(1)]));
    const fromUi = await post('/decode', encrypted, { ...bearer, Origin: ui });
    assert.equal(fromUi.status, 200);
    assert.equal(fromUi.headers.get('access-control-allow-origin'), ui);
    const foreign = await post('/decode', encrypted, { ...bearer, Origin: 'http://evil.example' });
    assert.equal(foreign.status, 403, 'a request from another origin is refused even with the token');
    assert.equal(foreign.headers.get('access-control-allow-origin'), null);
  });

  it('a browser signed in on the server page decodes with its session cookie (the UI with cross-origin credentials)', async () => {
    const page = await fetch(`${server.url}/`);
    assert.equal(page.status, 200);
    assert.match(await page.text(), /name="token"/);
    const wrong = await fetch(`${server.url}/session`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: 'token=nope' });
    assert.equal(wrong.status, 401);
    assert.equal(wrong.headers.get('set-cookie'), null);
    const signed = await fetch(`${server.url}/session`, { method: 'POST', headers: { 'Content-Type': 'application/x-www-form-urlencoded' }, body: new URLSearchParams({ token }).toString() });
    assert.equal(signed.status, 200);
    const setCookie = signed.headers.get('set-cookie') ?? '';
    assert.match(setCookie, /HttpOnly/);
    assert.match(setCookie, /SameSite=Strict/);
    assert.ok(!setCookie.includes(token), 'the cookie is not the token');
    const cookie = setCookie.split(';')[0]!;
    const res = await post('/decode', wire(await codec.encode([json('via cookie')])), { Cookie: cookie, Origin: ui });
    assert.equal(res.status, 200);
    const forged = await post('/decode', wire(await codec.encode([json('x')])), { Cookie: `${cookie.split('=')[0]}=${'0'.repeat(64)}`, Origin: ui });
    assert.equal(forged.status, 401);
  });

  it('names what is wrong: another namespace (403), a tampered payload or a bad body (400), GET (405)', async () => {
    const [p] = await codec.encode([json({ a: 1 })]);
    const ns = await post('/decode', wire([p!]), { ...bearer, 'X-Namespace': 'other-ns' });
    assert.equal(ns.status, 403);
    assert.match(((await ns.json()) as { error: string }).error, /serves namespace "default", not "other-ns"/);
    const data = Buffer.from(p!.data!);
    data[30] = data[30]! ^ 0xff;
    const tampered = await post('/decode', wire([{ ...p!, data }]), bearer);
    assert.equal(tampered.status, 400);
    assert.match(((await tampered.json()) as { error: string }).error, /failed authentication/);
    const bad = await post('/decode', { nope: 1 }, bearer);
    assert.equal(bad.status, 400);
    assert.equal((await fetch(`${server.url}/decode`, { headers: bearer })).status, 405);
  });

  it('refuses to start without a key or a token, naming the settings', async () => {
    await assert.rejects(startCodecServer(loadConfig({}), { port: 0 }), (e: Error) => {
      assert.ok(e instanceof ConfigError);
      assert.match(e.message, /TEMPORAL_ENCRYPTION_KEY \(or TEMPORAL_ENCRYPTION_KEY_FILE\) is required/);
      assert.match(e.message, /CODEC_SERVER_TOKEN is required/);
      return true;
    });
  });
});

/** Every Payload object inside a decoded history, with where it sits. */
function payloadsIn(value: unknown, where = ''): Array<{ where: string; payload: Payload }> {
  if (!value || typeof value !== 'object' || value instanceof Uint8Array) return [];
  const v = value as Record<string, unknown>;
  if (v.metadata && typeof v.metadata === 'object' && 'data' in v && !Array.isArray(v.metadata)) return [{ where, payload: v as Payload }];
  return Object.entries(v).flatMap(([k, child]) => payloadsIn(child, `${where}.${k}`));
}

describe('encryption end to end', () => {
  const token = randomBytes(24).toString('hex');
  const prefix = uniqueName('enc');
  const marker = `PINFLOWMARKER${randomBytes(6).toString('hex')}`;
  const dir = path.join(TMP, `helper6-enc-${process.pid}`);
  const config = testConfig({
    TEMPORAL_ENCRYPTION_KEY: key(),
    TEMPORAL_ENCRYPTION_KEY_ID: 'e2e',
    CODEC_SERVER_TOKEN: token,
    TEMPORAL_TASK_QUEUE: uniqueName('tq-enc'),
    PIPELINE_PREFIX: prefix,
    DUCKDB_PATH: path.join(dir, 'w.duckdb'),
  });

  before(async () => {
    quietRuntime();
    await ensureStack();
    fs.mkdirSync(dir, { recursive: true });
  });
  after(() => fs.rmSync(dir, { recursive: true, force: true }));

  it('a workflow run with encryption on: results decrypt for the client; the raw history holds no plaintext; the codec server and the CLI decode it', async () => {
    const client = await connectClient(config);
    const worker = await createWorker(config);
    let server: RunningCodecServer | undefined;
    try {
      const workflowId = uniqueName('enc-clean');
      const input = { prefix, outputRoot: `${marker}/` };
      const result = await worker.worker.runUntil(client.workflow.execute('batchCleaningWorkflow', { taskQueue: config.temporal.taskQueue, workflowId, args: [input] }));
      const cleaned = result as CleaningResult;
      assert.ok(cleaned.tables.pin_clean.location.includes(marker), 'the client decrypts the result');

      // The history as anyone with access to Temporal (or its UI) sees it: no codec.
      const raw = new Client({ connection: client.connection, namespace: config.temporal.namespace });
      const history = await raw.workflow.getHandle(workflowId).fetchHistory();
      const bytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
      assert.ok(bytes.length > 1000);
      assert.equal(bytes.indexOf(marker), -1, 'the marker is nowhere in the raw history');
      assert.equal(bytes.indexOf(Buffer.from(marker).toString('base64').slice(0, 16)), -1);
      const found = payloadsIn(history.events);
      const notEncrypted = found.filter((f) => text(f.payload.metadata?.encoding) !== ENCRYPTED_ENCODING && !f.where.includes('searchAttributes'));
      assert.deepEqual(notEncrypted.map((f) => f.where), [], 'every payload but the (indexed) search attributes is encrypted');
      assert.ok(found.length >= 4, `${found.length} payloads`);
      const started = history.events![0]!.workflowExecutionStartedEventAttributes!.input!.payloads![0]!;
      assert.equal(text(started.metadata![KEY_ID_METADATA]), 'e2e');

      // The codec server decodes it for the UI / CLI.
      server = await startCodecServer(config, { port: 0 });
      const res = await fetch(`${server.url}/decode`, {
        method: 'POST',
        headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'X-Namespace': config.temporal.namespace },
        body: JSON.stringify({ payloads: [{ metadata: Object.fromEntries(Object.entries(started.metadata!).map(([kk, v]) => [kk, Buffer.from(v).toString('base64')])), data: Buffer.from(started.data!).toString('base64') }] }),
      });
      assert.equal(res.status, 200);
      const decoded = (await res.json()) as { payloads: Array<{ data: string }> };
      assert.deepEqual(JSON.parse(Buffer.from(decoded.payloads[0]!.data, 'base64').toString()), input);

      // The real temporal CLI, as a user runs it, through the codec server.
      const cli = temporalCliPath(config);
      if (cli) {
        // Asynchronously: the codec server answering the CLI runs in this process.
        const show = (extra: string[]) =>
          new Promise<{ status: number | null; stdout: string; stderr: string }>((resolve) => {
            const args = ['workflow', 'show', '-w', workflowId, '--address', config.temporal.address, '--namespace', config.temporal.namespace, '--output', 'json', ...extra];
            const child = spawn(cli, args, { timeout: 60_000, killSignal: 'SIGKILL' });
            let stdout = '';
            let stderr = '';
            child.stdout.on('data', (d) => (stdout += d));
            child.stderr.on('data', (d) => (stderr += d));
            child.on('close', (status) => resolve({ status, stdout, stderr }));
          });
        const withToken = await show(['--codec-endpoint', server.url, '--codec-auth', `Bearer ${token}`]);
        assert.equal(withToken.status, 0, withToken.stderr);
        // JSON output keeps payload data base64 (proto3 JSON): look inside it.
        const payloadText = (out: string) => [...out.matchAll(/"data":\s*"([A-Za-z0-9+/=]*)"/g)].map((m) => Buffer.from(m[1]!, 'base64').toString('utf8')).join('\n');
        assert.ok(payloadText(withToken.stdout).includes(marker), 'the CLI shows decrypted payloads through the codec server');
        assert.ok(!withToken.stdout.includes(Buffer.from(ENCRYPTED_ENCODING).toString('base64')), 'every payload decoded');
        const plain = await show([]);
        assert.equal(plain.status, 0, plain.stderr);
        assert.ok(!payloadText(plain.stdout).includes(marker), 'without the codec server the CLI sees ciphertext');
        const noToken = await show(['--codec-endpoint', server.url]);
        assert.ok(!payloadText(noToken.stdout).includes(marker), 'without the token the codec server decodes nothing');
      }
    } finally {
      await server?.close();
      await worker.close();
      await client.connection.close();
    }
  });

  it('failing runs with encryption on: failure messages and stack traces are encrypted in the raw history ("Encoded failure"); the client and the codec server decode them', async () => {
    const client = await connectClient(config);
    const worker = await createWorker(config);
    const server = await startCodecServer(config, { port: 0 });
    try {
      // A failure raised inside the workflow (the bundle's failure converter) and one raised
      // by an activity (the worker's), each carrying the marker in its message.
      const failMarker = `PINFLOWFAIL${randomBytes(6).toString('hex')}`;
      const runs = [
        { workflowId: uniqueName('enc-fail-wf'), args: [{ prefix: `Bad_${failMarker}` }], expect: new RegExp(`invalid cleaning input: prefix "Bad_${failMarker}" is not a pipeline prefix`) },
        {
          workflowId: uniqueName('enc-fail-act'),
          args: [{ prefix, source: { kind: 'local', dir: `/nonexistent/${failMarker}` } }],
          expect: new RegExp(`cleaning input folder /nonexistent/${failMarker} does not exist on the worker`),
        },
      ];
      const errors = await worker.worker.runUntil(
        Promise.all(
          runs.map((r) =>
            client.workflow.execute('batchCleaningWorkflow', { taskQueue: config.temporal.taskQueue, workflowId: r.workflowId, args: r.args }).then(
              () => new Error(`${r.workflowId} should have failed`),
              (e: unknown) => e,
            ),
          ),
        ),
      );
      for (const [i, r] of runs.entries()) {
        const err = errors[i];
        // The client (with the codec and the failure converter) sees the original message.
        let root = err as { cause?: unknown; message?: string };
        while (root.cause) root = root.cause as typeof root;
        assert.match(String(root.message), r.expect, `${r.workflowId}: the client decodes the failure`);

        // The raw history, as the server (or anyone reading it without the key) has it.
        const raw = new Client({ connection: client.connection, namespace: config.temporal.namespace });
        const history = await raw.workflow.getHandle(r.workflowId).fetchHistory();
        const bytes = Buffer.from(temporal.api.history.v1.History.encode(history).finish());
        assert.equal(bytes.indexOf(failMarker), -1, `${r.workflowId}: the marker is nowhere in the raw history`);
        assert.equal(bytes.indexOf(Buffer.from(failMarker).toString('base64').slice(0, 16)), -1);
        const failures = failuresIn(history.events);
        assert.ok(failures.length >= 1, `${r.workflowId}: failures found`);
        for (const f of failures) {
          assert.equal(f.message, 'Encoded failure', `${r.workflowId}: every failure message is encoded`);
          assert.ok(!f.stackTrace, 'no stack trace in clear');
          assert.equal(text(f.encodedAttributes?.metadata?.encoding), ENCRYPTED_ENCODING, 'the encoded attributes are encrypted');
        }

        // The codec server (what the Web UI calls) decodes the encoded attributes back.
        const decoded = await Promise.all(
          failures.map(async (f) => {
            const res = await fetch(`${server.url}/decode`, {
              method: 'POST',
              headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json', 'X-Namespace': config.temporal.namespace },
              body: JSON.stringify(payloadsToJson([f.encodedAttributes as Payload])),
            });
            assert.equal(res.status, 200);
            const body = (await res.json()) as { payloads: Array<{ metadata: Record<string, string>; data: string }> };
            assert.equal(Buffer.from(body.payloads[0]!.metadata.encoding!, 'base64').toString(), 'json/plain');
            return JSON.parse(Buffer.from(body.payloads[0]!.data, 'base64').toString()) as { message: string; stack_trace: string };
          }),
        );
        assert.ok(
          decoded.some((d) => r.expect.test(d.message)),
          `${r.workflowId}: the codec server gives the original message back: ${decoded.map((d) => d.message).join(' | ')}`,
        );
        assert.ok(decoded.some((d) => /\bat\b/.test(d.stack_trace)), `${r.workflowId}: the stack trace is carried in the encrypted attributes`);
      }
    } finally {
      await server.close();
      await worker.close();
      await client.connection.close();
    }
  });
});

/** Every Failure object in a history: the failure of an event, its causes, and last failures. */
function failuresIn(value: unknown): Array<{ message?: string | null; stackTrace?: string | null; encodedAttributes?: Payload | null }> {
  const out: Array<{ message?: string | null; stackTrace?: string | null; encodedAttributes?: Payload | null }> = [];
  const walk = (v: unknown, key: string) => {
    if (!v || typeof v !== 'object' || v instanceof Uint8Array) return;
    if ((key === 'failure' || key === 'cause' || key === 'lastFailure') && !Array.isArray(v)) out.push(v as (typeof out)[number]);
    for (const [k, child] of Object.entries(v)) walk(child, k);
  };
  walk(value, '');
  return out;
}
