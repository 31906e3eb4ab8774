// A strict, in-process stand-in for Microsoft Entra ID's token endpoints, for integration tests of
// the broker (the real Entra cannot be reached from here).
//
// "Strict" means: it checks a certificate client assertion the way docs/design.md §10 says Entra
// does and answers with real-shaped AADSTS error bodies (§11.1), so a broker that passes here has a
// good chance of passing against the real service. Where Microsoft's documentation (or public
// reports) leave a behaviour undocumented, the comment says so and the stand-in errs on the side of
// rejecting: a false red in a test is cheaper than a false green in production.
//
// Validation order is the numbered list of docs/design.md §8.5; like Entra, the first failure wins.
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo, Socket } from 'node:net';
import {
  X509Certificate,
  constants as cryptoConstants,
  createHash,
  generateKeyPairSync,
  randomUUID,
  verify as cryptoVerify,
  type KeyObject,
} from 'node:crypto';
import { setTimeout as sleep } from 'node:timers/promises';
import jwt from 'jsonwebtoken';

// ───────────────────────────────────────── public API ─────────────────────────────────────────

export interface StandInApp {
  tenantId: string;
  clientId: string;
  /** PEM certificates registered on the app ("Certificates & secrets"). For an SNI app: the trusted certificates / issuing CAs. */
  certificates: string[];
  /** Subject-name/issuer app: every assertion must carry `x5c` (docs/design.md §10.1). */
  sni?: boolean;
}

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
  /** Parsed `application/x-www-form-urlencoded` body (empty for other bodies). */
  form: Record<string, string>;
  /** Decoded `client_assertion` header, when it could be decoded (best effort, even if invalid). */
  header?: Record<string, unknown>;
  /** Decoded `client_assertion` claims, when they could be decoded. */
  claims?: Record<string, unknown>;
  /** HTTP status sent; 0 when the connection was dropped (fault) or no answer was written. */
  outcome: number;
  aadsts?: number;
}

export interface EntraStandIn {
  url: string;
  port: number;
  requests: CapturedRequest[];
  addApp(app: StandInApp): void;
  removeApp(clientId: string): void;
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
  9002313: {
    error: 'invalid_request',
    status: 400,
    message: () => 'Invalid request. Request is malformed or invalid.',
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

export async function startEntraStandIn(options: { apps?: StandInApp[]; host?: string } = {}): Promise<EntraStandIn> {
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

  const addApp = (app: StandInApp): void => {
    const certs = app.certificates.map((pem) => registerCertificate(pem));
    apps.set(app.clientId.toLowerCase(), { app: { ...app, certificates: [...app.certificates] }, certs });
  };
  for (const app of options.apps ?? []) addApp(app);

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

    const body = await readBody(req);
    // Only a form body is a form; anything else reaches the validation below as an empty form and
    // fails like Entra does (AADSTS900144 for the missing grant_type).
    const mediaType = (req.headers['content-type'] ?? '').split(';')[0]?.trim().toLowerCase();
    const form = mediaType === 'application/x-www-form-urlencoded' ? firstValues(new URLSearchParams(body.toString('utf8'))) : {};
    record.form = form;

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
          header: record.header,
          claims: record.claims,
          assertionRaw: form['client_assertion'],
        });
        sendJson(ctx, 200, answer);
      } catch (e) {
        if (!(e instanceof AadstsFailure)) throw e;
        sendError(ctx, e.code, { tenant, clientId: form['client_id'], ...e.ctx });
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
    header: Record<string, unknown> | undefined;
    claims: Record<string, unknown> | undefined;
    assertionRaw: string | undefined;
  }

  function processTokenRequest(input: TokenInput): Record<string, unknown> {
    const { form, tenant, version } = input;
    if (input.method !== 'POST') throw new AadstsFailure(900561, { method: input.method });

    // 2. Tenant.
    const multiTenant = MULTI_TENANT_SEGMENTS.has(tenant.toLowerCase());
    if (!multiTenant && !tenantKnown(tenant)) throw new AadstsFailure(90002, { tenant });

    // 3. Grant and client id.
    const grantType = form['grant_type'];
    if (!grantType) throw new AadstsFailure(900144, { param: 'grant_type' });
    if (grantType !== 'client_credentials') throw new AadstsFailure(70003, { grantType });
    const clientId = form['client_id'];
    if (!clientId) throw new AadstsFailure(900144, { param: 'client_id' });

    // 4. The app must exist in that tenant (GUIDs compare case-insensitively).
    const rec = apps.get(clientId.toLowerCase());
    if (!rec || (!multiTenant && rec.app.tenantId.toLowerCase() !== tenant.toLowerCase())) {
      throw new AadstsFailure(700016, { clientId, tenant });
    }
    const homeTenant = rec.app.tenantId;

    // 5. Credential kind (docs/design.md §11.1: 7000215, 7000218; §10.5 for the assertion type).
    if (form['client_secret'] !== undefined) throw new AadstsFailure(7000215, { clientId });
    const assertion = input.assertionRaw;
    if (!assertion) throw new AadstsFailure(7000218);
    const assertionType = form['client_assertion_type'];
    if (!assertionType) throw new AadstsFailure(900144, { param: 'client_assertion_type' });
    if (assertionType !== JWT_BEARER) throw new AadstsFailure(90011);

    // 6. Structure. Must be a compact JWS whose three parts are base64url JSON objects.
    const parts = assertion.split('.');
    const { header, claims } = input;
    if (parts.length !== 3 || !header || !claims || !isB64url(parts[2] ?? '')) throw new AadstsFailure(50027);
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
        appidacr: '2', // 2 = authenticated with a certificate
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
  if (!bytes || bytes.length === 0) return undefined;
  try {
    const v: unknown = JSON.parse(bytes.toString('utf8'));
    return v !== null && typeof v === 'object' && !Array.isArray(v) ? (v as Record<string, unknown>) : undefined;
  } catch {
    return undefined;
  }
}

function isB64url(s: string): boolean {
  return /^[A-Za-z0-9_-]*$/.test(s) && s.length % 4 !== 1;
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

function headerValue(req: IncomingMessage, name: string): string | undefined {
  const v = req.headers[name];
  return Array.isArray(v) ? v[0] : v;
}

function safeDecode(s: string): string {
  try {
    return decodeURIComponent(s);
  } catch {
    return s;
  }
}

async function readBody(req: IncomingMessage): Promise<Buffer> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    const b = chunk as Buffer;
    size += b.length;
    if (size > MAX_BODY_BYTES) break;
    chunks.push(b);
  }
  return Buffer.concat(chunks);
}
