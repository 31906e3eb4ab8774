// Who the assertion says it is (iss, sub, the client_id it is sent with) and its jti.
// RFC 7523 §3: iss = sub = client_id; Entra: the Application (client) ID GUID (docs/design.md §10.2,
// §11.1); Keycloak: iss = sub, client_id form parameter = sub, jti required and single-use (§13.1).
import { ALL_IDPS, defineRule, type AssertionRule, type LintContext } from '../assertion-rule.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

function sameClient(ctx: LintContext, a: string, b: string): boolean {
  // Entra compares GUIDs case-insensitively; elsewhere client ids are opaque, case-sensitive strings.
  return ctx.target.idp === 'entra' && GUID.test(a) && GUID.test(b) ? a.toLowerCase() === b.toLowerCase() : a === b;
}

export const issMissing = defineRule({
  id: 'iss.missing',
  claim: 'iss',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS700021', keycloak: 'invalid_client', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'iss missing or not a string',
  fix: 'set iss to the client id',
  check: (ctx) =>
    typeof ctx.claims.iss === 'string' && ctx.claims.iss !== ''
      ? undefined
      : { message: ctx.claims.iss === undefined ? 'the assertion has no iss; it must be the client id (RFC 7523 §3)' : 'iss is not a non-empty string', expected: ctx.target.clientId, actual: ctx.claims.iss },
});

export const subMissing = defineRule({
  id: 'sub.missing',
  claim: 'sub',
  severity: 'error',
  idps: ALL_IDPS,
  // Keycloak finds the client by sub ("Token sub claim is required").
  idpError: { entra: 'AADSTS50048', keycloak: 'Token sub claim is required', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'sub missing or not a string',
  fix: 'set sub to the client id (the same value as iss)',
  check: (ctx) =>
    typeof ctx.claims.sub === 'string' && ctx.claims.sub !== ''
      ? undefined
      : { message: ctx.claims.sub === undefined ? 'the assertion has no sub; it must be the client id, like iss' : 'sub is not a non-empty string', expected: ctx.target.clientId ?? (typeof ctx.claims.iss === 'string' ? ctx.claims.iss : undefined), actual: ctx.claims.sub },
});

export const issSubMismatch = defineRule({
  id: 'iss.sub_mismatch',
  claim: 'sub',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { entra: 'AADSTS50048', keycloak: 'invalid_client', okta: 'invalid_client', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'sub differs from iss',
  fix: 'make iss and sub both the client id',
  check: (ctx) => {
    const { iss, sub } = ctx.claims;
    if (typeof iss !== 'string' || typeof sub !== 'string' || sameClient(ctx, iss, sub)) return undefined;
    return { message: 'sub differs from iss; for a client assertion both are the client id (RFC 7523 §3)', expected: iss, actual: sub };
  },
});

export const issNotClientId = defineRule({
  id: 'iss.not_client_id',
  claim: 'iss',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: {
    entra: 'AADSTS700021',
    // Keycloak compares the client_id form parameter with sub (docs/design.md §13.1).
    keycloak: 'client_id parameter does not match sub claim',
    okta: 'invalid_client',
    auth0: 'invalid_client',
    generic: 'invalid_client',
  },
  summary: 'iss / sub are not the client_id the request is sent with',
  check: (ctx) => {
    const clientId = ctx.target.clientId;
    const iss = ctx.claims.iss;
    if (!clientId || typeof iss !== 'string' || sameClient(ctx, iss, clientId)) return undefined;
    return {
      message: `iss is not the client_id ${clientId}${ctx.target.idp === 'entra' ? ' (the object ID instead of the Application ID?)' : ''}`,
      expected: clientId,
      actual: iss,
      fix: ctx.target.idp === 'entra' ? 'put the Application (client) ID in iss, sub and the client_id form field' : 'put the client id in iss, sub and the client_id form field',
    };
  },
});

export const issNotGuid = defineRule({
  id: 'iss.not_guid',
  claim: 'iss',
  severity: 'error',
  idps: ['entra'],
  idpError: { entra: 'AADSTS700021' },
  summary: 'Entra: iss is not a GUID (the Application ID); a URL there is read as a federated credential',
  fix: 'put the Application (client) ID GUID in iss and sub',
  check: (ctx) => {
    const iss = ctx.claims.iss;
    if (typeof iss !== 'string' || iss === '' || GUID.test(iss)) return undefined;
    const url = /^https?:\/\//i.test(iss);
    return {
      message: url
        ? 'iss is a URL: Entra then treats the assertion as a federated (workload identity) credential and looks for a matching federated identity record (AADSTS70021)'
        : 'iss is not a GUID: Entra wants the Application (client) ID',
      actual: iss,
      expected: ctx.target.clientId,
      idpError: url ? 'AADSTS70021' : 'AADSTS700021',
    };
  },
});

export const jtiMissing = defineRule({
  id: 'jti.missing',
  claim: 'jti',
  severity: 'error',
  idps: ALL_IDPS,
  idpError: { keycloak: 'Token jti claim is required', auth0: 'invalid_client', generic: 'invalid_client' },
  summary: 'jti missing (required by Keycloak, Auth0 and OIDC private_key_jwt)',
  fix: 'add jti: a fresh UUID for every assertion',
  check: (ctx) => {
    const jti = ctx.claims.jti;
    if (typeof jti === 'string' && jti !== '') return undefined;
    const need = ctx.profile.jti;
    return {
      message:
        jti === undefined
          ? `the assertion has no jti; ${need === 'required' ? `${ctx.profile.name} requires one` : need === 'recommended' ? `${ctx.profile.name} documents it as "a GUID, unique"` : 'optional here, but it protects against replay'}`
          : 'jti is not a non-empty string',
      actual: jti,
      severity: need === 'required' ? 'error' : need === 'recommended' ? 'warning' : 'info',
    };
  },
});

export const jtiWeak = defineRule({
  id: 'jti.weak',
  claim: 'jti',
  severity: 'warning',
  idps: ALL_IDPS,
  summary: 'jti looks fixed or guessable (short, or contains spaces)',
  fix: 'use a fresh random UUID (crypto.randomUUID()) for every assertion',
  check: (ctx) => {
    const jti = ctx.claims.jti;
    if (typeof jti !== 'string' || jti === '' || (jti.length >= 16 && !/\s/.test(jti))) return undefined;
    return {
      message: `jti ${JSON.stringify(jti)} looks like a constant or placeholder: ${ctx.profile.jtiSingleUse ? `${ctx.profile.name} refuses a jti it has seen before ("Token reuse detected" at Keycloak)` : 'it must be unique per assertion'}`,
      actual: jti,
      severity: ctx.profile.jtiSingleUse ? 'warning' : 'info',
    };
  },
});

export const jtiSingleUse = defineRule({
  id: 'jti.single_use',
  claim: 'jti',
  severity: 'info',
  idps: ['keycloak', 'okta', 'auth0', 'generic'],
  idpError: { keycloak: 'Token reuse detected', generic: 'invalid_client' },
  summary: 'the IdP refuses a replayed jti: one assertion per token request',
  check: (ctx) =>
    typeof ctx.claims.jti === 'string' && ctx.claims.jti !== ''
      ? { message: `${ctx.profile.name} accepts each jti once: sign a new assertion for every token request (a cached assertion fails on its second use)` }
      : undefined,
});

export const IDENTITY_RULES: AssertionRule[] = [issMissing, subMissing, issSubMismatch, issNotClientId, issNotGuid, jtiMissing, jtiWeak, jtiSingleUse];
