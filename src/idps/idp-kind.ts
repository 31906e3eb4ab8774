// What the broker knows about one kind of identity provider, in one place: how it wants scopes,
// what identifies a client there, what it expects of an assertion, which refusals mean "the client's
// credential was not accepted", and its token provider. The token service, the scope rules, the
// config loader and diagnostics all ask the kind; nothing else switches on `provider`.
import type { AssertionDefaults } from '../client-auth/certificate/client-assertion-signer.ts';
import type { KeyType } from '../client-auth/certificate/certificate.ts';
import type { ClientAuthentication } from '../client-auth/client-authentication.ts';
import type { IdpRejected } from '../kernel/errors.ts';
import type { Logger } from '../observability/logger.ts';
import type { TokenProvider } from './token-provider.ts';

export interface IdpKind<C> {
  readonly name: string;
  /** A requested scope as this IdP's token endpoint takes it (compared as a set: RFC 6749 §3.3). */
  normaliseScope(scope: string): string;
  /** The scope a managed-identity `resource` stands for; undefined when the IdP has no resources. */
  scopeForResource(resource: string): string | undefined;
  /** What identifies the client at the IdP besides its key material (cache keys). */
  cacheIdentity(config: C): string[];
  assertionDefaults(config: C): AssertionDefaults;
  /** Why the IdP refuses assertions signed with this key type, if it does (config check). */
  keyTypeProblem(keyType: KeyType): string | undefined;
  /** The refusal says the client's credential (certificate, secret) was not accepted: after a rotation, the previous one may be. */
  refusedClientCredential(err: IdpRejected): boolean;
  createProvider(config: C, auth: ClientAuthentication, logger: Logger): TokenProvider;
  /**
   * Delegated credentials: the issuer whose discovery document names the authorization, device
   * authorization and revocation endpoints (OIDC Discovery §3), and the `aud` of an assertion for
   * its token endpoint.
   */
  delegatedIssuer(config: C): string;
  /** Whether a discovery document's issuer is the one delegatedIssuer asked for. */
  delegatedIssuerMatches(config: C, declared: string): boolean;
  assertionAudience(config: C, tokenEndpoint: string, issuer: string): string;
  /**
   * Extra parameters of the authorization and device authorization requests (OIDC Core §11:
   * offline_access needs prompt=consent; Auth0 needs the API's `audience`).
   */
  authorizationParams(config: C, scopes: readonly string[]): Record<string, string>;
  /** The IdP settings a caller listing credentials may see (GET /v1/credentials, `config check`). */
  listingFacts(config: C): Record<string, string>;
}

/**
 * Scopes compare as sets: "b a" and "a  b" are the same request (RFC 6749 §3.3: space-delimited,
 * order does not matter). Case is kept: resource URIs are case-sensitive at some IdPs.
 */
export function normaliseScopeSet(scope: string): string {
  return [...new Set(scope.split(/\s+/).filter(Boolean))].sort().join(' ');
}
