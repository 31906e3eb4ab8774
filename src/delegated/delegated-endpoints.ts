// Where a delegated credential's IdP takes sign-ins, codes, refresh tokens and revocations: read
// once from its discovery document (OIDC Discovery §4; RFC 8414 §2 names device_authorization_endpoint
// per RFC 8628 §4 and revocation_endpoint per RFC 7009), checked as for client credentials: the
// issuer must be the one configured, and an https issuer must not send a person's browser or the
// broker's requests to plain http.
import { IdpRejected } from '../kernel/errors.ts';
import { getJson } from '../idps/token-endpoint-client.ts';

export interface DelegatedEndpoints {
  issuer: string;
  authorizationEndpoint: string;
  tokenEndpoint: string;
  deviceAuthorizationEndpoint?: string;
  revocationEndpoint?: string;
  jwksUri?: string;
}

const stripSlash = (s: string) => s.replace(/\/+$/, '');

function invalidDiscovery(idpName: string, url: string, what: string, hint: string): IdpRejected {
  return new IdpRejected(`${idpName}: discovery at ${url} ${what}`, { error: 'invalid_discovery', httpStatus: 200 }, hint, 'invalid_discovery');
}

export class DelegatedEndpointResolver {
  private discovery?: Promise<DelegatedEndpoints>;

  constructor(
    private readonly issuer: string,
    private readonly idpName: string,
    private readonly timeoutMs: number,
    /** Whether the document's issuer is the one asked for (Entra names a tenant given by domain by its GUID). */
    private readonly issuerMatches: (declared: string) => boolean = (declared) => stripSlash(declared) === stripSlash(issuer),
  ) {}

  /** Discovery runs once; a failed one is not kept, so the next call tries again. */
  resolve(signal?: AbortSignal): Promise<DelegatedEndpoints> {
    this.discovery ??= this.discover(signal).catch((err: unknown) => {
      this.discovery = undefined;
      throw err;
    });
    return this.discovery;
  }

  private async discover(signal?: AbortSignal): Promise<DelegatedEndpoints> {
    const url = `${stripSlash(this.issuer)}/.well-known/openid-configuration`;
    const doc = (await getJson(url, { timeoutMs: this.timeoutMs, signal, idpName: this.idpName })) as Record<string, unknown>;
    if (typeof doc.issuer !== 'string' || !this.issuerMatches(doc.issuer)) {
      throw invalidDiscovery(this.idpName, url, `names issuer ${JSON.stringify(doc.issuer)?.slice(0, 200)}, not ${this.issuer}`, 'set issuer to exactly the issuer the discovery document declares');
    }
    const httpsIssuer = new URL(this.issuer).protocol === 'https:';
    const endpoint = (field: string, required: boolean): string | undefined => {
      const value = doc[field];
      if (value === undefined && !required) return undefined;
      if (typeof value !== 'string' || !/^https?:\/\//.test(value) || !URL.canParse(value)) {
        throw invalidDiscovery(this.idpName, url, `has no usable ${field}`, `the IdP must publish ${field} for a delegated credential; check the issuer`);
      }
      if (httpsIssuer && new URL(value).protocol !== 'https:') {
        throw invalidDiscovery(this.idpName, url, `names an http ${field} for an https issuer`, `refused: codes and refresh tokens would travel in plaintext; fix the IdP's public URL`);
      }
      return value;
    };
    return {
      issuer: doc.issuer,
      authorizationEndpoint: endpoint('authorization_endpoint', true)!,
      tokenEndpoint: endpoint('token_endpoint', true)!,
      deviceAuthorizationEndpoint: endpoint('device_authorization_endpoint', false),
      revocationEndpoint: endpoint('revocation_endpoint', false),
      jwksUri: endpoint('jwks_uri', false),
    };
  }
}
