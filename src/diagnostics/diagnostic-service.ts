// DiagnosticService (docs/design.md §2.3, §5.4): lints a pasted assertion, explains a pasted IdP error, shows
// what the broker would send for a configured credential, and runs one live probe. It never returns
// a token, an assertion's signature, a client secret or key material, never logs what was pasted, and
// never fetches a URL that came with a request: the only network calls are the probe's exchange and
// the discovery of a configured issuer (credential view), both to URLs from the configuration.
// What a credential sends follows its client-authentication kind: a client assertion the broker
// signs (certificate), a federated token another issuer signed, or a client secret (no assertion).
import type { CredentialRuntime, TokenService } from '../core/token-service.ts';
import type { ClientAuthenticationKind, ClientAuthTarget } from '../client-auth/client-authentication.ts';
import type { Clock } from '../kernel/clock.ts';
import { CredentialUnavailable, IdpRejected, IdpUnavailable } from '../kernel/errors.ts';
import type { Logger } from '../observability/logger.ts';
import { resourceOfScope } from '../idps/entra/entra-clouds.ts';
import { audienceFor } from '../idps/oidc/oidc-client-credentials-provider.ts';
import type { AssertionKind, CheckedCertificate, Finding, IdpProfileName, Verdict } from './assertion-rule.ts';
import { audienceList, issuerOf, tokenEndpointOf, type CredentialTarget } from './assertion-target.ts';
import { lintAssertion, verdictOf, type LintResult } from './assertion-linter.ts';
import { certificateFacts, type CertificateFacts } from './certificate-facts.ts';
import { clientAuthFindings, effectiveSecretMethod } from './client-auth-findings.ts';
import { explainIdpError, type ErrorExplainResult } from './error-explainer.ts';
import { scrubSecrets } from '../idps/scrub-secrets.ts';
import { decodeTokenClaims, tokenFindings } from './token-claims.ts';

/** Discovery for the credential view gets this long; the view is still shown when it fails. */
const DISCOVERY_TIMEOUT_MS = 5_000;

export interface AssertionCheckRequest {
  assertion: string;
  credential?: string;
  tokenEndpoint?: string;
  provider?: IdpProfileName;
  clientId?: string;
}

export interface CredentialDescription {
  credential: string;
  provider: 'entra' | 'oidc';
  preset?: string;
  endpoint_version?: 'v1' | 'v2';
  cloud?: string;
  tenant_id?: string;
  client_id: string;
  token_endpoint: string | null;
  /** The aud its assertion must carry: the token URL (certificate), the token exchange audience (federated token at Entra); null for a secret. */
  audience: string | null;
  /** How the credential authenticates (kind, where the material lives, its public facts), never the material. */
  client_authentication: Record<string, unknown>;
  /** The signing certificate (certificate credentials), else null. */
  certificate: (CertificateFacts & { chain: string[] }) | null;
  /**
   * The assertion the next exchange would send, decoded: one the broker would sign (certificate: a
   * fresh jti and times each time) or the federated token in its file (signed by its issuer); the
   * signature is never shown. Null when the kind sends none (client secret).
   */
  assertion: { header: Record<string, unknown>; claims: Record<string, unknown> | null; signed: false; signed_by: 'broker' | 'external issuer' } | null;
  /** Delegated credentials: the grant (state, who signed in, scopes, last refresh), never a token; else null. */
  delegated: Record<string, unknown> | null;
  findings: Finding[];
  verdict: Verdict;
}

export type ProbeResult =
  | {
      credential: string;
      scope: string;
      outcome: 'ok';
      duration_ms: number;
      token: { token_type: string; expires_in: number; format: 'jwt' | 'opaque'; claims?: Record<string, unknown> };
      findings: Finding[];
    }
  | {
      credential: string;
      scope: string;
      outcome: 'rejected';
      duration_ms: number;
      idp_error: string;
      idp: { error: string; error_description?: string; error_codes?: number[]; trace_id?: string; correlation_id?: string; http_status: number };
      explanation: Omit<ErrorExplainResult, 'parsed'>;
      findings: Finding[];
    }
  | { credential: string; scope: string; outcome: 'unavailable'; duration_ms: number; message: string; retry_after_seconds: number; findings: Finding[] };

function lintProfileOf(runtime: CredentialRuntime): IdpProfileName {
  return runtime.config.provider === 'entra' ? 'entra' : runtime.config.preset;
}

