/**
 * The daily pipeline's legacy stage (`legacyDag`: an MWAA DAG run between landing and cleaning)
 * on the command line, without a server: `npm run pipeline -- --legacy-dag ENV/DAG` (and
 * `--legacy-dag-conf`) into the workflow input; a malformed value exits 2 naming --legacy-dag.
 * test/integration/daily-legacy-dag.test.ts runs the stage through dailyPipelineWorkflow.
 */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { parseLegacyDag } from '../../common/daily';
import { parsePipelineArgs } from '../../scripts/pipeline';
import { runScriptAsync, testConfig } from '../helpers/env';

describe('daily pipeline: the legacy DAG stage', () => {
  const config = testConfig();

  it('the CLI: --legacy-dag ENV/DAG (and --legacy-dag-conf) into the input; a malformed value exits 2 naming --legacy-dag', async () => {
    const args = parsePipelineArgs(['--date', '2024-05-01', '--legacy-dag', 'MyAirflowEnvironment/0a1d8d4bd0a5_dag', '--legacy-dag-conf', '{"a":1}'], config);
    assert.deepEqual(args.input.legacyDag, { environment: 'MyAirflowEnvironment', dagId: '0a1d8d4bd0a5_dag', conf: { a: 1 } });
    assert.equal(parsePipelineArgs(['--date', '2024-05-01'], config).input.legacyDag, undefined);
    assert.deepEqual(parseLegacyDag('e/d'), { environment: 'e', dagId: 'd' });
    for (const [argv, message] of [
      [['--legacy-dag', 'just-a-dag'], /^--legacy-dag "just-a-dag" must be ENVIRONMENT\/DAG_ID/],
      [['--legacy-dag', 'env/dag/extra'], /^--legacy-dag "env\/dag\/extra" must be ENVIRONMENT\/DAG_ID/],
      [['--legacy-dag', '9env/my dag'], /^--legacy-dag "9env\/my dag": "9env" is not an MWAA environment name.*\n--legacy-dag "9env\/my dag": "my dag" is not an Airflow DAG id/],
      [['--legacy-dag', 'env/'], /^--legacy-dag "env\/": "" is not an Airflow DAG id/],
      [['--legacy-dag-conf', '{}'], /^--legacy-dag-conf needs --legacy-dag ENV\/DAG/],
      [['--legacy-dag', 'env/dag', '--legacy-dag-conf', '[1]'], /^--legacy-dag-conf must be a JSON object/],
      [['--legacy-dag', 'env/dag', '--legacy-dag-conf', '{nope'], /^--legacy-dag-conf is not JSON/],
    ] as Array<[string[], RegExp]>) {
      assert.throws(() => parsePipelineArgs(argv, config), (err: Error) => err.constructor.name === 'UsageError' && message.test(err.message), argv.join(' '));
    }
    const res = await runScriptAsync('pipeline', ['--legacy-dag', 'MyAirflowEnvironment']);
    assert.equal(res.code, 2, res.stderr);
    assert.match(res.stderr, /^--legacy-dag "MyAirflowEnvironment" must be ENVIRONMENT\/DAG_ID .*\nusage: npm run pipeline -- .*\[--legacy-dag ENV\/DAG/);
  });
});
