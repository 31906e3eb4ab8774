// A strict, in-process stand-in for Microsoft Entra ID's token endpoints, for integration tests of
// the broker (the real Entra cannot be reached from here).
//
// "Strict" means: it checks a certificate client assertion the way docs/design.md §10 says Entra
// does, a client secret (§9.1) and a federated token (workload identity federation, §9.1) the way
// Microsoft documents them, and answers with real-shaped AADSTS error bodies (§11.1), so a broker
// that passes here has a good chance of passing against the real service. Where Microsoft's documentation (or public
// reports) leave a behaviour undocumented, the comment says so and the stand-in errs on the side of
// rejecting: a false red in a test is cheaper than a false green in production.
//
// Validation order is the numbered list of docs/design.md §8.5; like Entra, the first failure wins.
// At step 5 a request branches by client authentication: a client secret (`verifySecret`), a
// federated token (`verifyFederatedToken`, its own order F1-F6) or a certificate assertion
// (`verifyCertificateAssertion`, steps 6-11); all three end in steps 12-13.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  X509Certificate,
  constants as cryptoConstants,
  createHash,
  createPublicKey,
  generateKeyPairSync,
  randomUUID,
  timingSafeEqual,
  verify as cryptoVerify,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import jwt from 'jsonwebtoken';
import { headerValue, isB64url, jsonObjectOf, readBody, safeDecode } from './fake-server-parts.ts';

// ───────────────────────────────────────── public API ─────────────────────────────────────────

export interface StandInApp {
  tenantId: string;
  clientId: string;
  /** PEM certificates registered on the app ("Certificates & secrets"). For an SNI app: the trusted certificates / issuing CAs. */
  certificates?: string[];
  /** Subject-name/issuer app: every assertion must carry `x5c` (docs/design.md §10.1). */
  sni?: boolean;
  /** Client secrets registered on the app: the secret *values* (what Entra shows once), optionally with an expiry. */
  secrets?: (string | StandInSecret)[];
  /**
   * Federated identity credentials (Graph `federatedIdentityCredential`). `undefined` and `[]` both
   * mean "none", which answers a federated token with AADSTS70021.
   */
  federatedCredentials?: StandInFederatedCredential[];
}

export interface StandInSecret {
  value: string;
  /** Judged on the stand-in clock (`setClockOffset`); past it the secret gets AADSTS7000222. */
  expiresAt?: Date;
}

export interface StandInFederatedCredential {
  /** Compared with the token's `iss` exactly and case-sensitively (no trimming, no trailing-slash folding). */
  issuer: string;
  /** Compared with the token's `sub` exactly and case-sensitively. */
  subject: string;
  /** Exactly one value, as Graph enforces; default `['api://AzureADTokenExchange']`. */
  audiences?: string[];
}

/** An issuer's public keys: a JWKS object (RFC 7517 §5) or PEM public keys by `kid`. */
export type StandInIssuerKeys = { keys: JsonWebKey[] } | Record<string, string>;

/** How the request authenticated the client, as far as the stand-in could tell. Never the secret itself. */
export type StandInClientAuth = 'client_secret_post' | 'client_secret_basic' | 'certificate' | 'federated';

export interface StandInFault {
  status?: number;
  retryAfterSeconds?: number;
  aadsts?: number;
  dropConnection?: boolean;
  latencyMs?: number;
  /** How many token requests this fault applies to; default 1, Infinity allowed. */
  times?: number;
}

export interface CapturedRequest {
  /** Path without the query string (so `/common/discovery/instance` matches whatever MSAL appends). */
  path: string;
  /** The Host header as received. */
  host: string;
  /** Parsed `application/x-www-form-urlencoded` body (empty for other bodies); a `client_secret` value is replaced by `[redacted]`. */
  form: Record<string, string>;
  /**
   * The client-authentication method(s) the request carried: `client_secret_post` (form),
   * `client_secret_basic` (Authorization header), `certificate` or `federated` (the assertion, by
   * how the stand-in routed it). Several when a request mixed them. Absent when none was found.
   */
  clientAuth?: StandInClientAuth[];
  /** Decoded `client_assertion` header, when it could be decoded (best effort, even if invalid). */
  header?: Record<string, unknown>;
  /** Decoded `client_assertion` claims, when they could be decoded (a federated token's claims too). */
  claims?: Record<string, unknown>;
  /** HTTP status sent; 0 when the connection was dropped (fault) or no answer was written. */
  outcome: number;
  aadsts?: number;
}

export interface EntraStandIn {
  url: string;
  port: number;
  requests: CapturedRequest[];
  /** Adds or replaces an app. Throws on a registration Graph would refuse (see `registerFederatedCredential`). */
  addApp(app: StandInApp): void;
  removeApp(clientId: string): void;
  /** Client secrets (rotation tests): add one, remove one by value, or replace them all. Unknown app: throws. */
  addSecret(clientId: string, secret: string | StandInSecret): void;
  removeSecret(clientId: string, value: string): void;
  setSecrets(clientId: string, secrets: (string | StandInSecret)[]): void;
  /** Federated identity credentials: replace them all, add one, or remove one by issuer and subject. */
  setFederatedCredentials(clientId: string, credentials: StandInFederatedCredential[]): void;
  addFederatedCredential(clientId: string, credential: StandInFederatedCredential): void;
  removeFederatedCredential(clientId: string, issuer: string, subject: string): void;
  /**
   * The public keys of an external issuer, by its exact `iss`. Real Entra fetches the issuer's OIDC
   * discovery document and JWKS; the stand-in is given them. Calling again replaces the keys (key
   * rotation at the issuer).
   */
  registerIssuer(issuer: string, keys: StandInIssuerKeys): void;
  removeIssuer(issuer: string): void;
  inject(fault: StandInFault): void;
  clearFaults(): void;
  setTokenLifetime(seconds: number, opts?: { refreshInSeconds?: number }): void;
  setClockOffset(seconds: number): void;
  knownResources: Set<string>;
  publicKey: string;
  close(): Promise<void>;
}

// ───────────────────────────────────── AADSTS error table ─────────────────────────────────────
//
// Each code: the OAuth `error`, the HTTP status, and a message template. Sources are cited per
// entry; "(guess)" marks anything not seen in a real Entra response. Microsoft says not to branch
// on error_description (docs/design.md §11.1), so the wording aims to be recognisable, not byte-exact.

interface ErrorContext {
  tenant?: string;
  clientId?: string;
  resource?: string;
  scope?: string;
  grantType?: string;
  param?: string;
  method?: string;
  alg?: string;
  detail?: string;
  /** 700027 variant. */
  reason?: 'not-found' | 'sni-not-found' | 'expired' | 'not-yet-valid' | 'bad-signature' | 'key-unusable';
  thumbprintHex?: string;
  foundKey?: { notBefore: Date; notAfter: Date };
  now?: Date;
  validFrom?: Date;
  expiry?: Date;
  /** Federated token: the presented (unverified) `iss`, `sub`, `aud` and header `kid`. */
  issuer?: string;
  subject?: string;
  audience?: string;
  kid?: string;
}

interface AadstsEntry {
  error: string;
  status: number;
  message: (c: ErrorContext) => string;
}

const CERT_CREDENTIALS_DOC =
  'Review the documentation at https://docs.microsoft.com/en-us/azure/active-directory/develop/active-directory-certificate-credentials .';

