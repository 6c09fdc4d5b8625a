// Lint rules. The workflow rule is the one that matters most: workflow code runs in
// Temporal's deterministic sandbox, so it may not import Node built-ins, I/O libraries or
// activity implementations (only their types, for proxyActivities).
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);

export default tseslint.config(
  { ignores: ['node_modules/**', '.cache/**', '.data/**', 'dist/**', 'test-results/**', 'out/**'] },
  js.configs.recommended,
  ...tseslint.configs.recommended,
  {
    rules: {
      '@typescript-eslint/no-unused-vars': ['error', { argsIgnorePattern: '^_', varsIgnorePattern: '^_' }],
      '@typescript-eslint/no-floating-promises': 'off',
    },
  },
  {
    files: ['workflows/**/*.ts'],
    rules: {
      '@typescript-eslint/no-restricted-imports': [
        'error',
        {
          paths: [
            ...nodeBuiltins.map((name) => ({ name, message: 'Workflow code is deterministic: no Node built-ins.' })),
            ...['kafkajs', 'mysql2', 'mysql2/promise', '@aws-sdk/client-s3', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'].map(
              (name) => ({ name, message: 'Workflow code may not do I/O; call an activity instead.' }),
            ),
          ],
          patterns: [
            { group: ['@aws-sdk/*', '@smithy/*', '@duckdb/*', '@databricks/*'], message: 'Workflow code may not do I/O; call an activity instead.' },
            { group: ['../activities', '../activities/*'], allowTypeImports: true, message: 'Import activities by type only (proxyActivities).' },
            { group: ['../config', '../config/*', '../adapters/*', '../mwaa/adapter', '../mwaa/cli', '../sql/*', '../workers/*', '../scripts/*', '../cli/*', '../stack/*', '../report/*'], message: 'Not workflow-safe: reads the environment or starts processes.' },
          ],
        },
      ],
      'no-restricted-globals': ['error', 'process', 'setImmediate', 'require', '__dirname'],
    },
  },
);