/** What each client-authentication kind sends as `client_assertion`, if anything. */
const ASSERTION_KIND_OF: Readonly<Record<ClientAuthenticationKind, AssertionKind | undefined>> = {
  certificate: 'client_assertion',
  federatedToken: 'federated_token',
  clientSecret: undefined,
  publicClient: undefined,
};

export class DiagnosticService {
  constructor(private readonly deps: { tokenService: TokenService; clock: Clock; logger: Logger }) {}

  /** The certificate of a credential, for checks; the private key only to test that it is the certificate's pair. */
  private checkedCertificate(runtime: CredentialRuntime): CheckedCertificate | undefined {
    if (ASSERTION_KIND_OF[runtime.auth.kind] !== 'client_assertion') return undefined;
    const cert = runtime.auth.signingCertificate?.();
    return cert && { leaf: cert.leaf, thumbprints: cert.thumbprints, keyBits: cert.keyBits, privateKey: cert.privateKey };
  }

  /**
   * Where a credential's assertions go. Entra endpoints and configured OIDC token endpoints are
   * known without I/O; for an OIDC issuer without tokenEndpoint, `discover` decides between running
   * the configured discovery (credential view) and deriving what the IdP's URL layout fixes (lint).
   */
  private async credentialTarget(runtime: CredentialRuntime, discover: boolean): Promise<CredentialTarget & { discoveryError?: string }> {
    const c = runtime.config;
    const base = {
      id: c.id,
      idp: lintProfileOf(runtime),
      cloud: c.provider === 'entra' ? c.cloud : undefined,
      clientId: c.clientId,
      algorithm: runtime.auth.assertionAlgorithm?.(),
    };
    if (c.provider === 'entra' || c.tokenEndpoint || discover) {
      try {
        const d = await runtime.provider.describeEndpoint(AbortSignal.timeout(DISCOVERY_TIMEOUT_MS));
        return { ...base, tokenEndpoint: d.tokenEndpoint, audience: d.audience, issuer: c.provider === 'oidc' ? (c.issuer ?? issuerOf(base.idp, d.tokenEndpoint)) : undefined };
      } catch (err) {
        if (!(err instanceof IdpRejected || err instanceof IdpUnavailable)) throw err;
        return { ...base, issuer: c.provider === 'oidc' ? c.issuer : undefined, discoveryError: err.message };
      }
    }
    const issuer = c.issuer!;
    const tokenEndpoint = tokenEndpointOf(base.idp, issuer);
    return { ...base, issuer, tokenEndpoint, audience: tokenEndpoint || c.preset !== 'generic' ? audienceFor(c.preset, tokenEndpoint ?? issuer, issuer) : undefined };
  }

  async checkAssertion(request: AssertionCheckRequest): Promise<LintResult> {
    const runtime = request.credential ? this.deps.tokenService.credential(request.credential) : undefined;
    const result = lintAssertion({
      assertion: request.assertion,
      target: {
        // A configured credential says what it sends; otherwise the JWT's shape does.
        kind: runtime ? ASSERTION_KIND_OF[runtime.auth.kind] : undefined,
        tokenEndpoint: request.tokenEndpoint,
        provider: request.provider,
        clientId: request.clientId,
        credential: runtime ? await this.credentialTarget(runtime, false) : undefined,
      },
      certificate: runtime ? this.checkedCertificate(runtime) : undefined,
      nowMs: this.deps.clock.now(),
    });
    if (runtime && ASSERTION_KIND_OF[runtime.auth.kind] === undefined) {
      result.findings.push({
        id: 'credential.sends_no_assertion',
        severity: 'info',
        message: `credential '${runtime.config.id}' authenticates with a client secret and sends no assertion: the JWT was checked by its own shape, against the credential's IdP and client`,
      });
    }
    // Ids and the verdict only: the assertion, its claims and its signature are never logged.
    this.deps.logger.info({ credentialId: request.credential, idp: result.target.idp, kind: result.target.kind, verdict: result.verdict, findings: result.findings.filter((f) => f.severity !== 'info').map((f) => f.id) }, 'assertion checked');
    return result;
  }

