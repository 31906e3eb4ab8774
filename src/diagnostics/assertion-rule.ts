// The vocabulary of the assertion lint (docs/design.md §5.4): what a rule is, what it sees and
// what it reports. Rules live in ./rules/, the catalogue that lists them in ./assertion-rules.ts.
import type { KeyObject, X509Certificate } from 'node:crypto';
import type { Thumbprints } from '../client-auth/certificate/thumbprints.ts';
import type { AssertionTarget } from './assertion-target.ts';
import type { IdpProfile } from './idp-profiles.ts';

/**
 * The lint profiles: which IdP's rules an assertion is checked against (Entra, or a preset of the
 * OIDC kind). Not src/idps/idp-kind.ts's IdpKind, which is what the broker knows about a provider.
 */
export const IDP_PROFILE_NAMES = ['entra', 'keycloak', 'okta', 'auth0', 'generic'] as const;
export type IdpProfileName = (typeof IDP_PROFILE_NAMES)[number];

/**
 * What is being checked: a client assertion (signed by the client with its registered key, RFC 7523
 * §2.2: iss = sub = client id, aud = the token endpoint) or a federated token (a JWT another issuer
 * signed for the workload, sent as the client assertion: Entra workload identity federation).
 */
export const ASSERTION_KINDS = ['client_assertion', 'federated_token'] as const;
export type AssertionKind = (typeof ASSERTION_KINDS)[number];

export type Severity = 'error' | 'warning' | 'info';

/** One finding, exactly the contract's shape (docs/design.md §5.4). */
export interface Finding {
  id: string;
  severity: Severity;
  claim?: string;
  message: string;
  expected?: string;
  actual?: string;
  /** What the IdP answers when this is wrong: an AADSTS code, a Keycloak error string, an OAuth error. */
  idp_error?: string;
  fix?: string;
}

export type Verdict = 'ok' | 'will_fail';

/** A certificate to check the assertion against. */
export interface CheckedCertificate {
  leaf: X509Certificate;
  thumbprints: Thumbprints;
  /** Only for the broker's own credentials, to check that key and certificate belong together. Never output. */
  privateKey?: KeyObject;
  /** RSA modulus length or EC curve size; 0 when unknown. */
  keyBits: number;
}

export interface LintContext {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  /** Present when a compact JWS was pasted; absent for the unsigned header + claims the broker would sign. */
  signed?: { signingInput: Buffer; signature: Buffer };
  /** Why the pasted text is not a compact JWS, when it is not one (only `jws.malformed` looks at it). */
  malformed?: string;
  target: AssertionTarget;
  kind: AssertionKind;
  profile: IdpProfile;
  nowSeconds: number;
  certificate?: CheckedCertificate;
  /** Per-lint cache for analyses several rules share (e.g. the audience analysis). */
  memo: Map<string, unknown>;
}

/** What a broken rule reports; rule metadata fills in the rest. */
export interface RuleHit {
  message: string;
  expected?: unknown;
  actual?: unknown;
  /** Overrides the rule's default (e.g. an error beyond the IdP's clock skew, a warning within it). */
  severity?: Severity;
  idpError?: string;
  fix?: string;
}

export interface AssertionRule {
  /** Stable id, `<claim or area>.<what is wrong>`; clients and tests key on it. */
  id: string;
  claim?: string;
  severity: Severity;
  /** The IdPs the rule applies to. */
  idps: readonly IdpProfileName[];
  /** What each IdP answers when the rule is broken. */
  idpError?: Partial<Record<IdpProfileName, string>>;
  /** One line, for the catalogue listing. */
  summary: string;
  fix?: string;
  check(ctx: LintContext): RuleHit | undefined;
}

const ALL: readonly IdpProfileName[] = IDP_PROFILE_NAMES;
export const ALL_IDPS = ALL;
export const OIDC_IDPS: readonly IdpProfileName[] = ['keycloak', 'okta', 'auth0', 'generic'];

export function defineRule(rule: AssertionRule): AssertionRule {
  return rule;
}

/** Renders expected/actual values for the finding (strings as they are, anything else as JSON). */
export function show(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** The memoised result of an analysis shared by several rules. */
export function memoised<T>(ctx: LintContext, key: string, compute: () => T): T {
  if (!ctx.memo.has(key)) ctx.memo.set(key, compute());
  return ctx.memo.get(key) as T;
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