const AADSTS: Record<number, AadstsEntry> = {
  // A body that is not a form (e.g. JSON) parses to nothing, so Entra reports the first missing
  // parameter; the same code covers any missing required parameter.
  900144: {
    error: 'invalid_request',
    status: 400,
    message: (c) => `The request body must contain the following parameter: '${c.param ?? 'grant_type'}'.`,
  },
  // Token endpoint hit with GET (wording as commonly reported; status (guess)).
  900561: {
    error: 'invalid_request',
    status: 400,
    message: (c) => `The endpoint only accepts POST, OPTIONS requests. Received a ${c.method ?? 'GET'} request.`,
  },
  // docs/design.md §11.1 (InvalidTenantName); current wording as seen in responses.
  90002: {
    error: 'invalid_request',
    status: 400,
    message: (c) =>
      `Tenant '${c.tenant ?? '<tenant>'}' not found. Check to make sure you have the correct tenant ID and are signing into the correct cloud. Check with your subscription administrator, this may happen if there are no active subscriptions for the tenant.`,
  },
  // UnsupportedGrantType (error-codes doc); exact wording (guess).
  70003: {
    error: 'unsupported_grant_type',
    status: 400,
    message: (c) => `The app requested an unsupported grant type '${c.grantType ?? ''}'.`,
  },
  // docs/design.md §11.1 (UnauthorizedClient_DoesNotMatchRequest); wording as seen in responses.
  700016: {
    error: 'unauthorized_client',
    status: 400,
    message: (c) =>
      `Application with identifier '${c.clientId ?? '<client_id>'}' was not found in the directory '${c.tenant ?? '<tenant>'}'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You may have sent your authentication request to the wrong tenant.`,
  },
  // docs/design.md §11.1: a client_secret was sent. Wording as seen in responses.
  7000215: {
    error: 'invalid_client',
    status: 401,
    message: (c) =>
      `Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '${c.clientId ?? '<client_id>'}'.`,
  },
  // Expired secret. Wording as seen in responses (spencerwooo/onedrive-vercel-index#1051,
  // dotnet/sign#849; older answers lacked the app id: Azure-Samples/ms-identity-python-webapp#67);
  // invalid_client as seen there; 401 like 7000215 (guess).
  7000222: {
    error: 'invalid_client',
    status: 401,
    message: (c) =>
      `The provided client secret keys for app '${c.clientId ?? '<client_id>'}' are expired. Visit the Azure portal to create new keys for your app: https://aka.ms/NewClientSecret, or consider using certificate credentials for added security: https://aka.ms/certCreds.`,
  },
  // docs/design.md §11.1: no credential in the body (401 invalid_client as observed).
  7000218: {
    error: 'invalid_client',
    status: 401,
    message: () => "The request body must contain the following parameter: 'client_assertion' or 'client_secret'.",
  },
  // Wrong client_assertion_type. Only public sighting: "invalid_request … AADSTS90011: Unexpected
  // client assertion type." (ADAL for Ruby PR #53, 2016). 90011 has since been reused for "Request
  // is ambiguous, multiple application identifiers found", so the code is (guess); the
  // invalid_request/400 shape is what matters.
  90011: {
    error: 'invalid_request',
    status: 400,
    message: () => 'Unexpected client assertion type.',
  },
  // docs/design.md §10.3, §11.1: malformed JWT, aud array (panva/openid-client#348), missing
  // thumbprint (AzureAD/microsoft-authentication-library-for-dotnet#124).
  50027: {
    error: 'invalid_client',
    status: 401,
    message: (c) => c.detail ?? 'JWT token is invalid or malformed.',
  },
  // Signature algorithm Entra does not accept (ES*, RS384 …). Seen as
  // "AADSTS5002738: Invalid JWT token. 'ES256' is not a supported signature algorithm."
  // (AzureAD/microsoft-identity-web#3467, 2025); sibling 5002730 came back as invalid_request
  // (MSAL.NET #4712), hence 400 (guess).
  5002738: {
    error: 'invalid_request',
    status: 400,
    message: (c) => `Invalid JWT token. '${c.alg ?? '<alg>'}' is not a supported signature algorithm.`,
  },
  // docs/design.md §11.1 (SubjectMismatchesIssuer); wording as reported in msal4j #430.
  50048: {
    error: 'invalid_client',
    status: 401,
    message: () => 'Subject must match the issuer claim in the client assertion.',
  },
  // Workload identity federation (docs/design.md §9.1, §11.1). 70021 with the presented issuer,
  // subject and audience: 401 invalid_client in recent answers (external-secrets/external-secrets#2783,
  // 2023), 400 invalid_request in 2022 (Azure/azure-workload-identity#340, #616). Microsoft documents
  // it for a federated credential that has not propagated yet
  // (learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations); the stand-in
  // sends it when the app has no federated credential at all.
  70021: {
    error: 'invalid_client',
    status: 401,
    message: (c) =>
      `No matching federated identity record found for presented assertion. Assertion Issuer: '${c.issuer ?? ''}'. Assertion Subject: '${c.subject ?? ''}'. Assertion Audience: '${c.audience ?? ''}'. https://docs.microsoft.com/en-us/azure/active-directory/develop/workload-identity-federation`,
  },
  // No credential with that issuer: 401 invalid_client (Azure/azure-workload-identity#1350, #1200).
  700211: {
    error: 'invalid_client',
    status: 401,
    message: (c) =>
      `No matching federated identity record found for presented assertion issuer '${c.issuer ?? ''}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://docs.microsoft.com/en-us/azure/active-directory/develop/workload-identity-federation`,
  },
  // Issuer matched, audience did not: code per docs/design.md §9.1 and its reference list; wording
  // patterned on 700211/700213 (guess).
  700212: {
    error: 'invalid_client',
    status: 401,
    message: (c) =>
      `No matching federated identity record found for presented assertion audience '${c.audience ?? ''}'. Please check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
  },
  // Issuer matched, subject did not (case-sensitive since 2025, Azure/login#517): wording as seen
  // (dotnet/maui#31978, Azure/azure-workload-identity#1200); status 401 (guess).
  700213: {
    error: 'invalid_client',
    status: 401,
    message: (c) =>
      `No matching federated identity record found for presented assertion subject '${c.subject ?? ''}'. Check your federated identity credential Subject, Audience and Issuer against the presented assertion. https://learn.microsoft.com/entra/workload-id/workload-identity-federation`,
  },
  // The federated token's kid is not among the issuer's published keys: wording and invalid_client
  // as seen (Azure/azure-workload-identity#1232); status 401 (guess).
  7000272: {
    error: 'invalid_client',
    status: 401,
    message: (c) =>
      `The certificate with identifier ${c.kid ?? ''} used to sign the federated credential could not be found in the metadata of identity provider ${c.issuer ?? ''}. Please validate that your Identity Provider's metadata exposes the key used to sign the incoming token.`,
  },
  // Client credentials on /common with a secret or a federated token (error-codes page). On
  // /organizations the stand-in refuses with 9002313 instead, since this message recommends it;
  // what Entra answers there is undocumented.
  9001023: {
    error: 'invalid_request',
    status: 400,
    message: () => 'The grant type is not supported over the /common or /consumers endpoints. Please use the /organizations or tenant-specific endpoint.',
  },
  // docs/design.md §11.1.
  700021: {
    error: 'invalid_client',
    status: 401,
    message: () => `Client assertion application identifier doesn't match 'client_id' parameter. ${CERT_CREDENTIALS_DOC}`,
  },
  // docs/design.md §10.3, §11.1.
  700023: {
    error: 'invalid_client',
    status: 401,
    message: () => `Client assertion audience claim does not match Realm issuer. ${CERT_CREDENTIALS_DOC}`,
  },
  // docs/design.md §11.1 (Azure/azure-sdk-for-net#29007, AzureAD/microsoft-authentication-library-for-js#8339)
  // plus public reports for the "key used is expired" and "signature value did not match" reasons.
  700027: {
    error: 'invalid_client',
    status: 401,
    message: message700027,
  },
  // docs/design.md §10.4, §11.1; format of the times as in MSAL.NET #4951.
  700024: {
    error: 'invalid_client',
    status: 401,
    message: (c) =>
      `Client assertion is not within its valid time range. Current time: ${iso7(c.now ?? new Date())}, assertion valid from ${iso7(c.validFrom ?? new Date(0))}, expiry time of assertion ${iso7(c.expiry ?? new Date(0))}. Review the documentation at https://learn.microsoft.com/entra/identity-platform/certificate-credentials .`,
  },
  // CertificateIsOutsideValidityWindow / CertificateHasBeenRevoked: code names from
  // microsoft-identity-web's list of certificate errors; the wording is that project's test
  // fixture, not a captured Entra response (guess).
  1000502: {
    error: 'invalid_client',
    status: 401,
    message: () => 'The client certificate is not within its valid time range. Ensure that the certificate is valid.',
  },
  7000214: {
    error: 'invalid_client',
    status: 401,
    message: () => 'The client certificate has been revoked. Please use a valid certificate.',
  },
  // docs/design.md §11.1 (70011 InvalidScope); used here for a v2 request without `scope`.
  70011: {
    error: 'invalid_scope',
    status: 400,
    message: () => "The provided request must include a 'scope' input parameter.",
  },
  // What Entra actually returns today for a client-credentials scope without /.default
  // (MicrosoftDocs/azure-docs#99862, microsoft/CollectServiceFabricData#139,
  // microsoftgraph/microsoft-graph-docs#14323). 70011 is the older code.
  1002012: {
    error: 'invalid_scope',
    status: 400,
    message: (c) =>
      `The provided value for scope ${c.scope ?? ''} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI).`,
  },
  // docs/design.md §11.1 (InvalidMultipleResourcesScope); wording (guess).
  700022: {
    error: 'invalid_scope',
    status: 400,
    message: (c) =>
      `The provided value for the input parameter scope is not valid because it contains more than one resource. Scope ${c.scope ?? ''} is not valid.`,
  },
  // docs/design.md §11.1.
  901002: {
    error: 'invalid_request',
    status: 400,
    message: () => "The 'resource' request parameter is not supported.",
  },
  // docs/design.md §11.1 (InvalidResourceServicePrincipalNotFound); invalid_resource as seen in responses.
  500011: {
    error: 'invalid_resource',
    status: 400,
    message: (c) =>
      `The resource principal named ${c.resource ?? '<resource>'} was not found in the tenant named ${c.tenant ?? '<tenant>'}. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant. You might have sent your authentication request to the wrong tenant.`,
  },
  // docs/design.md §11.1; inject-only (no StandInApp flag models a public client / disabled app).
  700025: {
    error: 'invalid_client',
    status: 401,
    message: () => "Client is public so neither 'client_assertion' nor 'client_secret' should be presented.",
  },
  7000112: {
    error: 'unauthorized_client', // (guess)
    status: 400,
    message: (c) => `Application '${c.clientId ?? '<client_id>'}'(${c.clientId ?? '<client_id>'}) is disabled.`,
  },
  // docs/design.md §11.1 (WeakRsaKey); inject-only, wording from the error-codes doc.
  50032: {
    error: 'invalid_client', // (guess)
    status: 401,
    message: () => 'WeakRsaKey - Indicates the erroneous user attempt to use a weak RSA key.',
  },
  // Generic codes for `inject({ status })` without `aadsts`; wording from the error-codes doc.
  // Also what the stand-in answers, with a detail, to a request that authenticates the client more
  // than one way: RFC 6749 §2.3 "The client MUST NOT use more than one authentication method in
  // each request", and Entra's answer to that is undocumented (guess).
  9002313: {
    error: 'invalid_request',
    status: 400,
    message: (c) => `Invalid request. Request is malformed or invalid.${c.detail ? ` ${c.detail}` : ''}`,
  },
  50033: {
    error: 'server_error',
    status: 500,
    message: () => 'RetryableError - Indicates a transient error not related to the database operations.',
  },
  90006: {
    error: 'temporarily_unavailable',
    status: 503,
    message: () => 'ExternalServerRetryableError - The service is temporarily unavailable.',
  },
  90055: {
    error: 'temporarily_unavailable',
    status: 429,
    message: () => 'TenantThrottlingError - There are too many incoming requests. This exception is thrown for blocked tenants.',
  },
};

