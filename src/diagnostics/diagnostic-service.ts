// DiagnosticService (docs/design.md §2.3, §5.4): lints a pasted assertion, explains a pasted IdP error, shows
// what the broker would send for a configured credential, and runs one live probe. It never returns
// a token, an assertion's signature or key material, never logs what was pasted, and never fetches a
// URL that came with a request: the only network calls are the probe's exchange and the discovery of
// a configured issuer (credential view), both to URLs from the configuration.
import type { CredentialRuntime, TokenService } from '../core/token-service.ts';
import type { Clock } from '../core/clock.ts';
import { IdpRejected, IdpUnavailable } from '../core/errors.ts';
import type { Logger } from '../observability/logger.ts';
import { resourceOfScope } from '../providers/entra-clouds.ts';
import { audienceFor } from '../providers/oidc-client-credentials-provider.ts';
import type { CheckedCertificate, Finding, IdpKind, Verdict } from './assertion-rule.ts';
import { issuerOf, tokenEndpointOf, type CredentialTarget } from './assertion-target.ts';
import { lintAssertion, verdictOf, type LintResult } from './assertion-linter.ts';
import { certificateFacts, type CertificateFacts } from './certificate-facts.ts';
import { explainIdpError, scrubJws, type ErrorExplainResult } from './error-explainer.ts';
import { decodeTokenClaims, tokenFindings } from './token-claims.ts';

/** Discovery for the credential view gets this long; the view is still shown when it fails. */
const DISCOVERY_TIMEOUT_MS = 5_000;

export interface AssertionCheckRequest {
  assertion: string;
  credential?: string;
  tokenEndpoint?: string;
  provider?: IdpKind;
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
  audience: string | null;
  certificate: CertificateFacts & { chain: string[] };
  /** What the broker would sign for the next exchange (a fresh jti and times each time); never signed here. */
  assertion: { header: Record<string, unknown>; claims: Record<string, unknown> | null; signed: false };
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

function idpKindOf(runtime: CredentialRuntime): IdpKind {
  return runtime.config.provider === 'entra' ? 'entra' : runtime.config.preset;
}

export class DiagnosticService {
  constructor(private readonly deps: { tokenService: TokenService; clock: Clock; logger: Logger }) {}

  /** The certificate of a credential, for checks; the private key only to test that it is the certificate's pair. */
  private checkedCertificate(runtime: CredentialRuntime): CheckedCertificate {
    const cert = runtime.certificates.current();
    return { leaf: cert.leaf, thumbprints: cert.thumbprints, keyBits: cert.keyBits, privateKey: cert.privateKey };
  }

