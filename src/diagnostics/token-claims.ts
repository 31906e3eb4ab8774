// What a probe may show of the access token it obtained: a fixed set of claims, decoded without
// verification, never the token or its signature; and what those claims mean, above all for Power
// BI service principals (docs/design.md §10.8 and §10.10).
import type { Cloud } from '../idps/entra/entra-schema.ts';
import { CLOUDS } from '../idps/entra/entra-schema.ts';
import { ENTRA_CLOUDS } from '../idps/entra/entra-clouds.ts';
import type { Finding } from './assertion-rule.ts';

/** The only claims a probe echoes: who the token is for, from whom, what it grants, how long. */
export const SHOWN_TOKEN_CLAIMS = [
  'aud',
  'iss',
  'sub',
  'tid',
  'oid',
  'appid',
  'azp',
  'client_id',
  'appidacr',
  'azpacr',
  'idtyp',
  'roles',
  'scp',
  'scope',
  'ver',
  'iat',
  'nbf',
  'exp',
] as const;

export interface DecodedTokenClaims {
  /** opaque: not a JWT (or an encrypted one), so nothing can be shown. */
  format: 'jwt' | 'opaque';
  claims?: Record<string, unknown>;
}

export function decodeTokenClaims(token: string): DecodedTokenClaims {
  const parts = token.split('.');
  if (parts.length !== 3) return { format: 'opaque' };
  let payload: unknown;
  try {
    payload = JSON.parse(Buffer.from(parts[1]!, 'base64url').toString('utf8'));
  } catch {
    return { format: 'opaque' };
  }
  if (!payload || typeof payload !== 'object' || Array.isArray(payload)) return { format: 'opaque' };
  const all = payload as Record<string, unknown>;
  return { format: 'jwt', claims: Object.fromEntries(SHOWN_TOKEN_CLAIMS.filter((c) => all[c] !== undefined).map((c) => [c, all[c]])) };
}

/** Power BI REST API root per cloud (docs/design.md §10.8). */
export const POWERBI_API_ROOTS: Readonly<Record<Cloud, string>> = {
  public: 'https://api.powerbi.com/',
  usgov: 'https://api.powerbigov.us/',
  usgovhigh: 'https://api.high.powerbigov.us/',
  dod: 'https://api.mil.powerbigov.us/',
  china: 'https://api.powerbi.cn/',
};

const stripSlash = (s: string) => s.replace(/\/+$/, '');
const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/** The clouds whose Power BI resource this is. */
function powerBiClouds(resource: string | undefined): Cloud[] {
  if (!resource) return [];
  return CLOUDS.filter((c) => stripSlash(ENTRA_CLOUDS[c].powerBiResource).toLowerCase() === stripSlash(resource).toLowerCase());
}

export interface TokenExpectations {
  provider: 'entra' | 'oidc';
  clientId: string;
  tenantId?: string;
  cloud?: Cloud;
  /** The resource asked for: Entra's scope without /.default, Auth0's audience parameter. */
  resource?: string;
  scope: string;
  nowSeconds: number;
}

function audList(aud: unknown): string[] {
  return typeof aud === 'string' ? [aud] : Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}