function message700027(c: ErrorContext): string {
  const app = c.clientId ?? '<client_id>';
  const thumb = c.thumbprintHex ? `Thumbprint of key used by client: '${c.thumbprintHex}', ` : '';
  const found = c.foundKey ? `Found key 'Start=${foundKeyDate(c.foundKey.notBefore)}, End=${foundKeyDate(c.foundKey.notAfter)}', ` : '';
  const visit =
    `Please visit the Azure Portal, Graph Explorer or directly use MS Graph to see configured keys for app Id '${app}'. ` +
    'Review the documentation at https://docs.microsoft.com/en-us/graph/deployments to determine the corresponding service endpoint and ' +
    'https://docs.microsoft.com/en-us/graph/api/application-get?view=graph-rest-1.0&tabs=http to build a query request URL, ' +
    `such as 'https://graph.microsoft.com/beta/applications/${app}']`;
  switch (c.reason) {
    case 'sni-not-found':
      // Azure/azure-sdk-for-net#29007 wording; the text after "WithSendX5C()" is a guess.
      return (
        `Client assertion contains an invalid signature. [Reason - The key was not found., ${thumb}${visit}. ` +
        "Alternatively, SNI may be configured on the app. Please ensure that client assertion is being sent with the x5c claim in the JWT header using MSAL's WithSendX5C() method."
      );
    case 'expired':
      return `Client assertion contains an invalid signature. [Reason - The key used is expired., ${thumb}${found}${visit}`;
    case 'not-yet-valid':
      return `Client assertion contains an invalid signature. [Reason - The key is not yet valid., ${thumb}${found}${visit}`; // reason text (guess)
    case 'bad-signature':
      return `Client assertion contains an invalid signature. [Reason - The provided signature value did not match the expected signature value., ${thumb}${found}${visit}`;
    case 'key-unusable':
      return `Client assertion contains an invalid signature. [Reason - Key was found, but use of the key to verify the signature failed., ${thumb}${found}${visit}`;
    case 'not-found':
    default:
      // Newer wording (AzureAD/microsoft-authentication-library-for-js#8339); when no SHA-1 can be derived the thumbprint part is absent, as in
      // responses to assertions that carried only a SHA-256 thumbprint or kid.
      return `The certificate with identifier used to sign the client assertion is not registered on application. [Reason - The key was not found., ${thumb}${visit}`;
  }
}

// ───────────────────────────────────────── constants ──────────────────────────────────────────

const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

// Power BI resources per cloud (docs/design.md §10.8).
const POWER_BI_RESOURCES = [
  'https://analysis.windows.net/powerbi/api',
  'https://analysis.usgovcloudapi.net/powerbi/api',
  'https://high.analysis.usgovcloudapi.net/powerbi/api',
  'https://mil.analysis.usgovcloudapi.net/powerbi/api',
  'https://analysis.chinacloudapi.cn/powerbi/api',
];

// Algorithms Entra verifies for certificate assertions: RS256 (PKCS#1 v1.5) and PS256 (PSS), the
// two MSAL sends (docs/design.md §10.1, §10.5). ES256 is deliberately NOT here: Entra only accepts RSA
// certificate credentials (Azure/azure-sdk-for-net#6521; MSAL Python #534 "ECDSA cert is not
// supported by the Azure AD service side"; microsoft-identity-web#3467 reports ES256 rejected with
// AADSTS5002738), and no MSAL can send it. Accepting it would let an EC-key code path pass here and
// fail in production. To model a future Entra that accepts ES256, add it here.
const ACCEPTED_ALGS = new Set(['RS256', 'PS256']);

// Federated tokens: Entra supports issuers that sign with RS256 only
// (learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations).
const FEDERATED_ALGS = new Set(['RS256']);

// Graph's default and documented value for a federated credential's audience.
const AZURE_AD_TOKEN_EXCHANGE = 'api://AzureADTokenExchange';

// "A maximum of 20 federated identity credentials can be added to an application" (same page).
const MAX_FEDERATED_CREDENTIALS = 20;

// Clock skew tolerated on nbf/exp. Entra's real leeway is undocumented (docs/design.md §10.4,
// §10.11); 5 minutes is the usual Microsoft identity default.
const SKEW_SECONDS = 300;

// Authority segments that are not a tenant. A certificate assertion posted there fails with
// AADSTS700023, whatever aud says, because the realm is the app's home tenant (docs/design.md §10.3).
const MULTI_TENANT_SEGMENTS = new Set(['common', 'organizations']);

const TOKEN_V2 = /^\/([^/]+)\/oauth2\/v2\.0\/token$/;
const TOKEN_V1 = /^\/([^/]+)\/oauth2\/token$/;
const OIDC_V2 = /^\/([^/]+)\/v2\.0\/\.well-known\/openid-configuration$/;

const MAX_BODY_BYTES = 1 << 20;

// ─────────────────────────────────────── implementation ───────────────────────────────────────

interface RegisteredCert {
  x509: X509Certificate;
  der: Buffer;
  sha1: Buffer;
  sha256: Buffer;
  notBefore: Date;
  notAfter: Date;
}

interface AppRecord {
  app: StandInApp;
  certs: RegisteredCert[];
  secrets: StandInSecret[];
  federated: Required<StandInFederatedCredential>[];
}

interface QueuedFault {
  fault: StandInFault;
  remaining: number;
}

class AadstsFailure {
  constructor(
    readonly code: number,
    readonly ctx: ErrorContext = {},
  ) {}
}

