// Where an assertion is going: which IdP, which token endpoint, which `aud` it must carry. Decided
// from what the engineer gives (token endpoint, provider, client id, a configured credential) or,
// failing that, from the assertion's own `aud`. Pure: nothing here makes a network call, so a URL
// that came with a request is only ever parsed, never fetched (docs/design.md §5.4).
import { CLOUDS, type Cloud } from '../idps/entra/entra-schema.ts';
import { ENTRA_CLOUDS } from '../idps/entra/entra-clouds.ts';
import type { AssertionKind, IdpProfileName } from './assertion-rule.ts';
import { IDP_PROFILES } from './idp-profiles.ts';

/** Segments that are not a tenant: certificate assertions there fail with AADSTS700023 (docs/design.md §10.3). */
export const ENTRA_MULTI_TENANT_SEGMENTS = new Set(['common', 'organizations', 'consumers']);

/** The one audience a federated token carries at Entra, per cloud (the table is in idps/entra/entra-clouds.ts). */
export const TOKEN_EXCHANGE_AUDIENCES = Object.fromEntries(CLOUDS.map((c) => [c, ENTRA_CLOUDS[c].tokenExchangeAudience])) as Readonly<Record<Cloud, string>>;
const EXCHANGE_AUDIENCE_VALUES = new Set(Object.values(TOKEN_EXCHANGE_AUDIENCES).map((a) => a.toLowerCase()));

/** aud values as a list of strings (a string, or an array of strings as Kubernetes sends it). */
export function audienceList(aud: unknown): string[] {
  if (typeof aud === 'string') return [aud];
  return Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}

export function isTokenExchangeAudience(value: string): boolean {
  return EXCHANGE_AUDIENCE_VALUES.has(value.trim().toLowerCase());
}

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;

/**
 * A pasted JWT that is a federated token rather than a client assertion: its aud is Entra's token
 * exchange audience and its iss is another issuer (a client assertion's iss is the client id GUID).
 */
export function looksLikeFederatedToken(claims: Record<string, unknown>): boolean {
  const iss = claims.iss;
  return audienceList(claims.aud).some(isTokenExchangeAudience) && typeof iss === 'string' && iss !== '' && !GUID.test(iss.trim());
}

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
  idp: IdpProfileName;
  /** A client assertion or a federated token (decided by the credential, else by the JWT's shape). */
  kind: AssertionKind;
  /** What the target was decided from. */
  basis: 'credential' | 'token_endpoint' | 'provider' | 'aud' | 'none';
  /** The exact URL the assertion is POSTed to, when known. */
  tokenEndpoint?: string;
  /** Keycloak realm, Auth0 tenant or OIDC issuer, when known. */
  issuer?: string;
  /** The `aud` to use (what the broker sends for this target; a federated token's: the token exchange audience), when known. */
  audience?: string;
  /** Federated token at Entra: the token exchange audiences that count as right (one when the cloud is known). */
  exchangeAudiences?: string[];
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
  idp: IdpProfileName;
  /** The Entra cloud of the credential (it fixes the token exchange audience of a federated token). */
  cloud?: Cloud;
  tokenEndpoint?: string;
  issuer?: string;
  audience?: string;
  clientId: string;
  algorithm?: string;
}

export interface TargetInput {
  /** Default client_assertion. */
  kind?: AssertionKind;
  tokenEndpoint?: string;
  provider?: IdpProfileName;
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
export function detectIdp(value: string): IdpProfileName | undefined {
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
export function issuerOf(idp: IdpProfileName, tokenEndpoint: string): string | undefined {
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
export function tokenEndpointOf(idp: IdpProfileName, issuer: string): string | undefined {
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
  return `checked ${t.kind === 'federated_token' ? 'as a federated token ' : ''}against ${idp}, ${where}; target from ${from}`;
}

/**
 * Resolves the target. A token endpoint given with the request wins over the credential's, since
 * it is where the engineer says the assertion goes; the credential still names the client id,
 * algorithm and certificate.
 */
export function resolveTarget(input: TargetInput, aud: unknown): AssertionTarget {
  const credential = input.credential;
  const kind = input.kind ?? 'client_assertion';
  const tokenEndpoint = input.tokenEndpoint !== undefined ? stripQuery(input.tokenEndpoint) : credential?.tokenEndpoint;
  const audValue = typeof aud === 'string' ? aud : Array.isArray(aud) && typeof aud[0] === 'string' ? aud[0] : undefined;
  // A federated token's aud names Entra's token exchange, not a URL of the IdP.
  const federatedAtEntra = kind === 'federated_token' && audienceList(aud).some(isTokenExchangeAudience) ? 'entra' : undefined;
  const idp: IdpProfileName =
    input.provider ??
    credential?.idp ??
    (tokenEndpoint ? detectIdp(tokenEndpoint) : undefined) ??
    federatedAtEntra ??
    (audValue ? detectIdp(audValue) : undefined) ??
    // Workload identity federation is Entra's: a federated token with nothing else to go by is judged as one for Entra.
    (kind === 'federated_token' ? 'entra' : 'generic');
  const basis: AssertionTarget['basis'] = credential
    ? 'credential'
    : input.tokenEndpoint
      ? 'token_endpoint'
      : input.provider
        ? 'provider'
        : (audValue && detectIdp(audValue)) || federatedAtEntra
          ? 'aud'
          : 'none';
  const fromCredential = credential && (input.tokenEndpoint === undefined || stripQuery(input.tokenEndpoint) === credential.tokenEndpoint);
  const issuer = (fromCredential ? credential?.issuer : undefined) ?? (tokenEndpoint ? issuerOf(idp, tokenEndpoint) : undefined) ?? credential?.issuer;
  const entra = idp === 'entra' && tokenEndpoint ? parseEntraUrl(tokenEndpoint) : undefined;
  let audience = fromCredential ? credential?.audience : undefined;
  let exchangeAudiences: string[] | undefined;
  if (kind === 'federated_token') {
    audience = undefined;
    if (idp === 'entra') {
      const clouds = credential?.cloud ? [credential.cloud] : (entra?.clouds ?? []);
      exchangeAudiences = [...new Set((clouds.length > 0 ? clouds : CLOUDS).map((c) => TOKEN_EXCHANGE_AUDIENCES[c]))];
      audience = clouds.length > 0 ? exchangeAudiences[0] : TOKEN_EXCHANGE_AUDIENCES.public;
    }
  } else if (!audience) {
    if (idp === 'keycloak') audience = issuer ?? tokenEndpoint;
    else if (idp === 'auth0') audience = issuer;
    else audience = tokenEndpoint;
  }
  const target: Omit<AssertionTarget, 'description'> = {
    idp,
    kind,
    basis,
    tokenEndpoint,
    issuer,
    audience,
    exchangeAudiences,
    clientId: input.clientId ?? credential?.clientId,
    algorithm: credential?.algorithm,
    entra,
    credentialId: credential?.id,
  };
  return { ...target, description: describeTarget(target) };
}
