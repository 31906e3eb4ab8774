// The fields every credential has, whatever its IdP kind; the kinds add theirs (entra/entra-schema.ts,
// oidc/oidc-schema.ts) and config/schema.ts joins them into one union on `provider`.
import { z } from 'zod';
import { clientAuthenticationFields } from '../client-auth/client-auth-schema.ts';
import { assertionSchema } from '../client-auth/certificate/certificate-schema.ts';
import { resourceId } from '../kernel/schema-primitives.ts';
import { signInSchema } from './sign-in-schema.ts';

export const DEFAULT_IDP_TIMEOUT_MS = 10_000;
export const DEFAULT_IDP_RETRIES = 2;

export const scopeList = z.array(z.string().trim().min(1).max(1024)).max(64);

export const baseCredential = {
  id: resourceId,
  clientId: z.string().min(1).max(256),
  ...clientAuthenticationFields,
  publicClient: z
    .boolean()
    .default(false)
    .describe('a public client (RFC 6749 §2.1): no client authentication; only with signIn'),
  signIn: signInSchema.optional().describe('a delegated credential: a person signs in once, the broker refreshes (docs/delegated-credentials.md)'),
  assertion: assertionSchema.default({ sendX5c: false }).describe('how a certificate credential signs its assertion'),
  timeoutMs: z.number().int().min(100).max(120_000).default(DEFAULT_IDP_TIMEOUT_MS).describe('per IdP call (default 10000)'),
  retries: z.number().int().min(0).max(5).default(DEFAULT_IDP_RETRIES).describe('retries on network errors and 5xx, with jitter (default 2)'),
};

/** The fields every credential has, whatever its provider: checked on their own when provider is unknown. */
export const credentialBaseSchema = z.object(baseCredential);