export async function startEntraStandIn(
  options: { apps?: StandInApp[]; host?: string; issuers?: { issuer: string; keys: StandInIssuerKeys }[] } = {},
): Promise<EntraStandIn> {
  const apps = new Map<string, AppRecord>(); // key: lower-case client id
  const requests: CapturedRequest[] = [];
  const faults: QueuedFault[] = [];
  const knownResources = new Set<string>(POWER_BI_RESOURCES);
  let tokenLifetime = 3599;
  let refreshIn: number | undefined;
  let clockOffsetSeconds = 0;

  const signing = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicKeyPem = signing.publicKey.export({ type: 'spki', format: 'pem' }).toString();
  const privateKeyPem = signing.privateKey.export({ type: 'pkcs8', format: 'pem' }).toString();
  const signingKid = b64url(createHash('sha1').update(signing.publicKey.export({ type: 'spki', format: 'der' })).digest());

  const nowMs = (): number => Date.now() + clockOffsetSeconds * 1000;

  const issuers = new Map<string, Map<string, KeyObject>>(); // key: exact issuer string; then kid

  const addApp = (app: StandInApp): void => {
    const certificates = [...(app.certificates ?? [])];
    const certs = certificates.map((pem) => registerCertificate(pem));
    const secrets = (app.secrets ?? []).map(normaliseSecret);
    const federated = normaliseFederatedCredentials(app.federatedCredentials ?? []);
    apps.set(app.clientId.toLowerCase(), { app: { ...app, certificates }, certs, secrets, federated });
  };
  for (const app of options.apps ?? []) addApp(app);
  const appRecord = (clientId: string): AppRecord => {
    const rec = apps.get(clientId.toLowerCase());
    if (!rec) throw new Error(`entra stand-in: no app '${clientId}'`);
    return rec;
  };
  const registerIssuer = (issuer: string, keys: StandInIssuerKeys): void => {
    issuers.set(issuer, importIssuerKeys(issuer, keys));
  };
  for (const { issuer, keys } of options.issuers ?? []) registerIssuer(issuer, keys);

  const tenantKnown = (tenant: string): boolean => {
    const t = tenant.toLowerCase();
    for (const { app } of apps.values()) if (app.tenantId.toLowerCase() === t) return true;
    return false;
  };

  const sockets = new Set<Socket>();
  const server = createServer((req, res) => {
    handle(req, res).catch((err: unknown) => {
      // A bug in the stand-in must not look like an Entra answer.
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(599, { 'content-type': 'text/plain' });
        res.end(`entra stand-in internal error: ${String(err)}`);
      }
    });
  });
  server.on('connection', (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(0, '127.0.0.1', () => resolve());
  });
  const port = (server.address() as AddressInfo).port;
  const url = `http://127.0.0.1:${port}`;

  async function handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const rawUrl = req.url ?? '/';
    const q = rawUrl.indexOf('?');
    const path = q >= 0 ? rawUrl.slice(0, q) : rawUrl;
    const query = new URLSearchParams(q >= 0 ? rawUrl.slice(q + 1) : '');
    const host = req.headers.host ?? `127.0.0.1:${port}`;
    // Recorded on arrival so `requests` keeps arrival order even when latency is injected.
    const record: CapturedRequest = { path, host, form: {}, outcome: 0 };
    requests.push(record);

    const body = await readBody(req, MAX_BODY_BYTES);
    // Only a form body is a form; anything else reaches the validation below as an empty form and
    // fails like Entra does (AADSTS900144 for the missing grant_type).
    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    const form = mediaType === 'application/x-www-form-urlencoded' ? firstValues(new URLSearchParams(body.toString('utf8'))) : {};
    // The secret value is never kept in `requests` (tests may print them).
    record.form = form['client_secret'] !== undefined ? { ...form, client_secret: '[redacted]' } : form;

    // Entra uses the caller's client-request-id as correlation id and echoes it.
    const clientRequestId = query.get('client-request-id') ?? headerValue(req, 'client-request-id');
    const ctx: ResponseCtx = { res, record, clientRequestId, nowMs };

    const tokenMatch = TOKEN_V2.exec(path) ?? TOKEN_V1.exec(path);
    if (tokenMatch) {
      const version: 'v1' | 'v2' = TOKEN_V2.test(path) ? 'v2' : 'v1';
      const tenant = safeDecode(tokenMatch[1] ?? '');
      decodeAssertionInto(record, form['client_assertion']);

      // 1. Fault queue.
      const head = faults[0];
      if (head) {
        head.remaining -= 1;
        if (head.remaining <= 0) faults.shift();
        const f = head.fault;
        if (f.latencyMs && f.latencyMs > 0) await sleep(f.latencyMs);
        if (f.dropConnection) {
          record.outcome = 0;
          req.socket.destroy();
          return;
        }
        if (f.aadsts !== undefined || f.status !== undefined) {
          const code = f.aadsts ?? genericCodeForStatus(f.status ?? 500);
          const headers: Record<string, string> = {};
          if (f.retryAfterSeconds !== undefined) headers['retry-after'] = String(f.retryAfterSeconds);
          sendError(ctx, code, { tenant, clientId: form['client_id'] }, { status: f.status, headers });
          return;
        }
        // Latency-only fault: carry on with normal processing.
      }

      try {
        const answer = processTokenRequest({
          method: req.method ?? 'GET',
          version,
          tenant,
          path,
          host,
          form,
          authorization: headerValue(req, 'authorization'),
          header: record.header,
          claims: record.claims,
          assertionRaw: form['client_assertion'],
          record,
        });
        sendJson(ctx, 200, answer);
      } catch (e) {
        if (!(e instanceof AadstsFailure)) throw e;
        sendError(ctx, e.code, { tenant, clientId: form['client_id'] ?? basicClientId(headerValue(req, 'authorization')), ...e.ctx });
      }
      return;
    }

    const oidc = OIDC_V2.exec(path);
    if (oidc && req.method === 'GET') {
      const tenant = safeDecode(oidc[1] ?? '');
      if (!MULTI_TENANT_SEGMENTS.has(tenant.toLowerCase()) && !tenantKnown(tenant)) {
        // The metadata endpoint answers an unknown tenant with error "invalid_tenant".
        sendError(ctx, 90002, { tenant }, { error: 'invalid_tenant' });
        return;
      }
      sendJson(ctx, 200, openIdConfiguration(`http://${host}`, MULTI_TENANT_SEGMENTS.has(tenant.toLowerCase()) ? '{tenantid}' : tenant, tenant));
      return;
    }

    // Anything else (instance discovery, v1 metadata, jwks, …) is not served; recorded so tests can
    // assert it was never called.
    record.outcome = 404;
    res.writeHead(404, { 'content-type': 'text/plain' });
    res.end('not found');
  }

  interface TokenInput {
    method: string;
    version: 'v1' | 'v2';
    tenant: string;
    path: string;
    host: string;
    form: Record<string, string>;
    authorization: string | undefined;
    header: Record<string, unknown> | undefined;
    claims: Record<string, unknown> | undefined;
    assertionRaw: string | undefined;
    record: CapturedRequest;
  }

  function processTokenRequest(input: TokenInput): Record<string, unknown> {
    const { form, tenant, version } = input;
    if (input.method !== 'POST') throw new AadstsFailure(900561, { method: input.method });

    // 2. Tenant.
    const multiTenant = MULTI_TENANT_SEGMENTS.has(tenant.toLowerCase());
    if (!multiTenant && !tenantKnown(tenant)) throw new AadstsFailure(90002, { tenant });

    // 3. Grant and client id. With client_secret_basic the client id travels in the Authorization
    //    header (RFC 6749 §2.3.1); a body client_id sent as well must name the same client.
    const grantType = form['grant_type'];
    if (!grantType) throw new AadstsFailure(900144, { param: 'grant_type' });
    if (grantType !== 'client_credentials') throw new AadstsFailure(70003, { grantType });
    const basic = parseBasicAuthorization(input.authorization);
    if (basic === 'malformed') {
      throw new AadstsFailure(9002313, { detail: "The Authorization header is not valid 'Basic' client authentication (RFC 6749 §2.3.1)." });
    }
    const bodyClientId = form['client_id'];
    if (basic && bodyClientId !== undefined && bodyClientId.toLowerCase() !== basic.clientId.toLowerCase()) {
      throw new AadstsFailure(9002313, { detail: "The client_id in the body does not match the one in the Authorization header." });
    }
    const clientId = basic?.clientId ?? bodyClientId;
    if (!clientId) throw new AadstsFailure(900144, { param: 'client_id' });

    // 4. The app must exist in that tenant (GUIDs compare case-insensitively).
    const rec = apps.get(clientId.toLowerCase());
    if (!rec || (!multiTenant && rec.app.tenantId.toLowerCase() !== tenant.toLowerCase())) {
      throw new AadstsFailure(700016, { clientId, tenant });
    }

    // 5. Credential kind (docs/design.md §11.1: 7000215, 7000218; §10.5 for the assertion type).
    //    A secret is judged first, so a wrong one is 7000215 whatever else the request carries;
    //    then more than one method is refused (RFC 6749 §2.3).
    const assertion = input.assertionRaw;
    const { header, claims } = input;
    const parts = assertion?.split('.') ?? [];
    const decodable = parts.length === 3 && !!header && !!claims && isB64url(parts[2] ?? '');
    const federated = decodable && !!claims && isFederatedToken(claims, clientId);
    const methods: StandInClientAuth[] = [];
    if (form['client_secret'] !== undefined) methods.push('client_secret_post');
    if (basic) methods.push('client_secret_basic');
    if (assertion) methods.push(federated ? 'federated' : 'certificate');
    if (methods.length > 0) input.record.clientAuth = methods;

    const now = new Date(nowMs());
    let acr: '1' | '2';
    const secret = basic ? basic.secret : form['client_secret'];
    if (secret !== undefined) {
      if (basic && form['client_secret'] !== undefined) {
        throw new AadstsFailure(9002313, { detail: 'The client secret was sent both in the Authorization header and in the body.' });
      }
      refuseMultiTenantSegment(tenant);
      verifySecret(rec, clientId, secret, now);
      if (assertion !== undefined) {
        throw new AadstsFailure(9002313, { detail: 'The request authenticates the client with both a client secret and a client assertion.' });
      }
      acr = '1';
    } else {
      if (!assertion) throw new AadstsFailure(7000218);
      const assertionType = form['client_assertion_type'];
      if (!assertionType) throw new AadstsFailure(900144, { param: 'client_assertion_type' });
      if (assertionType !== JWT_BEARER) throw new AadstsFailure(90011);

      // 6. Structure. Must be a compact JWS whose three parts are base64url JSON objects.
      if (!decodable || !header || !claims) throw new AadstsFailure(50027);
      if (federated) {
        refuseMultiTenantSegment(tenant);
        verifyFederatedToken(rec, parts, header, claims, now);
      } else {
        verifyCertificateAssertion(input, rec, clientId, multiTenant, parts, header, claims);
      }
      acr = '2';
    }
    const homeTenant = rec.app.tenantId;
    const nowSec = nowMs() / 1000;

    // 12. Target.
    let resource: string;
    if (version === 'v2') {
      if (form['resource'] !== undefined) throw new AadstsFailure(901002);
      const scope = form['scope'];
      if (!scope || scope.trim() === '') throw new AadstsFailure(70011);
      // OIDC scopes are tolerated alongside /.default (undocumented for client credentials; not
      // rejected here so a library that adds them is not failed falsely).
      const scopes = scope.split(/\s+/).filter((s) => s !== '' && !['openid', 'profile', 'offline_access', 'email'].includes(s));
      const bad = scopes.find((s) => !s.endsWith('/.default'));
      if (scopes.length === 0 || bad !== undefined) throw new AadstsFailure(1002012, { scope: bad ?? scope });
      const resources = new Set(scopes.map((s) => s.slice(0, -'/.default'.length)));
      if (resources.size > 1) throw new AadstsFailure(700022, { scope });
      resource = [...resources][0] ?? '';
    } else {
      const r = form['resource'];
      if (!r) throw new AadstsFailure(900144, { param: 'resource' });
      resource = r;
    }
    if (!knownResources.has(resource)) throw new AadstsFailure(500011, { resource, tenant: homeTenant });

    // 13. Success.
    const iat = Math.floor(nowSec);
    const expAt = iat + tokenLifetime;
    const accessToken = jwt.sign(
      {
        aud: resource,
        iss: `https://sts.windows.net/${homeTenant}/`,
        iat,
        nbf: iat,
        exp: expAt,
        appid: rec.app.clientId,
        appidacr: acr, // 1 = client secret, 2 = certificate or other client assertion
        idp: `https://sts.windows.net/${homeTenant}/`,
        idtyp: 'app',
        oid: stableUuid(`oid:${homeTenant}:${rec.app.clientId}`),
        sub: stableUuid(`oid:${homeTenant}:${rec.app.clientId}`),
        roles: [],
        tid: homeTenant,
        uti: b64url(Buffer.from(randomUUID().replace(/-/g, ''), 'hex')),
        // The token format follows the *resource's* accepted version, not the endpoint called
        // (learn.microsoft.com/entra/identity-platform/access-tokens); Power BI and other Microsoft
        // first-party APIs get v1.0 tokens with the sts.windows.net issuer from either endpoint.
        ver: '1.0',
      },
      privateKeyPem,
      // no `noTimestamp`: jsonwebtoken would delete the iat set above.
      { algorithm: 'RS256', header: { alg: 'RS256', typ: 'JWT', kid: signingKid, x5t: signingKid } },
    );
    if (version === 'v2') {
      // v2: integers (docs/design.md §10.7); refresh_in only when configured.
      return {
        token_type: 'Bearer',
        expires_in: tokenLifetime,
        ext_expires_in: tokenLifetime,
        ...(refreshIn !== undefined ? { refresh_in: refreshIn } : {}),
        access_token: accessToken,
      };
    }
    // v1: numbers as strings (docs/design.md §10.7).
    return {
      token_type: 'Bearer',
      expires_in: String(tokenLifetime),
      ext_expires_in: String(tokenLifetime),
      expires_on: String(expAt),
      not_before: String(iat),
      resource,
      access_token: accessToken,
    };
  }

  /** Steps 6-11 for a certificate assertion (docs/design.md §8.5, §10). Throws the first failure. */
  function verifyCertificateAssertion(
    input: TokenInput,
    rec: AppRecord,
    clientId: string,
    multiTenant: boolean,
    parts: string[],
    header: Record<string, unknown>,
    claims: Record<string, unknown>,
  ): void {
    // 6. Structure, continued.
    // Entra rejects aud arrays (AADSTS50027, docs/design.md §10.3).
    if (typeof claims['aud'] !== 'string') throw new AadstsFailure(50027);
    const alg = header['alg'];
    if (typeof alg !== 'string' || alg.toLowerCase() === 'none' || /^HS/i.test(alg)) {
      // Unsigned or shared-secret JWTs are not certificate assertions.
      throw new AadstsFailure(50027);
    }
    if (!ACCEPTED_ALGS.has(alg)) throw new AadstsFailure(5002738, { alg });
    const x5t = header['x5t'];
    const x5tS256 = header['x5t#S256'];
    if (x5t === undefined && x5tS256 === undefined) {
      // docs/design.md §10.1.
      throw new AadstsFailure(50027, { detail: 'Invalid JWT token. No certificate thumbprint specified in token header.' });
    }
    if ((x5t !== undefined && typeof x5t !== 'string') || (x5tS256 !== undefined && typeof x5tS256 !== 'string')) {
      throw new AadstsFailure(50027);
    }
    if ((parts[2] ?? '') === '') throw new AadstsFailure(50027);

    // 7. iss = sub = client_id (docs/design.md §10.2, §11.1).
    if (claims['iss'] !== claims['sub']) throw new AadstsFailure(50048);
    if (typeof claims['iss'] !== 'string' || claims['iss'].toLowerCase() !== clientId.toLowerCase()) {
      throw new AadstsFailure(700021);
    }

    // 8. aud = the exact token URL posted to, query string excluded, v1 and v2 distinct, same host
    //    (docs/design.md §10.3). On /common or /organizations no aud can match the realm.
    const expectedAud = `${expectedOrigin(input.host)}${input.path}`;
    if (multiTenant || claims['aud'] !== expectedAud) throw new AadstsFailure(700023);

    // 9. Key lookup by thumbprint (docs/design.md §10.1).
    const now = new Date(nowMs());
    const x5tBytes = typeof x5t === 'string' ? strictB64urlDecode(x5t) : undefined;
    const x5tS256Bytes = typeof x5tS256 === 'string' ? strictB64urlDecode(x5tS256) : undefined;
    // What Entra echoes as "Thumbprint of key used by client": the SHA-1 it was given (or whatever
    // the x5t decodes to, e.g. the 40 ASCII bytes of a hex-as-text thumbprint), else the SHA-1 of
    // the certificate it resolved.
    const thumbFor = (cert?: { sha1: Buffer }): string | undefined =>
      x5tBytes && x5tBytes.length > 0 ? hexUpper(x5tBytes) : cert ? hexUpper(cert.sha1) : undefined;
    const matchesHeader = (c: { sha1: Buffer; sha256: Buffer }): boolean =>
      // x5t#S256 takes precedence when both are sent (undocumented, docs/design.md §10.11).
      x5tS256 !== undefined ? !!x5tS256Bytes && x5tS256Bytes.equals(c.sha256) : !!x5tBytes && x5tBytes.equals(c.sha1);

    let signer: { sha1: Buffer; sha256: Buffer; publicKey: KeyObject; notBefore: Date; notAfter: Date; registered: boolean };
    if (rec.app.sni) {
      // SNI apps are trusted by subject/issuer, so the certificate must travel in x5c
      // (docs/design.md §10.1). Accepted: an x5c leaf that is one of the app's certificates or is
      // issued by one of them (how rotation works under SNI). The header thumbprint must be the leaf's.
      const x5c = header['x5c'];
      if (x5c === undefined) {
        throw new AadstsFailure(700027, { reason: 'sni-not-found', clientId, thumbprintHex: thumbFor() });
      }
      const leafB64 = Array.isArray(x5c) ? x5c[0] : x5c; // msal-node: array; MSAL.NET: one string (docs/design.md §10.1)
      const leaf = typeof leafB64 === 'string' ? parseDerB64(leafB64) : undefined;
      if (!leaf) throw new AadstsFailure(50027);
      const exact = rec.certs.find((c) => c.der.equals(leaf.der));
      const issuer = exact ? undefined : rec.certs.find((c) => leaf.x509.checkIssued(c.x509) && leaf.x509.verify(c.x509.publicKey));
      if ((!exact && !issuer) || !matchesHeader(leaf)) {
        throw new AadstsFailure(700027, { reason: 'sni-not-found', clientId, thumbprintHex: thumbFor(leaf) });
      }
      if (!exact && (now < leaf.notBefore || now > leaf.notAfter)) {
        // A CA-issued SNI leaf outside its validity (AADSTS1000502, see table).
        throw new AadstsFailure(1000502);
      }
      signer = { ...(exact ?? leaf), publicKey: leaf.x509.publicKey, registered: !!exact };
    } else {
      // Thumbprint-registered app: x5c is not needed and is ignored (docs/design.md §10.1).
      // A hex-as-text x5t, a SHA-256 value in x5t, standard base64, or an unregistered
      // certificate all simply fail to match (docs/design.md §10.1).
      const found = rec.certs.find(matchesHeader);
      if (!found) throw new AadstsFailure(700027, { reason: 'not-found', clientId, thumbprintHex: thumbFor() });
      signer = { ...found, publicKey: found.x509.publicKey, registered: true };
    }
    const foundKey = { notBefore: signer.notBefore, notAfter: signer.notAfter };
    const thumbprintHex = thumbFor(signer);
    // The registered key credential's own validity, judged on the stand-in clock.
    if (signer.registered && now > signer.notAfter) {
      throw new AadstsFailure(700027, { reason: 'expired', clientId, thumbprintHex, foundKey });
    }
    if (signer.registered && now < signer.notBefore) {
      throw new AadstsFailure(700027, { reason: 'not-yet-valid', clientId, thumbprintHex, foundKey });
    }

    // 10. Signature with the certificate's key, for the header's alg (docs/design.md §10.5).
    if (signer.publicKey.asymmetricKeyType !== 'rsa') {
      throw new AadstsFailure(700027, { reason: 'key-unusable', clientId, thumbprintHex, foundKey });
    }
    const signingInput = Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii');
    const signature = Buffer.from(parts[2] ?? '', 'base64url');
    const ok =
      alg === 'PS256'
        ? cryptoVerify('sha256', signingInput, {
            key: signer.publicKey,
            padding: cryptoConstants.RSA_PKCS1_PSS_PADDING,
            // RFC 7518 §3.5: salt length = hash length; MSAL.NET's RSASignaturePadding.Pss does the same.
            saltLength: cryptoConstants.RSA_PSS_SALTLEN_DIGEST,
          }, signature)
        : cryptoVerify('sha256', signingInput, { key: signer.publicKey, padding: cryptoConstants.RSA_PKCS1_PADDING }, signature);
    if (!ok) throw new AadstsFailure(700027, { reason: 'bad-signature', clientId, thumbprintHex, foundKey });

    // 11. Time window on the stand-in clock, with skew (docs/design.md §10.4).
    const exp = numericDate(claims['exp']);
    if (exp === undefined) throw new AadstsFailure(50027);
    // MSAL.NET sends nbf as a JSON string and Entra reports "valid from 1970-01-01" for such
    // assertions (docs/design.md §10.2): a string nbf is treated as absent.
    const nbf = typeof claims['nbf'] === 'number' && Number.isFinite(claims['nbf']) ? claims['nbf'] : undefined;
    const nowSec = now.getTime() / 1000;
    if (nowSec > exp + SKEW_SECONDS || (nbf !== undefined && nbf - SKEW_SECONDS > nowSec)) {
      throw new AadstsFailure(700024, { now, validFrom: new Date((nbf ?? 0) * 1000), expiry: new Date(exp * 1000) });
    }
    // Not checked, because Entra does not appear to: jti replay (MSAL reuses assertions,
    // docs/design.md §10.2), iat, typ, maximum lifetime (§10.4).
  }

  /**
   * A client secret (docs/design.md §9.1): compared with every secret registered on the app. A
   * match that has expired on the stand-in clock is AADSTS7000222, no match AADSTS7000215. Entra
   * takes `client_secret` in the body and, as documented, also `client_secret_basic`
   * (learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow: "The Basic auth
   * pattern of instead providing credentials in the Authorization header, per RFC 6749 is also
   * supported"), so both are accepted here.
   */
  function verifySecret(rec: AppRecord, clientId: string, secret: string, now: Date): void {
    const matching = rec.secrets.filter((s) => secretEquals(s.value, secret));
    if (matching.length === 0) throw new AadstsFailure(7000215, { clientId });
    if (!matching.some((s) => s.expiresAt === undefined || now <= s.expiresAt)) throw new AadstsFailure(7000222, { clientId });
  }

  /**
   * Client credentials with a secret or a federated token need the tenant in the URL: no realm can
   * be inferred on /common or /organizations.
   */
  function refuseMultiTenantSegment(tenant: string): void {
    const t = tenant.toLowerCase();
    if (t === 'common') throw new AadstsFailure(9001023);
    if (t === 'organizations') {
      throw new AadstsFailure(9002313, { detail: 'Client credentials need a tenant-specific endpoint.' });
    }
  }

  /**
   * A token from another issuer, exchanged through a federated identity credential (workload
   * identity federation, docs/design.md §9.1). The first failure wins, in this order:
   *
   *  F1. The app has federated credentials (70021) and one has exactly this issuer (700211):
   *      case-sensitive, no trimming (learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations;
   *      the 2025 breaking change "federated identity credentials now use case-sensitive matching").
   *  F2. alg: `none`/HMAC are not signed tokens (50027); anything but RS256 is refused (5002738),
   *      because Entra supports RS256 issuers only ("Exchanging tokens signed with other algorithms
   *      may work, but haven't been tested", same page): the stand-in errs on refusing. No x5t and
   *      no certificate of the app is involved.
   *  F3. The signature, with the issuer's key named by the header `kid`. A kid the issuer does not
   *      publish (or no kid) is 7000272; a signature that does not verify is 50027 "External ID
   *      token from issuer failed signature verification" (error-codes page, InvalidJwtToken).
   *  F4. A credential with that issuer has exactly this subject (700213), case-sensitive.
   *  F5. `aud` holds exactly one value (a string or a one-element array, as Kubernetes sends it) and
   *      it is that credential's audience (700212).
   *  F6. exp present (50027); exp not past, nbf and iat not in the future, with the same 300 s skew
   *      as certificate assertions (700024, as seen for expired projected tokens,
   *      Azure/azure-sdk-for-rust#1739). Entra documents no maximum lifetime for these tokens, so
   *      none is enforced (AKS tokens live 1 h, `kubectl create token` up to 48 h).
   *
   * Entra does not document this order; issuer first is forced (the keys, and the algorithms they
   * allow, are the issuer's), and a foreign-`iss` assertion then gets 70021 whatever its alg, as
   * in the public reports (docs/design.md §11.1). Real Entra fetches the issuer's
   * OIDC discovery and JWKS; the stand-in is given the keys by `registerIssuer`.
   */
  function verifyFederatedToken(
    rec: AppRecord,
    parts: string[],
    header: Record<string, unknown>,
    claims: Record<string, unknown>,
    now: Date,
  ): void {
    const issuer = String(claims['iss']);
    const sub = claims['sub'];
    const aud = claims['aud'];
    const echo = {
      issuer,
      subject: typeof sub === 'string' ? sub : '',
      audience: Array.isArray(aud) ? aud.map(String).join(',') : typeof aud === 'string' ? aud : '',
    };

    // F1.
    if (rec.federated.length === 0) throw new AadstsFailure(70021, echo);
    const byIssuer = rec.federated.filter((f) => f.issuer === issuer);
    if (byIssuer.length === 0) throw new AadstsFailure(700211, echo);

    // F2.
    const alg = header['alg'];
    if (typeof alg !== 'string' || alg.toLowerCase() === 'none' || /^HS/i.test(alg) || (parts[2] ?? '') === '') {
      throw new AadstsFailure(50027);
    }
    if (!FEDERATED_ALGS.has(alg)) throw new AadstsFailure(5002738, { alg });

    // F3.
    const kid = header['kid'];
    const key = typeof kid === 'string' ? issuers.get(issuer)?.get(kid) : undefined;
    if (!key) throw new AadstsFailure(7000272, { issuer, kid: typeof kid === 'string' ? kid : '' });
    const signed =
      key.asymmetricKeyType === 'rsa' &&
      cryptoVerify('sha256', Buffer.from(`${parts[0]}.${parts[1]}`, 'ascii'), { key, padding: cryptoConstants.RSA_PKCS1_PADDING }, Buffer.from(parts[2] ?? '', 'base64url'));
    if (!signed) {
      throw new AadstsFailure(50027, { detail: 'Invalid JWT token. External ID token from issuer failed signature verification.' });
    }

    // F4.
    const bySubject = byIssuer.filter((f) => f.subject === sub);
    if (bySubject.length === 0) throw new AadstsFailure(700213, echo);

    // F5.
    const auds = typeof aud === 'string' ? [aud] : Array.isArray(aud) && aud.every((a) => typeof a === 'string') ? aud : undefined;
    const only = auds?.length === 1 ? auds[0] : undefined;
    if (only === undefined || !bySubject.some((f) => f.audiences.includes(only))) throw new AadstsFailure(700212, echo);

    // F6. NumericDates must be JSON numbers here (RFC 7519 §2): OIDC issuers send numbers.
    const exp = claims['exp'];
    const nbf = claims['nbf'];
    const iat = claims['iat'];
    const isTime = (v: unknown): v is number => typeof v === 'number' && Number.isFinite(v);
    if (!isTime(exp) || (nbf !== undefined && !isTime(nbf)) || (iat !== undefined && !isTime(iat))) throw new AadstsFailure(50027);
    const nowSec = now.getTime() / 1000;
    const early = (t: number | undefined): boolean => t !== undefined && t - SKEW_SECONDS > nowSec;
    if (nowSec > exp + SKEW_SECONDS || early(nbf) || early(iat)) {
      throw new AadstsFailure(700024, { now, validFrom: new Date((nbf ?? iat ?? 0) * 1000), expiry: new Date(exp * 1000) });
    }
  }

  function expectedOrigin(hostHeader: string): string {
    // The `host` option may be a bare host[:port] (scheme http, this server's) or a full origin
    // such as "https://login.microsoftonline.com" to model a fronting proxy.
    const h = options.host ?? hostHeader;
    return /^[a-z][a-z0-9+.-]*:\/\//i.test(h) ? h.replace(/\/+$/, '') : `http://${h}`;
  }

  return {
    url,
    port,
    requests,
    knownResources,
    publicKey: publicKeyPem,
    addApp,
    removeApp(clientId: string): void {
      apps.delete(clientId.toLowerCase());
    },
    addSecret(clientId: string, secret: string | StandInSecret): void {
      appRecord(clientId).secrets.push(normaliseSecret(secret));
    },
    removeSecret(clientId: string, value: string): void {
      const rec = appRecord(clientId);
      rec.secrets = rec.secrets.filter((s) => s.value !== value);
    },
    setSecrets(clientId: string, secrets: (string | StandInSecret)[]): void {
      appRecord(clientId).secrets = secrets.map(normaliseSecret);
    },
    setFederatedCredentials(clientId: string, credentials: StandInFederatedCredential[]): void {
      appRecord(clientId).federated = normaliseFederatedCredentials(credentials);
    },
    addFederatedCredential(clientId: string, credential: StandInFederatedCredential): void {
      const rec = appRecord(clientId);
      rec.federated = normaliseFederatedCredentials([...rec.federated, credential]);
    },
    removeFederatedCredential(clientId: string, issuer: string, subject: string): void {
      const rec = appRecord(clientId);
      rec.federated = rec.federated.filter((f) => !(f.issuer === issuer && f.subject === subject));
    },
    registerIssuer,
    removeIssuer(issuer: string): void {
      issuers.delete(issuer);
    },
    inject(fault: StandInFault): void {
      const times = fault.times ?? 1;
      if (!(times > 0)) throw new Error('StandInFault.times must be > 0');
      faults.push({ fault: { ...fault }, remaining: times });
    },
    clearFaults(): void {
      faults.length = 0;
    },
    setTokenLifetime(seconds: number, opts?: { refreshInSeconds?: number }): void {
      tokenLifetime = Math.floor(seconds);
      refreshIn = opts?.refreshInSeconds !== undefined ? Math.floor(opts.refreshInSeconds) : undefined;
    },
    setClockOffset(seconds: number): void {
      clockOffsetSeconds = seconds;
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      });
    },
  };
}