  async describeCredential(id: string): Promise<CredentialDescription> {
    const runtime = this.deps.tokenService.credential(id);
    const c = runtime.config;
    const now = this.deps.clock.now();
    const target = await this.credentialTarget(runtime, true);
    const cert = runtime.auth.signingCertificate?.();
    const kind = ASSERTION_KIND_OF[runtime.auth.kind];
    const authTarget: ClientAuthTarget = { clientId: c.clientId, tokenEndpoint: target.tokenEndpoint ?? '', audience: target.audience ?? '' };
    const preview = kind ? runtime.auth.previewAssertion?.(authTarget, now) : undefined;
    const findings: Finding[] = [];
    const linted = !!preview && (preview.claims !== null || kind === 'client_assertion');
    let lintedAudience: string | undefined;
    if (preview && linted) {
      // A certificate credential without a known audience still has its header judged.
      const lint = lintAssertion({
        unsigned: { header: preview.header, claims: preview.claims ?? { iss: c.clientId, sub: c.clientId } },
        target: { kind, credential: target },
        certificate: this.checkedCertificate(runtime),
        nowMs: now,
      });
      findings.push(...lint.findings);
      lintedAudience = lint.target.audience;
    }
    findings.push(...clientAuthFindings({ runtime, tokenEndpoint: target.tokenEndpoint, linted, nowMs: now }));
    if (target.discoveryError) {
      findings.unshift({
        id: 'endpoint.discovery_failed',
        severity: 'error',
        claim: 'token_endpoint',
        message: `the token endpoint could not be discovered: ${target.discoveryError}`,
        fix: 'check issuer ({issuer}/.well-known/openid-configuration must answer) or set tokenEndpoint',
      });
    }
    const order = { error: 0, warning: 1, info: 2 } as const;
    findings.sort((a, b) => order[a.severity] - order[b.severity]);
    return {
      credential: c.id,
      provider: c.provider,
      ...(c.provider === 'oidc' ? { preset: c.preset } : { endpoint_version: c.endpointVersion, cloud: c.cloud, tenant_id: c.tenantId }),
      client_id: c.clientId,
      token_endpoint: target.tokenEndpoint ?? null,
      // The aud the credential's assertion must carry: the token URL (certificate), the token exchange audience (federated token at Entra); a secret sends none.
      audience: (kind === 'client_assertion' ? target.audience : kind === 'federated_token' ? lintedAudience : undefined) ?? null,
      client_authentication: runtime.auth.describe(now),
      certificate: cert ? { ...certificateFacts(cert.leaf, now), chain: cert.chain.map((x) => x.subject.replace(/\n/g, ', ')) } : null,
      assertion: preview ? { header: preview.header, claims: preview.claims, signed: false, signed_by: preview.signedBy } : null,
      delegated: runtime.grant?.describe() ?? null,
      findings,
      verdict: verdictOf(findings),
    };
  }

