// Lints a client assertion, or a federated token, against the rules of the IdP it is meant for.
// Pure and offline: it reads the text it is given, checks the signature only against a certificate
// the caller hands in, and never sends the assertion (or anything from the request) anywhere
// (docs/design.md §5.4).
import { show, type CheckedCertificate, type Finding, type LintContext, type Severity, type Verdict } from './assertion-rule.ts';
import { rulesFor } from './assertion-rules.ts';
import { looksLikeFederatedToken, resolveTarget, type AssertionTarget, type TargetInput } from './assertion-target.ts';
import { certificateFacts, type CertificateFacts } from './certificate-facts.ts';
import { decodeCompactJws } from './compact-jws.ts';
import { IDP_PROFILES } from './idp-profiles.ts';
import { checkSignature } from './rules/signature-rules.ts';

export interface LintInput {
  /** A pasted compact JWS … */
  assertion?: string;
  /** … or the unsigned header and claims the broker would send (credential view). */
  unsigned?: { header: Record<string, unknown>; claims: Record<string, unknown> };
  /** `target.kind` absent: a federated token when the JWT looks like one (looksLikeFederatedToken), else a client assertion. */
  target: TargetInput;
  /** Only for client assertions: a federated token is signed by its issuer. */
  certificate?: CheckedCertificate;
  nowMs: number;
}

export interface SignatureReport {
  checked: boolean;
  valid: boolean | null;
  certificate?: CertificateFacts;
}

export interface LintResult {
  header: Record<string, unknown>;
  claims: Record<string, unknown>;
  signature: SignatureReport;
  findings: Finding[];
  verdict: Verdict;
  target: AssertionTarget;
}

const SEVERITY_ORDER: Record<Severity, number> = { error: 0, warning: 1, info: 2 };

export function verdictOf(findings: readonly Finding[]): Verdict {
  return findings.some((f) => f.severity === 'error') ? 'will_fail' : 'ok';
}

export function lintAssertion(input: LintInput): LintResult {
  let header: Record<string, unknown> = {};
  let claims: Record<string, unknown> = {};
  let signed: LintContext['signed'];
  let malformed: string | undefined;
  if (input.unsigned) {
    ({ header, claims } = input.unsigned);
  } else {
    const decoded = decodeCompactJws(input.assertion ?? '');
    if (decoded.ok) {
      ({ header, claims } = decoded.jws);
      signed = { signingInput: decoded.jws.signingInput, signature: decoded.jws.signature };
    } else {
      malformed = decoded.reason;
      header = decoded.header ?? {};
      claims = decoded.claims ?? {};
    }
  }
  const kind = input.target.kind ?? (looksLikeFederatedToken(claims) ? 'federated_token' : 'client_assertion');
  const target = resolveTarget({ ...input.target, kind }, claims.aud);
  const certificate = kind === 'client_assertion' ? input.certificate : undefined;
  const ctx: LintContext = {
    header,
    claims,
    signed,
    malformed,
    target,
    kind,
    profile: IDP_PROFILES[target.idp],
    nowSeconds: Math.floor(input.nowMs / 1000),
    certificate,
    memo: new Map(),
  };
  // A text that is not a JWS gets only the structural finding (and the target line): judging claims
  // that could not be decoded would only add noise.
  const rules = rulesFor(target.idp, kind).filter((r) => !malformed || r.id === 'jws.malformed' || r.id === 'target.assumed');
  const findings: Finding[] = [];
  for (const rule of rules) {
    const hit = rule.check(ctx);
    if (!hit) continue;
    const finding: Finding = {
      id: rule.id,
      severity: hit.severity ?? rule.severity,
      claim: rule.claim,
      message: hit.message,
      expected: show(hit.expected),
      actual: show(hit.actual),
      idp_error: hit.idpError ?? rule.idpError?.[target.idp],
      fix: hit.fix ?? rule.fix,
    };
    findings.push(Object.fromEntries(Object.entries(finding).filter(([, v]) => v !== undefined)) as unknown as Finding);
  }
  findings.sort((a, b) => SEVERITY_ORDER[a.severity] - SEVERITY_ORDER[b.severity]);
  const check = checkSignature(ctx);
  return {
    header,
    claims,
    signature: {
      checked: check !== undefined,
      valid: check ? check.valid : null,
      certificate: certificate ? certificateFacts(certificate.leaf, input.nowMs) : undefined,
    },
    findings,
    verdict: verdictOf(findings),
    target,
  };
}