// ───────────────────────────────────────── responses ──────────────────────────────────────────

interface ResponseCtx {
  res: ServerResponse;
  record: CapturedRequest;
  clientRequestId: string | undefined;
  nowMs: () => number;
}

function baseHeaders(ctx: ResponseCtx): Record<string, string> {
  const h: Record<string, string> = {
    'content-type': 'application/json; charset=utf-8',
    'cache-control': 'no-store, no-cache',
    pragma: 'no-cache',
    'x-ms-request-id': randomUUID(),
  };
  if (ctx.clientRequestId) h['client-request-id'] = ctx.clientRequestId;
  return h;
}

function sendJson(ctx: ResponseCtx, status: number, body: unknown, extra: Record<string, string> = {}): void {
  ctx.record.outcome = status;
  if (ctx.res.destroyed || ctx.res.writableEnded) return;
  ctx.res.writeHead(status, { ...baseHeaders(ctx), ...extra });
  ctx.res.end(JSON.stringify(body));
}

function sendError(
  ctx: ResponseCtx,
  code: number,
  errCtx: ErrorContext,
  override: { status?: number | undefined; error?: string; headers?: Record<string, string> } = {},
): void {
  const entry: AadstsEntry = AADSTS[code] ?? { error: 'invalid_request', status: 400, message: () => 'Injected error.' };
  const status = override.status ?? entry.status;
  const traceId = randomUUID();
  const correlationId = ctx.clientRequestId ?? randomUUID();
  const timestamp = entraTimestamp(new Date(ctx.nowMs()));
  ctx.record.aadsts = code;
  sendJson(
    ctx,
    status,
    {
      error: override.error ?? entry.error,
      error_description: `AADSTS${code}: ${entry.message(errCtx)} Trace ID: ${traceId} Correlation ID: ${correlationId} Timestamp: ${timestamp}`,
      error_codes: [code],
      timestamp,
      trace_id: traceId,
      correlation_id: correlationId,
      error_uri: `https://login.microsoftonline.com/error?code=${code}`,
    },
    override.headers ?? {},
  );
}

