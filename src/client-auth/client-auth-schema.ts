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

type ConfiguredKind = keyof typeof clientAuthenticationFields;
/** `publicClient`: a public client (RFC 6749 §2.1) sends only its client_id; allowed for delegated credentials. */
export type ClientAuthenticationKind = ConfiguredKind | 'publicClient';
export const CLIENT_AUTHENTICATION_KINDS = Object.keys(clientAuthenticationFields) as ConfiguredKind[];

/** The kinds a credential names (a valid one names exactly one, or none with publicClient: true). */
export function clientAuthenticationKinds(credential: Record<string, unknown>): ClientAuthenticationKind[] {
  const named: ClientAuthenticationKind[] = CLIENT_AUTHENTICATION_KINDS.filter((kind) => credential[kind] !== undefined);
  return credential.publicClient === true && named.length === 0 ? ['publicClient'] : named;
}

/** "exactly one of certificate, clientSecret or federatedToken", as a message for the first field named or missing. */
export function clientAuthenticationProblem(credential: Record<string, unknown>): { path: string; message: string } | undefined {
  const named = CLIENT_AUTHENTICATION_KINDS.filter((kind) => credential[kind] !== undefined);
  const list = CLIENT_AUTHENTICATION_KINDS.join(', ');
  if (credential.publicClient === true) {
    if (named.length > 0) return { path: named[0]!, message: 'a public client (publicClient: true) has no client authentication: remove this block, or publicClient' };
    // RFC 6749 §4.4: the client credentials grant is for confidential clients only.
    if (credential.signIn === undefined) return { path: 'publicClient', message: 'a public client can only hold delegated tokens: add signIn, or give the client a certificate, clientSecret or federatedToken' };
    return undefined;
  }
  if (named.length === 1) return undefined;
  if (named.length === 0) {
    const delegated = credential.signIn !== undefined ? ', or publicClient: true for a public client' : '';
    return { path: 'certificate', message: `required: one of ${list} (how the broker authenticates to the IdP)${delegated}` };
  }
  return { path: named[1]!, message: `give exactly one of ${list}; this credential names ${named.join(' and ')}` };
}
