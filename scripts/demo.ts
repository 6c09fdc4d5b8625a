/**
 * npm run demo: the whole job end to end on the local defaults. Brings the stack up
 * (installing on first use), checks every system, loads the real sample into MySQL, emulates
 * it onto Kafka, then runs today's dailyPipelineWorkflow (landing -> cleaning -> analytics)
 * and prints where the analytics, the report and the run in the Temporal UI are.
 */
import { PROJECT_ROOT, type Config } from '../config';
import { runDoctor } from './doctor';
import { loadDir } from './db-load';
import { runEmulate } from './emulate';
import { runPipeline } from './pipeline';
import { todayUtc } from '../common/daily';
import { uiLink } from '../workers/client';
import { SAMPLE_DIR_DEFAULT } from '../cli/paths';
import path from 'node:path';
import { stackUp } from '../stack';
import { defineCommand } from '../cli/args';
import { runCli } from '../cli/command';

export const COMMAND = defineCommand({
  script: 'demo',
  options: {},
  about:
    'The whole job end to end on the local defaults: brings the stack up (installing on first use), checks every system, loads the real sample into MySQL, ' +
    "emulates it onto Kafka, then runs today's daily pipeline (landing -> cleaning -> analytics) and prints where the analytics, the report and the run in the Temporal UI are.",
});

function step(n: number, total: number, what: string): void {
  console.log(`\n== [${n}/${total}] ${what}`);
}

async function main(config: Config): Promise<void> {
  const started = Date.now();
  const total = 5;
  step(1, total, 'local stack (Temporal, Kafka, MySQL, S3)');
  await stackUp(config);
  step(2, total, 'doctor: every system through a Temporal workflow');
  const report = await runDoctor(config);
  if (!report.ok) throw new Error(`doctor found systems down: ${report.systems.filter((s) => !s.ok).map((s) => s.detail).join(' | ')}`);
  step(3, total, `source database: the real sample (${SAMPLE_DIR_DEFAULT})`);
  await loadDir(config, SAMPLE_DIR_DEFAULT, { replace: true, log: (l) => console.log(l) });
  step(4, total, `emulation: every row once as events on ${config.prefix}.pin|geo|user`);
  const emu = await runEmulate(config, { input: { prefix: config.prefix, sink: 'kafka', rate: 'max', selection: { mode: 'all' } }, wait: true });
  if (!emu.result || emu.result.sent === 0) throw new Error('the emulation sent nothing');
  const out = path.join(PROJECT_ROOT, 'out', 'analytics');
  step(5, total, `daily pipeline for ${todayUtc(Date.now())}: landing (topics -> s3://${config.s3.bucket}/topics/, exactly once), then cleaning + analytics on ${config.warehouse.kind}; outputs in ${path.relative(PROJECT_ROOT, out)}/`);
  const daily = await runPipeline(config, { input: { prefix: config.prefix, date: todayUtc(Date.now()) }, wait: true, out });
  if (!daily.report) throw new Error('the pipeline wrote no report');
  console.log(`\ndemo finished in ${((Date.now() - started) / 1000).toFixed(1)} s.\n  analytics: ${out}/<name>.json\n  report:    ${daily.report}\n  Temporal UI: ${uiLink(config, daily.workflowId)}`);
}

if (require.main === module) runCli(COMMAND, main);
