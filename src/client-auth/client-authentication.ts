// How the broker proves a client's identity to a token endpoint (RFC 6749 §2.3), whatever the kind:
// a signed assertion from a certificate (RFC 7523), a client secret (RFC 6749 §2.3.1), or a JWT from
// another issuer (workload identity federation). The IdP providers ask this interface for what a
// token request must carry and never learn which kind they were given.
import type { IdpRejected } from '../kernel/errors.ts';
import type { LoadedCertificate } from './certificate/certificate.ts';
import type { ClientAuthenticationKind } from './client-auth-schema.ts';

export type { ClientAuthenticationKind };

/** The request a client authentication is for. */
export interface ClientAuthTarget {
  clientId: string;
  /** The URL the token request is POSTed to. */
  tokenEndpoint: string;
  /** The `aud` of an assertion the broker signs for this endpoint (per IdP: docs/design.md §13). */
  audience: string;
  /**
   * The request can carry credentials only as form fields (msal-node, Entra): a client secret goes
   * in the body whatever `method` says.
   */
  formOnly?: boolean;
}

/** What one token request carries to authenticate the client. */
export interface ClientAuthParts {
  /** Form fields: client_assertion_type + client_assertion, or client_id + client_secret. */
  form: Record<string, string>;
  /** An Authorization header value (client_secret_basic). */
  authorization?: string;
}

/** `previous`: the material in use before the last rotation, for one retry while the IdP catches up. */
export type ClientAuthUse = 'current' | 'previous';

export type ClientAuthHealth = 'ok' | 'expiring_soon' | 'expired' | 'unavailable';

/** For /readyz: how the material stands, with facts that are safe to show (never the material). */
export interface ClientAuthStatus {
  status: ClientAuthHealth;
  detail: Record<string, string | number | boolean>;
}

/** The decoded header and claims the broker would send as a client assertion (for diagnostics). */
export interface AssertionPreview {
  header: Record<string, unknown>;
  claims: Record<string, unknown> | null;
  /** Who made it: the broker signs it (certificate) or another issuer did (federated token). */
  signedBy: 'broker' | 'external issuer';
}

export interface ClientAuthentication {
  readonly kind: ClientAuthenticationKind;
  /**
   * What identifies the client's key material at the IdP, for cache keys: public values only (a
   * certificate's SHA-256 thumbprint), never anything derived from a secret; '' when the client id
   * and the IdP settings identify the client by themselves.
   */
  identity(): string;
  /** The identity before the last rotation, while that rotation is recent. */
  previousIdentity(): string | undefined;
  /** Whether material from before the last rotation is at hand for one retry. */
  hasPrevious(): boolean;
  /**
   * What the token request must carry. Throws CredentialUnavailable when nothing usable is at hand
   * (an unreadable file, an expired federated token): such a request is never sent.
   */
  authenticate(target: ClientAuthTarget, use?: ClientAuthUse): Promise<ClientAuthParts>;
  status(nowMs: number): ClientAuthStatus;
  /** Epoch ms after which the material no longer works (certificate notAfter, federated token exp), when known. */
  expiresAt(): number | undefined;
  /** What diagnostics and `inspect` show: where the material lives and its public facts, never the material. */
  describe(nowMs: number): Record<string, unknown>;
  /** The assertion it would send to this target, decoded (kinds that send one). */
  previewAssertion?(target: ClientAuthTarget, nowMs: number): AssertionPreview;
  /** The `alg` of the assertions it sends (kinds that send one). */
  assertionAlgorithm?(): string;
  /** The certificate its assertions are signed with (the certificate kind): diagnostics verify signatures with it. */
  signingCertificate?(): LoadedCertificate;
  /**
   * The fix to give when the IdP refused the client's credential (IdpKind.refusedClientCredential:
   * invalid_client, AADSTS7000215 …), in place of the IdP error catalogue's, which speaks of
   * assertions and registered keys; undefined keeps the catalogue's. Never includes the material.
   */
  rejectionHint?(err: IdpRejected): string | undefined;
  /** Values that must never reach a response or a log (a secret an IdP might echo back). */
  redactions(): string[];
  start(): void;
  stop(): void;
}
