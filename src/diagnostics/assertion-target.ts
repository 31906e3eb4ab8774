// Where an assertion is going: which IdP, which token endpoint, which `aud` it must carry. Decided
// from what the engineer gives (token endpoint, provider, client id, a configured credential) or,
// failing that, from the assertion's own `aud`. Pure: nothing here makes a network call, so a URL
// that came with a request is only ever parsed, never fetched (docs/design.md §5.4).
import { CLOUDS, type Cloud } from '../config/schema.ts';
import { ENTRA_CLOUDS } from '../providers/entra-clouds.ts';
import type { IdpKind } from './assertion-rule.ts';
import { IDP_PROFILES } from './idp-profiles.ts';

/** Segments that are not a tenant: certificate assertions there fail with AADSTS700023 (docs/design.md §10.3). */
export const ENTRA_MULTI_TENANT_SEGMENTS = new Set(['common', 'organizations', 'consumers']);

export interface EntraUrl {
  /** The URL without query or fragment. */
  url: string;
  origin: string;
  host: string;
  /** The cloud's own login host when `host` is a known Entra host or one of its aliases. */
  canonicalHost?: string;
  /** `host` is an alias (login.windows.net, sts.windows.net, …) of `canonicalHost`. */
  alias: boolean;
  clouds: Cloud[];
  tenant?: string;
  /** token: …/oauth2[/v2.0]/token; authority: /{tenant}; issuer: /{tenant}/v2.0 (or /v2, old docs). */
  shape: 'token' | 'authority' | 'issuer' | 'other';
  version?: 'v1' | 'v2';
}

export interface AssertionTarget {
  idp: IdpKind;
  /** What the target was decided from. */
  basis: 'credential' | 'token_endpoint' | 'provider' | 'aud' | 'none';
  /** The exact URL the assertion is POSTed to, when known. */
  tokenEndpoint?: string;
  /** Keycloak realm, Auth0 tenant or OIDC issuer, when known. */
  issuer?: string;
  /** The `aud` to use (what the broker sends for this target), when known. */
  audience?: string;
  clientId?: string;
  /** The signing algorithm a configured credential uses (Keycloak pins one per client). */
  algorithm?: string;
  /** The parsed token endpoint of an Entra target. */
  entra?: EntraUrl;
  credentialId?: string;
  /** One line for people: what the assertion was checked against. */
  description: string;
}

export interface CredentialTarget {
  id: string;
  idp: IdpKind;
  tokenEndpoint?: string;
  issuer?: string;
  audience?: string;
  clientId: string;
  algorithm?: string;
}

export interface TargetInput {
  tokenEndpoint?: string;
  provider?: IdpKind;
  clientId?: string;
  credential?: CredentialTarget;
}

