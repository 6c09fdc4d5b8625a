/**
 * Payload encryption end to end on the stack: a workflow run with encryption on, whose raw
 * history holds no plaintext of its input, results or failures, decoded by the client, the
 * codec server and the temporal CLI. The codec and the codec server alone:
 * test/unit/codec.test.ts.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import { Client } from '@temporalio/client';
import type { Payload } from '@temporalio/common';
import { temporal } from '@temporalio/proto';
import { PROJECT_ROOT } from '../../config';
import type { CleaningResult } from '../../common/cleaning';
import { payloadsToJson, startCodecServer, type RunningCodecServer } from '../../scripts/codec-server';
import { temporalCliPath } from '../../stack/temporal-server';
import { connectClient } from '../../workers/client';
import { ENCRYPTED_ENCODING, KEY_ID_METADATA } from '../../workers/codec';
import { createWorker } from '../../workers/worker';
import { ensureStack, quietRuntime, testConfig, uniqueName } from '../helpers/env';

const TMP = path.join(PROJECT_ROOT, '.cache', 'tmp');
const key = () => randomBytes(32).toString('base64');
const text = (b: Uint8Array | null | undefined) => Buffer.from(b ?? new Uint8Array()).toString('utf8');

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
