/**
 * Payload encryption without a server: the AES-256-GCM codec (round trip, rotation, wrong key,
 * tampering), its settings, and the codec server (token, CORS, session cookie, the Temporal
 * codec protocol) on a port of its own. test/integration/codec.test.ts runs workflows with
 * encryption on against the stack.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { inspect } from 'node:util';
import { after, before, describe, it } from 'node:test';
import type { Payload } from '@temporalio/common';
import { defaultPayloadConverter } from '@temporalio/common';
import { ConfigError, loadConfig, PROJECT_ROOT } from '../../config';
import { startCodecServer, type RunningCodecServer } from '../../scripts/codec-server';
import { AesGcmCodec, ENCRYPTED_ENCODING, KEY_ID_METADATA, keyringOf, PayloadDecryptionError } from '../../workers/codec';
import { configError } from '../helpers/secured';

const TMP = path.join(PROJECT_ROOT, '.cache', 'tmp');
const key = () => randomBytes(32).toString('base64');
const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');
const json = (v: unknown) => defaultPayloadConverter.toPayload(v);
const codecFor = (env: Record<string, string>) => new AesGcmCodec(keyringOf(loadConfig(env))!);

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