export function parseUrl(value: unknown): URL | undefined {
  if (typeof value !== 'string' || !/^https?:\/\//i.test(value)) return undefined;
  try {
    return new URL(value);
  } catch {
    return undefined;
  }
}

/** Known Entra login hosts and their aliases, per cloud (docs/design.md §10.3, §10.8). */
function entraHostInfo(host: string): { canonicalHost: string; alias: boolean; clouds: Cloud[] } | undefined {
  const clouds = CLOUDS.filter((c) => {
    const cloud = ENTRA_CLOUDS[c];
    return new URL(cloud.authorityHost).host === host || cloud.aliases.includes(host);
  });
  if (clouds.length === 0) {
    // B2C and External ID (CIAM) tenants have their own hosts; same assertion rules.
    return /\.(b2clogin\.com|ciamlogin\.com)$/.test(host) ? { canonicalHost: host, alias: false, clouds: [] } : undefined;
  }
  const canonicalHost = new URL(ENTRA_CLOUDS[clouds[0]!].authorityHost).host;
  return { canonicalHost, alias: canonicalHost !== host, clouds };
}

export function isEntraHost(host: string): boolean {
  return entraHostInfo(host.toLowerCase()) !== undefined;
}

export function parseEntraUrl(value: string): EntraUrl | undefined {
  const u = parseUrl(value);
  if (!u) return undefined;
  const host = u.host.toLowerCase();
  const info = entraHostInfo(host);
  const segments = u.pathname.split('/').filter(Boolean);
  const tenant = segments[0];
  const rest = segments.slice(1).join('/').toLowerCase();
  let shape: EntraUrl['shape'] = 'other';
  let version: EntraUrl['version'];
  if (rest === 'oauth2/token') [shape, version] = ['token', 'v1'];
  // B2C puts a policy between tenant and oauth2: /{tenant}/{policy}/oauth2/v2.0/token.
  else if (rest === 'oauth2/v2.0/token' || /^[^/]+\/oauth2\/v2\.0\/token$/.test(rest)) [shape, version] = ['token', 'v2'];
  else if (tenant && rest === '') shape = 'authority';
  else if (rest === 'v2.0' || rest === 'v2') [shape, version] = ['issuer', 'v2'];
  return {
    url: `${u.origin}${u.pathname}`,
    origin: u.origin,
    host,
    canonicalHost: info?.canonicalHost,
    alias: info?.alias ?? false,
    clouds: info?.clouds ?? [],
    tenant,
    shape,
    version,
  };
}

/** Which IdP a URL belongs to, from its host and path shape. */
export function detectIdp(value: string): IdpKind | undefined {
  const u = parseUrl(value);
  if (!u) return undefined;
  const host = u.hostname.toLowerCase();
  if (isEntraHost(u.host.toLowerCase())) return 'entra';
  if (/\/realms\/[^/]+(\/|$)/.test(u.pathname)) return 'keycloak';
  if (/(^|\.)(okta|oktapreview|okta-emea)\.com$/.test(host) || /\/oauth2\/(?:[^/]+\/)?v1\/token\/?$/.test(u.pathname)) return 'okta';
  if (/(^|\.)auth0\.com$/.test(host) || u.pathname === '/oauth/token') return 'auth0';
  return undefined;
}

/** The issuer a token endpoint belongs to, where the IdP's URL layout says so. */
export function issuerOf(idp: IdpKind, tokenEndpoint: string): string | undefined {
  const u = parseUrl(tokenEndpoint);
  if (!u) return undefined;
  const path = u.pathname.replace(/\/+$/, '');
  switch (idp) {
    case 'keycloak': {
      const realm = /^(.*\/realms\/[^/]+)\/protocol\/openid-connect\/token$/.exec(path);
      return realm ? `${u.origin}${realm[1]}` : undefined;
    }
    case 'okta': {
      // Org authorization server: /oauth2/v1/token → issuer = origin; custom: /oauth2/{id}/v1/token → origin/oauth2/{id}.
      if (path === '/oauth2/v1/token') return u.origin;
      const custom = /^(\/oauth2\/[^/]+)\/v1\/token$/.exec(path);
      return custom ? `${u.origin}${custom[1]}` : undefined;
    }
    case 'auth0':
      // Auth0: the tenant (or custom domain) URL with a trailing slash (docs/design.md §13.3).
      return `${u.origin}/`;
    default:
      return undefined;
  }
}

/** The token endpoint of an issuer, where the IdP's URL layout fixes it (no discovery). */
export function tokenEndpointOf(idp: IdpKind, issuer: string): string | undefined {
  const base = issuer.replace(/\/+$/, '');
  switch (idp) {
    case 'keycloak':
      return `${base}/protocol/openid-connect/token`;
    case 'okta':
      return /\/oauth2\/[^/]+$/.test(base) ? `${base}/v1/token` : `${base}/oauth2/v1/token`;
    case 'auth0':
      return `${new URL(base).origin}/oauth/token`;
    default:
      return undefined;
  }
}

function stripQuery(value: string): string {
  const u = parseUrl(value);
  return u ? `${u.origin}${u.pathname}` : value;
}

function cloudLabel(entra: EntraUrl): string {
  if (entra.clouds.length === 0) return entra.host;
  if (entra.clouds.includes('public')) return 'public cloud (or US Gov GCC)';
  return entra.clouds.includes('china') ? 'China (21Vianet)' : 'US Gov GCC High / DoD';
}

export function describeTarget(t: Omit<AssertionTarget, 'description'>): string {
  const name = IDP_PROFILES[t.idp].name;
  const where = t.tokenEndpoint ? `token endpoint ${t.tokenEndpoint}` : t.issuer ? `issuer ${t.issuer}` : 'no token endpoint given';
  const idp = t.idp === 'entra' && t.entra ? `${name} ${t.entra.version ?? ''} (${cloudLabel(t.entra)})`.replace('  ', ' ') : name;
  const from =
    t.basis === 'credential'
      ? `credential '${t.credentialId}'`
      : t.basis === 'token_endpoint'
        ? 'the token endpoint given'
        : t.basis === 'provider'
          ? 'the provider given'
          : t.basis === 'aud'
            ? "the assertion's own aud (give token_endpoint to check it exactly)"
            : 'nothing (give token_endpoint or provider)';
  return `checked against ${idp}, ${where}; target from ${from}`;
}

/**
 * Resolves the target. A token endpoint given with the request wins over the credential's, since
 * it is where the engineer says the assertion goes; the credential still names the client id,
 * algorithm and certificate.
 */
export function resolveTarget(input: TargetInput, aud: unknown): AssertionTarget {
  const credential = input.credential;
  const tokenEndpoint = input.tokenEndpoint !== undefined ? stripQuery(input.tokenEndpoint) : credential?.tokenEndpoint;
  const audValue = typeof aud === 'string' ? aud : Array.isArray(aud) && typeof aud[0] === 'string' ? aud[0] : undefined;
  const idp: IdpKind =
    input.provider ??
    credential?.idp ??
    (tokenEndpoint ? detectIdp(tokenEndpoint) : undefined) ??
    (audValue ? detectIdp(audValue) : undefined) ??
    'generic';
  const basis: AssertionTarget['basis'] = credential
    ? 'credential'
    : input.tokenEndpoint
      ? 'token_endpoint'
      : input.provider
        ? 'provider'
        : audValue && detectIdp(audValue)
          ? 'aud'
          : 'none';
  const fromCredential = credential && (input.tokenEndpoint === undefined || stripQuery(input.tokenEndpoint) === credential.tokenEndpoint);
  const issuer = (fromCredential ? credential?.issuer : undefined) ?? (tokenEndpoint ? issuerOf(idp, tokenEndpoint) : undefined) ?? credential?.issuer;
  let audience = fromCredential ? credential?.audience : undefined;
  if (!audience) {
    if (idp === 'keycloak') audience = issuer ?? tokenEndpoint;
    else if (idp === 'auth0') audience = issuer;
    else audience = tokenEndpoint;
  }
  const target: Omit<AssertionTarget, 'description'> = {
    idp,
    basis,
    tokenEndpoint,
    issuer,
    audience,
    clientId: input.clientId ?? credential?.clientId,
    algorithm: credential?.algorithm,
    entra: idp === 'entra' && tokenEndpoint ? parseEntraUrl(tokenEndpoint) : undefined,
    credentialId: credential?.id,
  };
  return { ...target, description: describeTarget(target) };
}