function genericCodeForStatus(status: number): number {
  if (status === 429) return 90055;
  if (status === 503) return 90006;
  if (status >= 500) return 50033;
  return 9002313;
}

function openIdConfiguration(origin: string, tenantInUrls: string, tenantSegment: string): Record<string, unknown> {
  const base = `${origin}/${encodeURIComponent(tenantSegment)}`;
  return {
    token_endpoint: `${base}/oauth2/v2.0/token`,
    token_endpoint_auth_methods_supported: ['client_secret_post', 'private_key_jwt', 'client_secret_basic'],
    jwks_uri: `${base}/discovery/v2.0/keys`,
    response_modes_supported: ['query', 'fragment', 'form_post'],
    subject_types_supported: ['pairwise'],
    id_token_signing_alg_values_supported: ['RS256'],
    response_types_supported: ['code', 'id_token', 'code id_token', 'id_token token'],
    scopes_supported: ['openid', 'profile', 'email', 'offline_access'],
    issuer: `${origin}/${tenantInUrls}/v2.0`,
    request_uri_parameter_supported: false,
    userinfo_endpoint: 'https://graph.microsoft.com/oidc/userinfo',
    authorization_endpoint: `${base}/oauth2/v2.0/authorize`,
    device_authorization_endpoint: `${base}/oauth2/v2.0/devicecode`,
    http_logout_supported: true,
    frontchannel_logout_supported: true,
    end_session_endpoint: `${base}/oauth2/v2.0/logout`,
    claims_supported: ['sub', 'iss', 'cloud_instance_name', 'cloud_instance_host_name', 'cloud_graph_host_name', 'msgraph_host', 'aud', 'exp', 'iat', 'auth_time', 'acr', 'nonce', 'preferred_username', 'name', 'tid', 'ver', 'at_hash', 'c_hash', 'email'],
    kerberos_endpoint: `${base}/kerberos`,
    tenant_region_scope: 'NA',
    cloud_instance_name: 'microsoftonline.com',
    cloud_graph_host_name: 'graph.windows.net',
    msgraph_host: 'graph.microsoft.com',
    rbac_url: 'https://pas.windows.net',
  };
}

