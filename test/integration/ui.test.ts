/**
 * The Temporal Web UI of the dev server shows the daily pipeline: headless Chromium (Debian's,
 * driven by playwright-core) finds the schedule on the Schedules page and a completed daily run
 * on the Workflows page, with its stage search attributes. Screenshots are saved to
 * .data/test-artifacts/ui-*.png.
 */
import assert from 'node:assert/strict';
import fs from 'node:fs';
import path from 'node:path';
import { after, before, describe, it } from 'node:test';
import type { Browser } from 'playwright-core';
import type { TestWorkflowEnvironment } from '@temporalio/testing';
import { PROJECT_ROOT } from '../../config';
import { logicalDateOf } from '../../common/daily';
import { launchChromium } from '../tools/chromium';
import { backgroundWorker, ensureStack, quietRuntime, runScriptAsync, testConfig, uniqueName, workflowTestEnv } from '../helpers/env';

const ARTIFACTS = path.join(PROJECT_ROOT, '.data', 'test-artifacts');

describe('Temporal UI shows the schedule and a completed daily run', () => {
  let env: TestWorkflowEnvironment;
  let worker: { stop: () => Promise<void> } | undefined;
  let browser: Browser;
  const prefix = uniqueName('ui');
  const taskQueue = uniqueName('tq-ui');
  const vars = { PIPELINE_PREFIX: prefix, TEMPORAL_TASK_QUEUE: taskQueue };
  const config = testConfig(vars);

  before(async () => {
    quietRuntime();
    await ensureStack();
    env = await workflowTestEnv(config);
    worker = await backgroundWorker(env, config);
    browser = await launchChromium();
    fs.mkdirSync(ARTIFACTS, { recursive: true });
  });
  after(async () => {
    await browser?.close();
    await runScriptAsync('schedule', ['delete'], vars);
    await worker?.stop();
    await env?.teardown();
  });

  it('schedule page and run page, with screenshots', async () => {
    assert.equal((await runScriptAsync('schedule', ['create', '--output-root', `${prefix}/`], vars)).code, 0);
    assert.equal((await runScriptAsync('schedule', ['trigger'], vars)).code, 0);
    const date = logicalDateOf(new Date());
    const runId = `daily-pipeline-${prefix}-${date}`;
    const deadline = Date.now() + 120_000;
    for (;;) {
      try {
        await env.client.workflow.getHandle(runId).result();
        break;
      } catch (err) {
        if (Date.now() > deadline) throw err;
        await new Promise((r) => setTimeout(r, 500));
      }
    }

    const page = await browser.newPage({ viewport: { width: 1400, height: 900 } });
    const ui = config.temporal.uiUrl;
    await page.goto(`${ui}/namespaces/default/schedules`, { waitUntil: 'networkidle' });
    const scheduleLink = page.getByText(`daily-pipeline-${prefix}`, { exact: true }).first();
    await scheduleLink.waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'ui-schedules.png'), fullPage: true });
    await scheduleLink.click();
    await page.getByText('0 0 * * *').first().waitFor({ timeout: 30_000 }).catch(() => undefined);
    await page.screenshot({ path: path.join(ARTIFACTS, 'ui-schedule.png'), fullPage: true });

    const query = encodeURIComponent(`PipelinePrefix="${prefix}"`);
    await page.goto(`${ui}/namespaces/default/workflows?query=${query}`, { waitUntil: 'networkidle' });
    const row = page.getByText(runId, { exact: true }).first();
    await row.waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'ui-workflows.png'), fullPage: true });
    await page.goto(`${ui}/namespaces/default/workflows/${encodeURIComponent(runId)}`, { waitUntil: 'networkidle' });
    await page.getByText('Completed').first().waitFor({ timeout: 30_000 });
    await page.getByText('dailyPipelineWorkflow').first().waitFor({ timeout: 30_000 });
    await page.screenshot({ path: path.join(ARTIFACTS, 'ui-daily-run.png'), fullPage: true });
    const text = await page.textContent('body');
    assert.ok(text?.includes(runId), 'run page names the run');
    for (const f of ['ui-schedules.png', 'ui-schedule.png', 'ui-workflows.png', 'ui-daily-run.png']) assert.ok(fs.statSync(path.join(ARTIFACTS, f)).size > 10_000, f);
    await page.close();
  });
});