  /** One exchange bypassing the cache; the token is decoded for its claims and dropped. */
  async probe(id: string, scope: string): Promise<ProbeResult> {
    const runtime = this.deps.tokenService.credential(id);
    const c = runtime.config;
    const started = this.deps.clock.now();
    const elapsed = () => this.deps.clock.now() - started;
    const log = this.deps.logger;
    try {
      const token = await this.deps.tokenService.exchangeUncached(id, scope);
      const decoded = decodeTokenClaims(token.accessToken);
      const now = this.deps.clock.now();
      const findings = tokenFindings(decoded, {
        provider: c.provider,
        clientId: c.clientId,
        tenantId: c.provider === 'entra' ? c.tenantId : undefined,
        cloud: c.provider === 'entra' ? c.cloud : undefined,
        resource: c.provider === 'entra' ? resourceOfScope(scope) : (c.tokenParams.audience ?? c.tokenParams.resource),
        scope,
        nowSeconds: Math.floor(now / 1000),
      });
      log.info({ credentialId: id, scope, outcome: 'ok', durationMs: elapsed() }, 'diagnostic probe');
      return {
        credential: id,
        scope,
        outcome: 'ok',
        duration_ms: elapsed(),
        token: { token_type: token.tokenType, expires_in: Math.max(0, Math.floor((token.expiresAt - now) / 1000)), format: decoded.format, claims: decoded.claims },
        findings,
      };
    } catch (err) {
      if (err instanceof IdpRejected) {
        log.warn({ credentialId: id, scope, outcome: 'rejected', idpError: err.idpError, durationMs: elapsed() }, 'diagnostic probe');
        const idp = {
          error: err.idp.error,
          error_description: err.idp.errorDescription ? scrubSecrets(err.idp.errorDescription) : undefined,
          error_codes: err.idp.errorCodes,
          trace_id: err.idp.traceId,
          correlation_id: err.idp.correlationId,
          http_status: err.idp.httpStatus,
        };
        const { parsed: _parsed, ...explanation } = explainIdpError(idp);
        // What the broker sends for this credential, so the refusal can be read against it.
        const own = await this.describeCredential(id).then((d) => d.findings.filter((f) => f.severity !== 'info'), () => []);
        return {
          credential: id,
          scope,
          outcome: 'rejected',
          duration_ms: elapsed(),
          idp_error: err.idpError,
          idp,
          explanation,
          findings: [
            { id: 'probe.rejected', severity: 'error', message: scrubSecrets(err.message), idp_error: err.idpError, fix: explanation.fix ?? err.hint },
            ...own,
            ...this.materialInUse(runtime),
          ],
        };
      }
      if (err instanceof IdpUnavailable) {
        log.warn({ credentialId: id, scope, outcome: 'unavailable', durationMs: elapsed() }, 'diagnostic probe');
        // Nothing sendable at hand (a federated token expired, a secret file gone): nothing was sent.
        const local = err instanceof CredentialUnavailable;
        return {
          credential: id,
          scope,
          outcome: 'unavailable',
          duration_ms: elapsed(),
          message: err.message,
          retry_after_seconds: err.retryAfterSeconds,
          findings: [
            local
              ? { id: 'probe.credential_unavailable', severity: 'error', message: err.message, fix: 'fix the client authentication material named above (see GET /v1/diagnostics/credentials/{id}); nothing was sent to the IdP' }
              : { id: 'probe.unavailable', severity: 'error', message: err.message, fix: 'check that the broker can reach the IdP (proxy, firewall, DNS) and try again' },
          ],
        };
      }
      throw err;
    }
  }

  /** After a refusal: what the broker presented, to compare with what the IdP has registered (public facts only). */
  private materialInUse(runtime: CredentialRuntime): Finding[] {
    const c = runtime.config;
    const cert = runtime.auth.signingCertificate?.();
    if (cert) {
      return [{
        id: 'probe.certificate_in_use',
        severity: 'info',
        claim: 'certificate',
        // The portal lists the SHA-1 hex; Entra echoes it as "Thumbprint of key used by client" (docs/design.md §11.1).
        message: `the broker signed with certificate ${cert.leaf.subject.replace(/\n/g, ', ')}, SHA-1 thumbprint ${cert.thumbprints.sha1Hex} (as the Azure portal lists it), valid until ${cert.notAfter.toISOString()}: compare it with the certificates registered for client ${c.clientId}`,
        actual: cert.thumbprints.sha1Hex,
      }];
    }
    if (runtime.auth.kind === 'federatedToken') {
      const claims = runtime.auth.previewAssertion?.({ clientId: c.clientId, tokenEndpoint: '', audience: '' }, this.deps.clock.now()).claims;
      if (!claims) return [];
      const aud = audienceList(claims.aud).join(', ');
      return [{
        id: 'probe.federated_token_in_use',
        severity: 'info',
        claim: 'iss',
        message: `the broker sent the federated token from ${c.federatedToken?.file}: iss ${String(claims.iss)}, sub ${String(claims.sub)}, aud ${aud}: compare them with the federated credentials registered for client ${c.clientId} (exact, case-sensitive)`,
        actual: `issuer ${String(claims.iss)} · subject ${String(claims.sub)} · audience ${aud}`,
      }];
    }
    if (runtime.auth.kind === 'clientSecret' && c.clientSecret) {
      const facts = runtime.auth.describe(this.deps.clock.now());
      return [{
        id: 'probe.secret_in_use',
        severity: 'info',
        claim: 'client_secret',
        message: `the broker sent the secret read from ${String(facts.file ?? c.clientSecret.file)} (changed ${String(facts.modified_at ?? 'at an unknown time')}) as ${effectiveSecretMethod(c)}: compare it with the secret values registered for client ${c.clientId} (the value, not the secret's id)`,
      }];
    }
    return [];
  }

  explain(text: string): ErrorExplainResult {
    const result = explainIdpError(text);
    this.deps.logger.info({ recognized: result.recognized, codes: result.explanations.map((e) => e.code) }, 'error explained');
    return result;
  }
}