// ────────────────────────────────────────── helpers ───────────────────────────────────────────

function registerCertificate(pem: string): RegisteredCert {
  const x509 = new X509Certificate(pem);
  return describeCert(x509);
}

function describeCert(x509: X509Certificate): RegisteredCert {
  const der = x509.raw;
  const notBefore = new Date(x509.validFrom);
  const notAfter = new Date(x509.validTo);
  if (Number.isNaN(notBefore.getTime()) || Number.isNaN(notAfter.getTime())) {
    throw new Error(`entra stand-in: cannot read validity of certificate ${x509.subject}`);
  }
  return {
    x509,
    der,
    sha1: createHash('sha1').update(der).digest(),
    sha256: createHash('sha256').update(der).digest(),
    notBefore,
    notAfter,
  };
}

function parseDerB64(b64: string): RegisteredCert | undefined {
  // x5c entries are standard base64 DER (RFC 7515 §4.1.6), not base64url.
  if (!/^[A-Za-z0-9+/]+={0,2}$/.test(b64)) return undefined;
  try {
    return describeCert(new X509Certificate(Buffer.from(b64, 'base64')));
  } catch {
    return undefined;
  }
}

/**
 * How the stand-in tells a federated token from a certificate assertion: a certificate assertion
 * has iss = sub = client_id (docs/design.md §10.2), a federated token has the external issuer in
 * `iss` and the workload in `sub`. An assertion whose `iss` is neither its `sub` nor the client id
 * is treated as federated, which is what Entra appears to do: such assertions come back with
 * AADSTS70021 "No matching federated identity record" (docs/design.md §11.1). Assertions with
 * iss = client_id ≠ sub or iss = sub ≠ client_id keep the certificate answers (50048, 700021).
 */
