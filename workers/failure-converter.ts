/**
 * The failure converter used when payload encryption is on (workers/codec.ts `dataConverterOf`):
 * Temporal's DefaultFailureConverter with `encodeCommonAttributes`, which moves every failure's
 * message and stack trace into its `encodedAttributes` payload (the message left in clear
 * reads "Encoded failure"); the payload codec then encrypts that payload like any other.
 *
 * Loaded by path (`failureConverterPath`, the SDK 1.24 way): `require`d by clients and
 * workers, and bundled into the workflow code (workers/worker.ts `workflowBundle`) so that
 * failures raised inside workflows are encoded too. Must stay workflow-safe: it imports
 * only @temporalio/common.
 */
import { DefaultFailureConverter } from '@temporalio/common';

export const failureConverter = new DefaultFailureConverter({ encodeCommonAttributes: true });
