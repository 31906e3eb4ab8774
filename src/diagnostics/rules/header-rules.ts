// Header rules: alg, typ, the certificate thumbprints (x5t, x5t#S256), x5c, kid, crit.
// Sources: docs/design.md §10.1 and §10.5; RFC 7515 §4.1.
import { X509Certificate } from 'node:crypto';
import { computeThumbprints } from '../../client-auth/certificate/thumbprints.ts';
import { ALL_IDPS, OIDC_IDPS, defineRule, memoised, type AssertionRule, type LintContext, type RuleHit } from '../assertion-rule.ts';

const HMAC = /^HS\d+$/i;
const ENTRA_CERT_FIX = 'compute the thumbprint as base64url of the binary digest of the DER certificate (token-broker thumbprint CERT prints both)';

function alg(ctx: LintContext): string | undefined {
  return typeof ctx.header.alg === 'string' ? ctx.header.alg : undefined;
}

/** The alg to suggest: the credential's, else the IdP's first choice. */
function suggestedAlg(ctx: LintContext): string {
  return ctx.target.algorithm ?? ctx.profile.algorithms[0]!;
}

export const algNone = defineRule({
  id: 'alg.none',
  claim: 'alg',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS50027', keycloak: 'Invalid signature algorithm', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'alg is missing or "none": the assertion is not signed',
  fix: 'sign the assertion with the certificate\'s private key (Entra: PS256 or RS256)',
  check: (ctx) => {
    const value = ctx.header.alg;
    if (value === undefined) return { message: 'the header has no alg: a JWS must name its signature algorithm (RFC 7515 §4.1.1)', expected: suggestedAlg(ctx) };
    if (typeof value === 'string' && value.toLowerCase() !== 'none') return undefined;
    return { message: `alg is ${JSON.stringify(value)}: an unsigned JWT proves nothing and every IdP refuses it`, expected: suggestedAlg(ctx), actual: value };
  },
});

