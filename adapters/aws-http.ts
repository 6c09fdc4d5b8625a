/**
 * The HTTP handler every AWS SDK client of the project uses (S3, Kinesis): plain HTTP/1.1
 * through Node's agents, keep-alive, 64 sockets per agent, a 5 s connection timeout and the
 * caller's request timeout. HTTP/1.1 on purpose: the SDK's default for Kinesis is HTTP/2,
 * which kinesalite's plain-http server does not speak. Importing this module also silences the
 * pinned SDK's notice about future Node releases (it supports this machine's Node 20).
 */
import http from 'node:http';
import https from 'node:https';
import { NodeHttpHandler } from '@smithy/node-http-handler';

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= 'true';

export function awsRequestHandler(requestTimeoutMs: number): NodeHttpHandler {
  return new NodeHttpHandler({
    connectionTimeout: 5_000,
    requestTimeout: requestTimeoutMs,
    httpAgent: new http.Agent({ keepAlive: true, maxSockets: 64 }),
    httpsAgent: new https.Agent({ keepAlive: true, maxSockets: 64 }),
  });
}