/** Findings about the token a probe obtained. */
export function tokenFindings(decoded: DecodedTokenClaims, expect: TokenExpectations): Finding[] {
  const findings: Finding[] = [];
  const claims = decoded.claims;
  if (decoded.format === 'opaque' || !claims) {
    return [{ id: 'token.opaque', severity: 'info', message: 'the access token is not a JWT (opaque or encrypted): its claims cannot be shown; the API it is for can still accept it' }];
  }
  const auds = audList(claims.aud);
  const exp = typeof claims.exp === 'number' ? claims.exp : undefined;
  if (exp !== undefined) {
    const minutes = Math.round((exp - expect.nowSeconds) / 60);
    findings.push({
      id: 'token.lifetime',
      severity: 'info',
      claim: 'exp',
      // Entra: "a random value ranging between 60-90 minutes" (docs/design.md §10.7).
      message: `the token expires in ${minutes} min (${new Date(exp * 1000).toISOString()})${expect.provider === 'entra' ? '; Entra picks 60–90 min at random' : ''}`,
    });
  }

  const requestedPowerBi = powerBiClouds(expect.resource);
  const audPowerBi = auds.flatMap(powerBiClouds);
  const isPowerBi = expect.provider === 'entra' && (requestedPowerBi.length > 0 || audPowerBi.length > 0);

  if (expect.resource && auds.length > 0 && !auds.some((a) => stripSlash(a) === stripSlash(expect.resource!))) {
    // A GUID aud is the resource's app id (v2 tokens for custom APIs): not comparable with a URI.
    if (!auds.every((a) => GUID.test(a))) {
      findings.push({
        id: 'token.aud_mismatch',
        severity: 'error',
        claim: 'aud',
        message: `the token is for ${auds.join(', ')}, not for the resource asked for${isPowerBi ? ': Power BI answers 401 to a token for another resource or cloud' : ''}`,
        expected: expect.resource,
        actual: auds.join(' '),
        fix: 'fix the credential\'s scope (Entra: <resource>/.default) or audience parameter',
      });
    }
  }

  const client = [claims.appid, claims.azp, claims.client_id].find((v): v is string => typeof v === 'string');
  if (client && (expect.provider === 'entra' ? client.toLowerCase() !== expect.clientId.toLowerCase() : client !== expect.clientId)) {
    findings.push({ id: 'token.client_mismatch', severity: 'error', claim: 'appid', message: 'the token names another client than the credential\'s client id', expected: expect.clientId, actual: client });
  }
  if (expect.provider === 'entra' && expect.tenantId && GUID.test(expect.tenantId) && typeof claims.tid === 'string' && claims.tid.toLowerCase() !== expect.tenantId.toLowerCase()) {
    findings.push({ id: 'token.tenant_mismatch', severity: 'error', claim: 'tid', message: 'the token is from another tenant than the credential\'s', expected: expect.tenantId, actual: claims.tid });
  }

  if (expect.provider === 'oidc' && expect.scope) {
    const granted = typeof claims.scope === 'string' ? claims.scope.split(/\s+/) : typeof claims.scp === 'string' ? claims.scp.split(/\s+/) : Array.isArray(claims.scp) ? (claims.scp as string[]) : undefined;
    const missing = granted ? expect.scope.split(/\s+/).filter((s) => s && !granted.includes(s)) : [];
    if (missing.length > 0) {
      findings.push({ id: 'token.scope_missing', severity: 'warning', claim: 'scope', message: `the token does not grant ${missing.join(', ')}: the IdP dropped scopes the client may not have`, expected: expect.scope, actual: granted!.join(' ') });
    }
  }

  if (isPowerBi) {
    const cloud = expect.cloud ?? 'public';
    const cloudResource = ENTRA_CLOUDS[cloud].powerBiResource;
    if (audPowerBi.length > 0 && !audPowerBi.includes(cloud)) {
      findings.push({
        id: 'powerbi.wrong_cloud',
        severity: 'error',
        claim: 'aud',
        // GCC keeps the commercial login host but a gov resource (docs/design.md §10.8).
        message: `the token is for the Power BI of another cloud than the credential's (${cloud}): ${POWERBI_API_ROOTS[cloud]} answers 401/403 to it`,
        expected: cloudResource,
        actual: auds.join(' '),
        fix: `request ${cloudResource}/.default for cloud ${cloud}`,
      });
    }
    const roles = Array.isArray(claims.roles) ? claims.roles : [];
    if (roles.length === 0) {
      findings.push({
        id: 'powerbi.roles_empty',
        severity: 'info',
        claim: 'roles',
        // docs/design.md §10.10: "avoid adding permissions. They're never used"; access comes from tenant settings + workspace roles.
        message:
          'roles is empty: normal for a Power BI service principal. Power BI ignores Entra API permissions for service principals; what grants access is the tenant setting "Service principals can use Fabric APIs" (formerly "Allow service principals to use Power BI APIs", for a security group containing the service principal) and membership of each workspace (Member or Admin). If the API answers 401 PowerBINotAuthorizedException with this token, one of those is missing.',
      });
    } else {
      findings.push({
        id: 'powerbi.roles_present',
        severity: 'warning',
        claim: 'roles',
        // docs/design.md §10.10: read-only admin APIs refuse apps with admin-consent-required Power BI permissions.
        message: `the token carries application roles (${roles.join(', ')}): Power BI does not use them, and the read-only admin APIs refuse a service principal whose app has admin-consent Power BI permissions`,
        actual: roles.join(' '),
        fix: 'remove the Power BI API permissions from the app registration unless something else needs them',
      });
    }
    findings.push({
      id: 'powerbi.api_root',
      severity: 'info',
      message: `call ${POWERBI_API_ROOTS[cloud]}v1.0/myorg/groups/{workspaceId}/… with this token (My Workspace is not available to service principals)`,
    });
  }
  return findings;
}
