/**
 * The Temporal Web UI shows encrypted payloads decrypted through the codec server: a run
 * with encryption on, the dev server's UI in headless Chromium with its Codec Server browser
 * settings pointing at `npm run codec-server`'s server ("Include cross-origin credentials"
 * on), the browser signed in on the codec server's page. Without signing in, the UI gets
 * 401s and shows no plaintext. A failed run's failure message (encrypted too: "Encoded
 * failure" in the raw history) shows decrypted the same way. Screenshots:
 * .data/test-artifacts/ui-codec-*.png.
 */
import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser, BrowserContext } from 'playwright-core';
import { PROJECT_ROOT } from '../../config';
import { launchChromium } from '../tools/chromium';
import { startCodecServer, type RunningCodecServer } from '../../scripts/codec-server';
import { connectClient } from '../../workers/client';
import { createWorker } from '../../workers/worker';
import { ensureStack, quietRuntime, testConfig, uniqueName } from '../helpers/env';

const ARTIFACTS = path.join(PROJECT_ROOT, '.data', 'test-artifacts');

describe('Web UI decrypts payloads through the codec server', () => {
  const token = randomBytes(24).toString('hex');
  const marker = `PINFLOWUIMARKER${randomBytes(5).toString('hex')}`;
  const failMarker = `PINFLOWUIFAIL${randomBytes(5).toString('hex')}`;
  const prefix = uniqueName('enc-ui');
  const dir = path.join(PROJECT_ROOT, '.cache', 'tmp', `helper6-ui-${process.pid}`);
  const config = testConfig({
    TEMPORAL_ENCRYPTION_KEY: randomBytes(32).toString('base64'),
    TEMPORAL_ENCRYPTION_KEY_ID: 'ui-test',
    CODEC_SERVER_TOKEN: token,
    TEMPORAL_TASK_QUEUE: uniqueName('tq-enc-ui'),
    PIPELINE_PREFIX: prefix,
    DUCKDB_PATH: path.join(dir, 'w.duckdb'),
  });
  const ui = config.temporal.uiUrl;
  const workflowId = uniqueName('enc-ui-clean');
  const failedId = uniqueName('enc-ui-failed');
  let server: RunningCodecServer;
  let browser: Browser;
  const requests: Array<{ url: string; status: number }> = [];

  before(async () => {
    quietRuntime();
    await ensureStack();
    fs.mkdirSync(dir, { recursive: true });
    fs.mkdirSync(ARTIFACTS, { recursive: true });
    const client = await connectClient(config);
    const worker = await createWorker(config);
    try {
      await worker.worker.runUntil(async () => {
        await client.workflow.execute('batchCleaningWorkflow', { taskQueue: config.temporal.taskQueue, workflowId, args: [{ prefix, outputRoot: `${marker}/` }] });
        // A run that fails with the marker in its failure message (invalid input, raised in the workflow).
        await client.workflow.execute('batchCleaningWorkflow', { taskQueue: config.temporal.taskQueue, workflowId: failedId, args: [{ prefix: `Bad_${failMarker}` }] }).then(
          () => assert.fail('the run should fail'),
          (err: Error) => assert.equal(err.name, 'WorkflowFailedError'),
        );
      });
    } finally {
      await worker.close();
      await client.connection.close();
    }
    server = await startCodecServer(config, { port: 0, log: (l) => requests.push({ url: l.split(' ')[1]!, status: Number(l.split(' ')[2]) }) });
    browser = await launchChromium();
  });
  after(async () => {
    await browser?.close();
    await server?.close();
    fs.rmSync(dir, { recursive: true, force: true });
  });

  /** A browser profile whose UI decodes through our codec server (the Codec Server settings, stored in the browser). */
  async function uiContext(): Promise<BrowserContext> {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 } });
    // Every page step bounded: a browser that stops answering fails the test, not the suite's clock.
    context.setDefaultTimeout(30_000);
    context.setDefaultNavigationTimeout(30_000);
    const settings = { endpoint: server.url, includeCredentials: true, passAccessToken: false, overrideRemoteCodecConfiguration: true };
    await context.addInitScript({
      content: `if (location.origin === ${JSON.stringify(new URL(ui).origin)}) {
        for (const [k, v] of Object.entries(${JSON.stringify(settings)})) localStorage.setItem(k, JSON.stringify(v));
      }`,
    });
    return context;
  }

  async function inputText(context: BrowserContext, shot: string, id = workflowId, status = 'Completed'): Promise<string> {
    const page = await context.newPage();
    await page.goto(`${ui}/namespaces/${config.temporal.namespace}/workflows/${encodeURIComponent(id)}`);
    await page.getByText(status, { exact: true }).filter({ visible: true }).first().waitFor({ timeout: 30_000 });
    // The UI decodes after the page renders: wait for it to reach the codec server.
    for (const deadline = Date.now() + 15_000; !requests.some((r) => r.url === '/decode') && Date.now() < deadline; ) await page.waitForTimeout(200);
    await page.waitForTimeout(1_500);
    await page.screenshot({ path: path.join(ARTIFACTS, shot), fullPage: true });
    const text = (await page.textContent('body')) ?? '';
    await page.close();
    return text;
  }

  it('signed in on the codec server page, the run page shows the decrypted input', { timeout: 120_000 }, async () => {
    const context = await uiContext();
    try {
      const login = await context.newPage();
      await login.goto(`${server.url}/`);
      await login.fill('input[name="token"]', token);
      await Promise.all([login.waitForLoadState(), login.click('button[type="submit"]')]);
      assert.match((await login.textContent('body')) ?? '', /This browser is signed in/);
      await login.close();
      const text = await inputText(context, 'ui-codec-decrypted.png');
      assert.ok(text.includes(marker), 'the UI shows the decrypted input');
      assert.ok(requests.some((r) => r.url === '/decode' && r.status === 200), JSON.stringify(requests));
    } finally {
      await context.close();
    }
  });

  it("signed in, a failed run's page shows its decrypted failure message; not signed in, only \"Encoded failure\"", { timeout: 120_000 }, async () => {
    const signedIn = await uiContext();
    try {
      const login = await signedIn.newPage();
      await login.goto(`${server.url}/`);
      await login.fill('input[name="token"]', token);
      await Promise.all([login.waitForLoadState(), login.click('button[type="submit"]')]);
      await login.close();
      requests.length = 0;
      const text = await inputText(signedIn, 'ui-codec-failure-decrypted.png', failedId, 'Failed');
      // The failure's encoded attributes, decoded (shown as JSON: the quotes escaped).
      assert.match(text, new RegExp(`invalid cleaning input: prefix \\\\?"Bad_${failMarker}\\\\?" is not a pipeline prefix`), 'the UI shows the decrypted failure message');
    } finally {
      await signedIn.close();
    }
    const anonymous = await uiContext();
    try {
      requests.length = 0;
      const text = await inputText(anonymous, 'ui-codec-failure-refused.png', failedId, 'Failed');
      assert.ok(!text.includes(failMarker) && !text.includes('invalid cleaning input'), 'no failure plaintext without the token');
      assert.ok(text.includes('Encoded failure'), 'the UI shows the encoded placeholder');
    } finally {
      await anonymous.close();
    }
  });

  it('not signed in, the codec server refuses the UI (401) and no plaintext shows', { timeout: 120_000 }, async () => {
    requests.length = 0;
    const context = await uiContext();
    try {
      const text = await inputText(context, 'ui-codec-refused.png');
      assert.ok(!text.includes(marker), 'no plaintext without the token');
      assert.ok(requests.some((r) => r.url === '/decode' && r.status === 401), JSON.stringify(requests));
      assert.ok(!requests.some((r) => r.url === '/decode' && r.status === 200));
    } finally {
      await context.close();
    }
  });
});