  /**
   * Where a credential's assertions go. Entra endpoints and configured OIDC token endpoints are
   * known without I/O; for an OIDC issuer without tokenEndpoint, `discover` decides between running
   * the configured discovery (credential view) and deriving what the IdP's URL layout fixes (lint).
   */
  private async credentialTarget(runtime: CredentialRuntime, discover: boolean): Promise<CredentialTarget & { discoveryError?: string }> {
    const c = runtime.config;
    const base = { id: c.id, idp: idpKindOf(runtime), clientId: c.clientId, algorithm: runtime.signer.profile.algorithm };
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
        tokenEndpoint: request.tokenEndpoint,
        provider: request.provider,
        clientId: request.clientId,
        credential: runtime ? await this.credentialTarget(runtime, false) : undefined,
      },
      certificate: runtime ? this.checkedCertificate(runtime) : undefined,
      nowMs: this.deps.clock.now(),
    });
    // Ids and the verdict only: the assertion, its claims and its signature are never logged.
    this.deps.logger.info({ credentialId: request.credential, idp: result.target.idp, verdict: result.verdict, findings: result.findings.filter((f) => f.severity !== 'info').map((f) => f.id) }, 'assertion checked');
    return result;
  }

  async describeCredential(id: string): Promise<CredentialDescription> {
    const runtime = this.deps.tokenService.credential(id);
    const c = runtime.config;
    const now = this.deps.clock.now();
    const target = await this.credentialTarget(runtime, true);
    const cert = runtime.certificates.current();
    const header = runtime.signer.buildHeader(cert) as unknown as Record<string, unknown>;
    const claims = target.audience ? (runtime.signer.buildClaims(target.audience, c.clientId, now) as unknown as Record<string, unknown>) : null;
    const lint = lintAssertion({
      unsigned: { header, claims: claims ?? { iss: c.clientId, sub: c.clientId } },
      target: { credential: target },
      certificate: this.checkedCertificate(runtime),
      nowMs: now,
    });
    const findings = [...lint.findings];
    if (target.discoveryError) {
      findings.unshift({
        id: 'endpoint.discovery_failed',
        severity: 'error',
        claim: 'token_endpoint',
        message: `the token endpoint could not be discovered: ${target.discoveryError}`,
        fix: 'check issuer ({issuer}/.well-known/openid-configuration must answer) or set tokenEndpoint',
      });
    }
    return {
      credential: c.id,
      provider: c.provider,
      ...(c.provider === 'oidc' ? { preset: c.preset } : { endpoint_version: c.endpointVersion, cloud: c.cloud, tenant_id: c.tenantId }),
      client_id: c.clientId,
      token_endpoint: target.tokenEndpoint ?? null,
      audience: target.audience ?? null,
      certificate: { ...certificateFacts(cert.leaf, now), chain: cert.chain.map((x) => x.subject.replace(/\n/g, ', ')) },
      assertion: { header, claims, signed: false },
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
          error_description: err.idp.errorDescription ? scrubJws(err.idp.errorDescription) : undefined,
          error_codes: err.idp.errorCodes,
          trace_id: err.idp.traceId,
          correlation_id: err.idp.correlationId,
          http_status: err.idp.httpStatus,
        };
        const { parsed: _parsed, ...explanation } = explainIdpError(idp);
        // What the broker sends for this credential, so the refusal can be read against it.
        const own = await this.describeCredential(id).then((d) => d.findings.filter((f) => f.severity !== 'info'), () => []);
        const cert = runtime.certificates.current();
        return {
          credential: id,
          scope,
          outcome: 'rejected',
          duration_ms: elapsed(),
          idp_error: err.idpError,
          idp,
          explanation,
          findings: [
            { id: 'probe.rejected', severity: 'error', message: scrubJws(err.message), idp_error: err.idpError, fix: explanation.fix ?? err.hint },
            ...own,
            {
              id: 'probe.certificate_in_use',
              severity: 'info',
              claim: 'certificate',
              // The portal lists the SHA-1 hex; Entra echoes it as "Thumbprint of key used by client" (docs/design.md §11.1).
              message: `the broker signed with certificate ${cert.leaf.subject.replace(/\n/g, ', ')}, SHA-1 thumbprint ${cert.thumbprints.sha1Hex} (as the Azure portal lists it), valid until ${cert.notAfter.toISOString()}: compare it with the certificates registered for client ${c.clientId}`,
              actual: cert.thumbprints.sha1Hex,
            },
          ],
        };
      }
      if (err instanceof IdpUnavailable) {
        log.warn({ credentialId: id, scope, outcome: 'unavailable', durationMs: elapsed() }, 'diagnostic probe');
        return {
          credential: id,
          scope,
          outcome: 'unavailable',
          duration_ms: elapsed(),
          message: err.message,
          retry_after_seconds: err.retryAfterSeconds,
          findings: [{ id: 'probe.unavailable', severity: 'error', message: err.message, fix: 'check that the broker can reach the IdP (proxy, firewall, DNS) and try again' }],
        };
      }
      throw err;
    }
  }

  explain(text: string): ErrorExplainResult {
    const result = explainIdpError(text);
    this.deps.logger.info({ recognized: result.recognized, codes: result.explanations.map((e) => e.code) }, 'error explained');
    return result;
  }
}
