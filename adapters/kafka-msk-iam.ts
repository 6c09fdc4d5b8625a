/**
 * Amazon MSK IAM authentication for kafkajs: an OAUTHBEARER token provider.
 *
 * Contract: `mskIamTokenProvider({ region })` returns the function kafkajs calls as
 * `sasl.oauthBearerProvider` on every (re)authentication of every broker connection. The token
 * is AWS's `aws-msk-iam-sasl-signer-js` token (base64url of a SigV4-presigned URL
 * `https://kafka.<region>.amazonaws.com/?Action=kafka-cluster%3AConnect&...&X-Amz-Expires=...`),
 * signed with credentials from the AWS default chain (environment, profile, SSO, web identity,
 * container and instance roles). One token is cached and shared by all connections; it is
 * renewed when less than `refreshMarginMs` (default 60 s) of its lifetime is left, and
 * concurrent callers wait for the same renewal. A signing failure is thrown as an
 * `MskIamTokenError` (kafkajs passes it through its connect); no credentials at all is
 * classified non-retryable by `common/errors.ts`. The token is a credential: never logged,
 * never in an error.
 */
import { generateAuthToken, type GenerateAuthTokenResponse } from 'aws-msk-iam-sasl-signer-js';

export interface MskIamTokenOptions {
  region: string;
  /** Renew the cached token when less than this is left before it expires. */
  refreshMarginMs?: number;
  /** The clock (tests move it to a token's expiry). */
  now?: () => number;
  /** Signs a new token (default: the signer with the AWS default credential chain). */
  generate?: (region: string) => Promise<GenerateAuthTokenResponse>;
}

export const MSK_IAM_REFRESH_MARGIN_MS = 60_000;

export function mskIamTokenProvider(opts: MskIamTokenOptions): () => Promise<{ value: string }> {
  const margin = opts.refreshMarginMs ?? MSK_IAM_REFRESH_MARGIN_MS;
  const now = opts.now ?? Date.now;
  const generate = opts.generate ?? ((region: string) => generateAuthToken({ region }));
  let cached: GenerateAuthTokenResponse | undefined;
  let renewing: Promise<GenerateAuthTokenResponse> | undefined;
  return async () => {
    if (cached && cached.expiryTime - now() > margin) return { value: cached.token };
    renewing ??= generate(opts.region)
      .then((t) => (cached = t), (e: unknown) => Promise.reject(new MskIamTokenError(opts.region, e)))
      .finally(() => (renewing = undefined));
    return { value: (await renewing).token };
  };
}

/**
 * Why no token could be signed. No credentials anywhere in the chain is a setup problem
 * (`retriable: false`, classified non-retryable); anything else (an STS or instance-metadata
 * hiccup) may pass and is left retryable.
 */
export class MskIamTokenError extends Error {
  readonly retriable: boolean;
  constructor(region: string, cause: unknown) {
    const e = (cause ?? {}) as { name?: string; message?: string };
    const noCredentials = e.name === 'CredentialsProviderError' || /credentials/i.test(e.message ?? '');
    super(
      noCredentials
        ? `AWS MSK IAM: no AWS credentials to sign the authentication token for ${region} (${e.message}): provide them through the AWS default chain (AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY, AWS_PROFILE, SSO, a task or instance role)`
        : `AWS MSK IAM: signing the authentication token for ${region} failed: ${e.message ?? String(cause)}`,
      { cause },
    );
    this.name = noCredentials ? 'MskIamNoCredentials' : 'MskIamTokenError';
    this.retriable = !noCredentials;
  }
}