export const algHmac = defineRule({
  id: 'alg.hmac',
  claim: 'alg',
  severity: 'error',
  idps: ALL_IDPS,
  // Keycloak and oidc-provider reject symmetric algs for private_key_jwt (docs/design.md §8.2, §13.1).
  idpError: { entra: 'AADSTS50027', keycloak: 'Invalid signature algorithm', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'alg is HMAC (HS256…): that is client_secret_jwt, not a certificate assertion',
  fix: 'sign with the private key of the registered certificate (RS256/PS256/ES256), not with a shared secret',
  check: (ctx) => {
    const a = alg(ctx);
    if (!a || !HMAC.test(a)) return undefined;
    return { message: `alg ${a} is a shared-secret MAC (client_secret_jwt); a certificate credential signs with its private key (private_key_jwt)`, expected: suggestedAlg(ctx), actual: a };
  },
});

export const algNotAccepted = defineRule({
  id: 'alg.not_accepted',
  claim: 'alg',
  severity: 'error',
  idps: ALL_IDPS,
  // Entra: "'ES256' is not a supported signature algorithm" (AADSTS5002738); Keycloak: exact string (docs/design.md §10.5, §13.1).
  idpError: { entra: 'AADSTS5002738', keycloak: 'Invalid signature algorithm', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'alg is not one the IdP accepts for private_key_jwt',
  check: (ctx) => {
    const a = alg(ctx);
    if (!a || a.toLowerCase() === 'none' || HMAC.test(a) || ctx.profile.algorithms.includes(a)) return undefined;
    const accepted = ctx.profile.algorithms.join(', ');
    return {
      message: `${ctx.profile.name} does not accept alg ${a} for client assertions (accepted: ${accepted})`,
      expected: accepted,
      actual: a,
      fix:
        ctx.target.idp === 'entra'
          ? 'use an RSA certificate and sign with PS256 (+ x5t#S256) or RS256 (+ x5t); Entra accepts no EC keys for client assertions'
          : `sign with one of ${accepted}, and the alg registered for the client`,
    };
  },
});

export const algEntraRs256 = defineRule({
  id: 'alg.rs256_fallback',
  claim: 'alg',
  severity: 'info',
  idps: ['entra'],
  summary: 'RS256 on Entra: accepted; the current documentation and MSAL use PS256 + x5t#S256',
  check: (ctx) =>
    alg(ctx) === 'RS256'
      ? {
          message: 'RS256 is accepted by Entra (older documentation, MSAL\'s fallback with x5t); the current documentation says PS256 with x5t#S256',
          expected: 'PS256',
          actual: 'RS256',
        }
      : undefined,
});

export const typNotJwt = defineRule({
  id: 'typ.not_jwt',
  claim: 'typ',
  severity: 'info',
  idps: ALL_IDPS,
  summary: 'typ missing or not "JWT"',
  fix: 'set typ: "JWT" (what MSAL and jsonwebtoken send)',
  check: (ctx) => {
    const typ = ctx.header.typ;
    if (typeof typ === 'string' && (/^jwt$/i.test(typ) || /^client-authentication\+jwt$/i.test(typ))) return undefined;
    // Entra: "typ: Should be JWT" (docs/design.md §10.1); other IdPs do not check it.
    return {
      message: typ === undefined ? 'the header has no typ' : `typ is ${JSON.stringify(typ)}`,
      expected: 'JWT',
      actual: typ,
      severity: ctx.target.idp === 'entra' && typ !== undefined ? 'warning' : 'info',
    };
  },
});

// ── thumbprints ──────────────────────────────────────────────────────────────────────────────

export type ThumbprintShape =
  | { kind: 'sha1' | 'sha256'; bytes: Buffer; notBase64url: boolean }
  | { kind: 'hex_as_text' | 'raw_hex'; digest: 'sha1' | 'sha256'; hex: string }
  | { kind: 'malformed'; reason: string };

/** What a thumbprint header value actually holds (docs/design.md §10.1: binary digest, base64url). */
export function thumbprintShape(value: unknown): ThumbprintShape {
  if (typeof value !== 'string' || value === '') return { kind: 'malformed', reason: 'it is not a non-empty string' };
  // The hex thumbprint the Azure portal shows, pasted as is.
  if (/^[0-9a-f]{40}$/i.test(value)) return { kind: 'raw_hex', digest: 'sha1', hex: value.toUpperCase() };
  if (/^[0-9a-f]{64}$/i.test(value)) return { kind: 'raw_hex', digest: 'sha256', hex: value.toUpperCase() };
  if (!/^[A-Za-z0-9+/_-]+={0,2}$/.test(value)) return { kind: 'malformed', reason: 'it is not base64url' };
  const bytes = Buffer.from(value.replace(/-/g, '+').replace(/_/g, '/'), 'base64');
  const notBase64url = /[+/=]/.test(value);
  if (bytes.length === 20) return { kind: 'sha1', bytes, notBase64url };
  if (bytes.length === 32) return { kind: 'sha256', bytes, notBase64url };
  const text = bytes.toString('latin1');
  // base64 of the hex *string* instead of the digest bytes: the ADAL regression behind "invalid signature" (AzureAD/azure-activedirectory-library-for-dotnet#309).
  if (/^[0-9a-f]{40}$/i.test(text)) return { kind: 'hex_as_text', digest: 'sha1', hex: text.toUpperCase() };
  if (/^[0-9a-f]{64}$/i.test(text)) return { kind: 'hex_as_text', digest: 'sha256', hex: text.toUpperCase() };
  return { kind: 'malformed', reason: `it decodes to ${bytes.length} bytes, not a SHA-1 (20) or SHA-256 (32) digest` };
}

/** The correct header value for a hex digest. */
function base64urlOfHex(hex: string): string {
  return Buffer.from(hex, 'hex').toString('base64url');
}

type ThumbParam = 'x5t' | 'x5t#S256';

function thumbprintRules(param: ThumbParam): AssertionRule[] {
  const prefix = param === 'x5t' ? 'x5t' : 'x5t_s256';
  const wantDigest = param === 'x5t' ? 'sha1' : 'sha256';
  const digestName = param === 'x5t' ? 'SHA-1' : 'SHA-256';
  // Entra finds the key by this header, so a wrong value is "key not found" (AADSTS700027); Keycloak
  // and oidc-provider select keys by kid/alg, so there it only matters if the IdP looks at it.
  const severityFor = (ctx: LintContext) => (ctx.target.idp === 'entra' ? 'error' : 'warning');
  const idpError = { entra: 'AADSTS700027' } as const;
  const shape = (ctx: LintContext): ThumbprintShape | undefined =>
    ctx.header[param] === undefined ? undefined : memoised(ctx, `thumb:${param}`, () => thumbprintShape(ctx.header[param]));

  return [
    defineRule({
      id: `${prefix}.hex_as_text`,
      claim: param,
      severity: 'error',
      idps: ALL_IDPS,
      idpError,
      summary: `${param} is base64 of the hex thumbprint text instead of the binary digest`,
      fix: ENTRA_CERT_FIX,
      check: (ctx) => {
        const s = shape(ctx);
        if (s?.kind !== 'hex_as_text') return undefined;
        return {
          message: `${param} encodes the hex string "${s.hex}" as text; it must be base64url of the ${digestName} digest bytes (the ADAL regression behind "invalid signature")`,
          expected: s.digest === wantDigest ? base64urlOfHex(s.hex) : undefined,
          actual: ctx.header[param],
          severity: severityFor(ctx),
        };
      },
    }),
    defineRule({
      id: `${prefix}.raw_hex`,
      claim: param,
      severity: 'error',
      idps: ALL_IDPS,
      idpError,
      summary: `${param} is the hex thumbprint itself (as the portal lists it), not base64url`,
      fix: ENTRA_CERT_FIX,
      check: (ctx) => {
        const s = shape(ctx);
        if (s?.kind !== 'raw_hex') return undefined;
        return {
          message: `${param} is the hex thumbprint as the Azure portal shows it; the header takes base64url of the digest bytes (RFC 7515 §4.1.7)`,
          expected: s.digest === wantDigest ? base64urlOfHex(s.hex) : undefined,
          actual: ctx.header[param],
          severity: severityFor(ctx),
        };
      },
    }),
    defineRule({
      id: param === 'x5t' ? 'x5t.sha256_value' : 'x5t_s256.sha1_value',
      claim: param,
      severity: 'error',
      idps: ALL_IDPS,
      idpError,
      summary: param === 'x5t' ? 'x5t holds a SHA-256 digest; x5t is SHA-1 (SHA-256 goes in x5t#S256)' : 'x5t#S256 holds a SHA-1 digest; it must be SHA-256',
      check: (ctx) => {
        const s = shape(ctx);
        const wrong = param === 'x5t' ? 'sha256' : 'sha1';
        if (s?.kind !== wrong) return undefined;
        return {
          message:
            param === 'x5t'
              ? 'x5t holds a 32-byte (SHA-256) digest; x5t is the SHA-1 thumbprint (entra-docs PR #1607: a SHA-256 value in x5t fails)'
              : 'x5t#S256 holds a 20-byte (SHA-1) digest; it is the SHA-256 thumbprint',
          actual: ctx.header[param],
          severity: severityFor(ctx),
          fix: param === 'x5t' ? 'send the SHA-256 thumbprint as x5t#S256 (with PS256), or the SHA-1 thumbprint as x5t (with RS256)' : 'send the SHA-1 thumbprint as x5t, or the SHA-256 thumbprint as x5t#S256',
        };
      },
    }),
    defineRule({
      id: `${prefix}.malformed`,
      claim: param,
      severity: 'error',
      idps: ALL_IDPS,
      idpError,
      summary: `${param} is not a base64url ${digestName} digest`,
      fix: ENTRA_CERT_FIX,
      check: (ctx) => {
        const s = shape(ctx);
        if (s?.kind !== 'malformed') return undefined;
        return { message: `${param} is not a thumbprint: ${s.reason}`, actual: ctx.header[param], severity: severityFor(ctx) };
      },
    }),
    defineRule({
      id: `${prefix}.not_base64url`,
      claim: param,
      severity: 'warning',
      idps: ALL_IDPS,
      summary: `${param} uses standard base64 (+, /, = padding) instead of base64url`,
      check: (ctx) => {
        const s = shape(ctx);
        if (!s || (s.kind !== 'sha1' && s.kind !== 'sha256') || !s.notBase64url) return undefined;
        return {
          // RFC 7515 §4.1.7 and MSAL use base64url; one docs PR claims standard base64 works (MicrosoftDocs/azure-docs PR #95348; docs/design.md §10.1).
          message: `${param} is standard base64 with +, / or = padding; RFC 7515 and MSAL use base64url without padding (whether Entra accepts both is disputed)`,
          expected: s.bytes.toString('base64url'),
          actual: ctx.header[param],
          severity: ctx.target.idp === 'entra' ? 'warning' : 'info',
        };
      },
    }),
  ];
}

export const x5tRules = thumbprintRules('x5t');
export const x5tS256Rules = thumbprintRules('x5t#S256');

export const thumbprintMissing = defineRule({
  id: 'thumbprint.missing',
  claim: 'x5t#S256',
  severity: 'error',
  idps: ['entra'],
  // "AADSTS50027: Invalid JWT token. No certificate thumbprint specified in token header." (docs/design.md §10.1)
  idpError: { entra: 'AADSTS50027' },
  summary: 'no x5t / x5t#S256 header: Entra cannot find the certificate',
  fix: 'add x5t#S256 (with PS256) or x5t (with RS256): base64url of the certificate\'s SHA-256 / SHA-1 digest',
  check: (ctx) =>
    ctx.header.x5t === undefined && ctx.header['x5t#S256'] === undefined
      ? {
          message: 'the header names no certificate thumbprint: Entra finds the signing certificate only by x5t#S256 or x5t (kid is ignored)',
          expected: ctx.certificate ? ctx.certificate.thumbprints.x5tS256 : 'x5t#S256: base64url(SHA-256(DER))',
        }
      : undefined,
});

export const kidMissing = defineRule({
  id: 'kid.missing',
  claim: 'kid',
  severity: 'info',
  idps: OIDC_IDPS,
  summary: 'no kid (nor thumbprint): the IdP must try every registered key',
  check: (ctx) =>
    ctx.header.kid === undefined && ctx.header.x5t === undefined && ctx.header['x5t#S256'] === undefined
      ? {
          // Keycloak picks the key by kid when the client uses a JWKS; with several keys a missing kid can give
          // "Unable to load public key" (docs/design.md §13.1).
          message: 'the header has no kid: fine with one registered key; with several (rotation), send the kid registered at the IdP',
          idpError: ctx.target.idp === 'keycloak' ? 'Unable to load public key' : undefined,
        }
      : undefined,
});

export const kidIgnoredByEntra = defineRule({
  id: 'kid.ignored',
  claim: 'kid',
  severity: 'info',
  idps: ['entra'],
  summary: 'kid on Entra: not used; Entra finds the key by x5t / x5t#S256',
  check: (ctx) =>
    ctx.header.kid !== undefined
      ? { message: 'Entra does not document kid and MSAL does not send it; the certificate is found by x5t#S256 / x5t only', actual: ctx.header.kid }
      : undefined,
});

export const thumbprintPairing = defineRule({
  id: 'thumbprint.unusual_pairing',
  claim: 'x5t#S256',
  severity: 'info',
  idps: ['entra'],
  summary: 'alg and thumbprint header not paired as MSAL pairs them (PS256 + x5t#S256, RS256 + x5t)',
  check: (ctx) => {
    const a = alg(ctx);
    const has1 = ctx.header.x5t !== undefined;
    const has256 = ctx.header['x5t#S256'] !== undefined;
    if (has1 && has256) {
      return { message: 'both x5t and x5t#S256 are sent: undocumented whether Entra accepts both (MSAL sends exactly one)' };
    }
    if (a === 'PS256' && has1 && !has256) return { message: 'PS256 with x5t only: MSAL pairs PS256 with x5t#S256; this pairing is undocumented', expected: 'x5t#S256' };
    if (a === 'RS256' && has256 && !has1) return { message: 'RS256 with x5t#S256 only: MSAL pairs RS256 with x5t; this pairing is undocumented', expected: 'x5t' };
    return undefined;
  },
});

export const x5tS256FallbackHint = defineRule({
  id: 'x5t_s256.fallback_hint',
  claim: 'x5t#S256',
  severity: 'info',
  idps: ['entra'],
  idpError: { entra: 'AADSTS700027' },
  summary: 'x5t#S256 on Entra: if AADSTS700027 comes back for a registered certificate, fall back to RS256 + x5t',
  fix: 'credential setting assertion: { algorithm: RS256 } (sends x5t)',
  check: (ctx) => {
    if (ctx.header['x5t#S256'] === undefined || ctx.header.x5t !== undefined) return undefined;
    const ciam = /\.(b2clogin|ciamlogin)\.com$/.test(ctx.target.entra?.host ?? '');
    return {
      // One report of x5t#S256 refused where x5t worked (entra-docs PR #1301); B2C/CIAM support unclear (MSAL.NET #4428).
      message: ciam
        ? 'x5t#S256 on a B2C / External ID host: whether these support it is unclear (MSAL.NET #4428); RS256 + x5t is the safe choice'
        : 'x5t#S256 is what Entra documents now; one report had it refused (AADSTS700027) where x5t worked (entra-docs PR #1301)',
      severity: ciam ? 'warning' : 'info',
    };
  },
});

// ── x5c ──────────────────────────────────────────────────────────────────────────────────────

interface X5cParse {
  leaf?: X509Certificate;
  problem?: string;
  singleString: boolean;
}

function parseX5c(ctx: LintContext): X5cParse | undefined {
  const x5c = ctx.header.x5c;
  if (x5c === undefined) return undefined;
  return memoised(ctx, 'x5c', (): X5cParse => {
    // RFC 7515 §4.1.6: an array of standard-base64 DER certificates, leaf first. MSAL.NET sends one string (docs/design.md §10.1).
    const singleString = typeof x5c === 'string';
    const first = singleString ? x5c : Array.isArray(x5c) ? x5c[0] : undefined;
    if (typeof first !== 'string' || (Array.isArray(x5c) && x5c.some((c) => typeof c !== 'string'))) {
      return { problem: 'x5c must be an array of base64 DER certificates, leaf first', singleString };
    }
    try {
      return { leaf: new X509Certificate(Buffer.from(first, 'base64')), singleString };
    } catch {
      return { problem: 'the first x5c entry is not a base64 DER certificate (base64url or PEM armour are not allowed here)', singleString };
    }
  });
}

export const x5cMalformed = defineRule({
  id: 'x5c.malformed',
  claim: 'x5c',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS50027', keycloak: 'invalid_client', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'x5c is not an array of base64 DER certificates',
  fix: 'x5c: [base64(DER of the leaf), base64(DER of the issuer), …] (standard base64, not base64url)',
  check: (ctx) => {
    const p = parseX5c(ctx);
    if (!p) return undefined;
    if (p.problem) return { message: p.problem };
    if (p.singleString) {
      return { message: 'x5c is one string (as MSAL.NET sends it); RFC 7515 §4.1.6 makes it an array', severity: 'info', expected: '["<base64 DER leaf>", …]' };
    }
    return undefined;
  },
});

export const x5cLeafMismatch = defineRule({
  id: 'x5c.leaf_mismatch',
  claim: 'x5c',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS700027' },
  summary: 'the x5c leaf certificate is not the one the thumbprint header (or the given certificate) names',
  check: (ctx) => {
    const leaf = parseX5c(ctx)?.leaf;
    if (!leaf) return undefined;
    const t = computeThumbprints(leaf.raw);
    const problems: string[] = [];
    if (typeof ctx.header['x5t#S256'] === 'string' && ctx.header['x5t#S256'] !== t.x5tS256) problems.push('x5t#S256');
    if (typeof ctx.header.x5t === 'string' && ctx.header.x5t !== t.x5t) problems.push('x5t');
    if (ctx.certificate && ctx.certificate.thumbprints.sha256Hex !== t.sha256Hex) problems.push('the given certificate');
    if (problems.length === 0) return undefined;
    return {
      message: `the x5c leaf (SHA-1 ${t.sha1Hex}) does not match ${problems.join(' and ')}: header and chain must name the certificate that signed`,
      expected: t.x5tS256,
      severity: ctx.target.idp === 'entra' ? 'error' : 'warning',
    };
  },
});

export const x5cSniHint = defineRule({
  id: 'x5c.sni_hint',
  claim: 'x5c',
  severity: 'info',
  idps: ['entra'],
  idpError: { entra: 'AADSTS700027' },
  summary: 'no x5c: fine for an uploaded certificate; subject name + issuer (SNI) apps need it',
  fix: 'credential setting assertion: { sendX5c: true } for SNI apps',
  check: (ctx): RuleHit | undefined =>
    ctx.header.x5c === undefined
      ? {
          // AADSTS700027 "… SNI may be configured on the app. Please ensure that client assertion is being sent with the x5c claim" (Azure/azure-sdk-for-net#29007).
          message: 'no x5c: not needed when the certificate is uploaded to the app registration; an app set up for subject name + issuer (SNI) auth answers AADSTS700027 without it',
        }
      : undefined,
});

export const critHeader = defineRule({
  id: 'header.crit',
  claim: 'crit',
  severity: 'warning',
  idps: ALL_IDPS,
  summary: 'crit header: the IdP must understand every listed extension or refuse the JWS',
  fix: 'drop the crit header',
  check: (ctx) =>
    ctx.header.crit !== undefined
      ? { message: 'crit lists header parameters the IdP must understand; IdPs that do not, refuse the assertion (RFC 7515 §4.1.11)', actual: ctx.header.crit }
      : undefined,
});

export const HEADER_RULES: AssertionRule[] = [
  algNone,
  algHmac,
  algNotAccepted,
  algEntraRs256,
  typNotJwt,
  thumbprintMissing,
  ...x5tRules,
  ...x5tS256Rules,
  thumbprintPairing,
  x5tS256FallbackHint,
  x5cMalformed,
  x5cLeafMismatch,
  x5cSniHint,
  kidMissing,
  kidIgnoredByEntra,
  critHeader,
];
