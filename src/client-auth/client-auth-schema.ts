// How a credential authenticates to its IdP: exactly one of these blocks (docs/design.md §9.1). A
// new kind is one schema here, one module beside the others and one line in
// create-client-authentication.ts.
import { certificateSchema } from './certificate/certificate-schema.ts';
import { clientSecretSchema } from './client-secret-schema.ts';
import { federatedTokenSchema } from './federated-token-schema.ts';

export const clientAuthenticationFields = {
  certificate: certificateSchema.optional().describe('private_key_jwt: a certificate and its key (PEM or PFX)'),
  clientSecret: clientSecretSchema.optional().describe('client_secret_basic / client_secret_post: a secret in a file'),
  federatedToken: federatedTokenSchema.optional().describe('a JWT from another issuer as the client assertion (workload identity federation)'),
};

export type ClientAuthenticationKind = keyof typeof clientAuthenticationFields;
export const CLIENT_AUTHENTICATION_KINDS = Object.keys(clientAuthenticationFields) as ClientAuthenticationKind[];

/** The kinds a credential names (a valid one names exactly one). */
export function clientAuthenticationKinds(credential: Record<string, unknown>): ClientAuthenticationKind[] {
  return CLIENT_AUTHENTICATION_KINDS.filter((kind) => credential[kind] !== undefined);
}

/** "exactly one of certificate, clientSecret or federatedToken", as a message for the first field named or missing. */
export function clientAuthenticationProblem(credential: Record<string, unknown>): { path: string; message: string } | undefined {
  const named = clientAuthenticationKinds(credential);
  const list = CLIENT_AUTHENTICATION_KINDS.join(', ');
  if (named.length === 1) return undefined;
  if (named.length === 0) return { path: 'certificate', message: `required: one of ${list} (how the broker authenticates to the IdP)` };
  return { path: named[1]!, message: `give exactly one of ${list}; this credential names ${named.join(' and ')}` };
}
