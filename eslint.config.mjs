// Lint rules. The sandbox rules matter most: workflow code runs in Temporal's deterministic
// sandbox, so it may not import Node built-ins, I/O libraries or activity implementations
// (only their types, for proxyActivities); common/ is imported by workflow code, so it is held
// to the same rules.
import js from '@eslint/js';
import tseslint from 'typescript-eslint';
import { builtinModules } from 'node:module';

const nodeBuiltins = builtinModules.flatMap((m) => [m, `node:${m}`]);
/** I/O libraries by exact name, and by scope. */
const ioLibraries = ['kafkajs', 'mysql2', 'mysql2/promise', '@temporalio/client', '@temporalio/worker', '@temporalio/activity'];
const ioScopes = ['@aws-sdk/*', '@smithy/*', '@duckdb/*', '@databricks/*'];
/**
 * The project's Node-only modules, as seen from a folder beside them. mwaa/failures is pure
 * constants, the one mwaa/ module workflows import (its contract says so); the rest of mwaa/
 * talks to AWS, runs activities or is a command.
 */
const nodeOnlyModules = ['../config', '../config/*', '../adapters', '../adapters/*', '../workers', '../workers/*', '../scripts/*', '../cli/*', '../stack', '../stack/*', '../report', '../report/*', '../sql/*', '../bench/*', '../mwaa/*', '!../mwaa/failures'];
/** Node's globals: neither the sandbox nor a workflow-safe module has them. */
const nodeGlobals = ['process', 'setImmediate', 'require', '__dirname', 'Buffer'];

/** The import and global rules of code that runs in the workflow sandbox. */
function sandboxRules({ noBuiltins, noIo }) {
  return {
    '@typescript-eslint/no-restricted-imports': [
      'error',
      {
        paths: [
          ...nodeBuiltins.map((name) => ({ name, message: noBuiltins })),
          ...ioLibraries.map((name) => ({ name, message: noIo })),
        ],
        patterns: [
          { group: ioScopes, message: noIo },
          { group: ['../activities', '../activities/*'], allowTypeImports: true, message: 'Import activities by type only (proxyActivities).' },
          { group: nodeOnlyModules, message: 'Not workflow-safe: reads the environment or starts processes.' },
        ],
      },
    ],
    'no-restricted-globals': ['error', ...nodeGlobals],
  };
}

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
    rules: sandboxRules({ noBuiltins: 'Workflow code is deterministic: no Node built-ins.', noIo: 'Workflow code may not do I/O; call an activity instead.' }),
  },
  {
    files: ['common/**/*.ts'],
    rules: sandboxRules({
      noBuiltins: 'common/ runs in the workflow sandbox too: no Node built-ins (Node-only code goes in config/, adapters/ or workers/).',
      noIo: 'common/ may not do I/O (it runs in the workflow sandbox too); put it in adapters/ or activities/.',
    }),
  },
);