function isFederatedToken(claims: Record<string, unknown>, clientId: string): boolean {
  const iss = claims['iss'];
  return typeof iss === 'string' && iss !== claims['sub'] && iss.toLowerCase() !== clientId.toLowerCase();
}

/**
 * `Authorization: Basic base64(urlencode(client_id) ":" urlencode(client_secret))` (RFC 6749
 * §2.3.1): both halves are form-urlencoded (appendix B), so `+` is a space and `%XX` a byte.
 * undefined when there is no Basic header; 'malformed' when it cannot be read.
 */
function parseBasicAuthorization(value: string | undefined): { clientId: string; secret: string } | 'malformed' | undefined {
  if (value === undefined) return undefined;
  const m = /^Basic[ ]+([A-Za-z0-9+/]+={0,2})[ ]*$/i.exec(value);
  if (!m) return /^Basic\b/i.test(value) ? 'malformed' : undefined;
  const decoded = Buffer.from(m[1] ?? '', 'base64').toString('utf8');
  const colon = decoded.indexOf(':');
  if (colon < 0) return 'malformed';
  const formDecode = (part: string): string | undefined => {
    try {
      return decodeURIComponent(part.replace(/\+/g, ' '));
    } catch {
      return undefined;
    }
  };
  const clientId = formDecode(decoded.slice(0, colon));
  const secret = formDecode(decoded.slice(colon + 1));
  if (!clientId || secret === undefined) return 'malformed';
  return { clientId, secret };
}

function basicClientId(value: string | undefined): string | undefined {
  const b = parseBasicAuthorization(value);
  return typeof b === 'object' ? b.clientId : undefined;
}

/** Constant-time comparison of a presented secret with a registered one. */
function secretEquals(registered: string, presented: string): boolean {
  const a = createHash('sha256').update(registered, 'utf8').digest();
  const b = createHash('sha256').update(presented, 'utf8').digest();
  return timingSafeEqual(a, b);
}

function normaliseSecret(s: string | StandInSecret): StandInSecret {
  return typeof s === 'string' ? { value: s } : { ...s };
}

/** Refuses what Graph refuses when a federated credential is created (considerations page, "Errors"). */
function normaliseFederatedCredentials(list: StandInFederatedCredential[]): Required<StandInFederatedCredential>[] {
  if (list.length > MAX_FEDERATED_CREDENTIALS) {
    throw new Error(`entra stand-in: at most ${MAX_FEDERATED_CREDENTIALS} federated identity credentials per app`);
  }
  const seen = new Set<string>();
  return list.map((f) => {
    const audiences = f.audiences ?? [AZURE_AD_TOKEN_EXCHANGE];
    if (audiences.length !== 1) throw new Error('entra stand-in: federated identity credentials must have exactly one audience');
    if (!f.issuer || !f.subject) throw new Error('entra stand-in: a federated identity credential needs an issuer and a subject');
    const k = JSON.stringify([f.issuer, f.subject]);
    if (seen.has(k)) throw new Error('entra stand-in: issuer and subject combination already exists for this app');
    seen.add(k);
    return { issuer: f.issuer, subject: f.subject, audiences: [...audiences] };
  });
}

/** A JWKS (keys with a `kid`; `use` other than `sig` skipped) or PEM public keys by kid. */
function importIssuerKeys(issuer: string, keys: StandInIssuerKeys): Map<string, KeyObject> {
  const out = new Map<string, KeyObject>();
  if (Array.isArray((keys as { keys?: unknown }).keys)) {
    for (const jwk of (keys as { keys: JsonWebKey[] }).keys) {
      if (typeof jwk.kid !== 'string' || (jwk.use !== undefined && jwk.use !== 'sig')) continue;
      out.set(jwk.kid, createPublicKey({ key: jwk, format: 'jwk' }));
    }
  } else {
    for (const [kid, pem] of Object.entries(keys as Record<string, string>)) out.set(kid, createPublicKey(pem));
  }
  if (out.size === 0) throw new Error(`entra stand-in: no usable signing key for issuer ${issuer}`);
  return out;
}

function decodeAssertionInto(record: CapturedRequest, assertion: string | undefined): void {
  if (!assertion) return;
  const parts = assertion.split('.');
  if (parts.length !== 3) return;
  const header = decodeJsonObject(parts[0] ?? '');
  const claims = decodeJsonObject(parts[1] ?? '');
  if (header) record.header = header;
  if (claims) record.claims = claims;
}

function decodeJsonObject(part: string): Record<string, unknown> | undefined {
  const bytes = strictB64urlDecode(part);
  return bytes && jsonObjectOf(bytes);
}


/** base64url only: no padding, no `+`/`/` (MSAL's encoding, docs/design.md §10.1). */
function strictB64urlDecode(s: string): Buffer | undefined {
  return isB64url(s) ? Buffer.from(s, 'base64url') : undefined;
}

function b64url(buf: Buffer): string {
  return buf.toString('base64url');
}

function hexUpper(buf: Buffer): string {
  return buf.toString('hex').toUpperCase();
}

/** NumericDate as number, or as a numeric JSON string (MSAL.NET sends strings and Entra accepts them, docs/design.md §10.2). */
function numericDate(v: unknown): number | undefined {
  if (typeof v === 'number' && Number.isFinite(v)) return v;
  if (typeof v === 'string' && /^\d+(\.\d+)?$/.test(v)) return Number(v);
  return undefined;
}

function iso7(d: Date): string {
  return d.toISOString().replace(/\.(\d{3})Z$/, '.$10000Z');
}

function entraTimestamp(d: Date): string {
  return d.toISOString().replace('T', ' ').replace(/\.\d{3}Z$/, 'Z');
}

function foundKeyDate(d: Date): string {
  const p = (n: number): string => String(n).padStart(2, '0');
  return `${p(d.getUTCMonth() + 1)}/${p(d.getUTCDate())}/${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())}`;
}

function stableUuid(seed: string): string {
  const h = createHash('sha256').update(seed).digest('hex');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-4${h.slice(13, 16)}-a${h.slice(17, 20)}-${h.slice(20, 32)}`;
}

function firstValues(params: URLSearchParams): Record<string, string> {
  const out: Record<string, string> = {};
  for (const [k, v] of params) if (!(k in out)) out[k] = v;
  return out;
}



