// A fake external OIDC issuer that mints the kind of token Entra accepts through workload identity
// federation: a Kubernetes projected service-account token, a GitHub Actions OIDC token, … sent to
// Entra as `client_assertion` (learn.microsoft.com/entra/identity-platform/v2-oauth2-client-creds-grant-flow,
// "Third case: access token request with a federated credential").
//
// The key is an RSA key generated when the issuer is created: nothing is committed, and each test
// run has its own. Entra supports issuers that sign with RS256 only
// (learn.microsoft.com/entra/workload-id/workload-identity-federation-considerations), so `mint`
// signs RS256 unless a test asks for something else on purpose.
//
// Register `jwks` with the Entra stand-in (`registerIssuer(issuer, jwks)`): the real Entra fetches
// the issuer's OIDC discovery document and JWKS; the stand-in is given the keys instead.
import {
  createHash,
  generateKeyPairSync,
  randomUUID,
  sign as cryptoSign,
  constants as cryptoConstants,
  type JsonWebKey,
  type KeyObject,
} from 'node:crypto';

/** The audience Entra expects in a federated token by default (Graph `federatedIdentityCredential.audiences`). */
export const AZURE_AD_TOKEN_EXCHANGE = 'api://AzureADTokenExchange';

export interface MintOptions {
  sub: string;
  /** A string, or an array as Kubernetes sends it. Default `['api://AzureADTokenExchange']` (the Kubernetes shape). */
  aud?: string | string[];
  /** Seconds from now to `exp`; default 3600 (the AKS projected-token default). Ignored when `exp` is given. */
  lifetimeSeconds?: number;
  /** NumericDate overrides; `null` leaves the claim out. Defaults: iat = nbf = now. */
  iat?: number | null;
  nbf?: number | null;
  exp?: number | null;
  /** Overrides the issuer's `iss` (e.g. a trailing slash or other case, to test exact matching). */
  iss?: string;
  /** Extra or replacing claims. */
  claims?: Record<string, unknown>;
  /** Extra or replacing header parameters (e.g. `{ kid: 'unknown' }`, `{ kid: undefined }`). */
  header?: Record<string, unknown>;
  /** Default RS256; PS256 is supported to test that Entra's RS256-only rule is applied. */
  alg?: 'RS256' | 'PS256';
  /** Sign with another key than the published one (signature failure tests). */
  signWith?: KeyObject;
}

export interface FederatedIssuer {
  issuer: string;
  /** `kid` of the current signing key. */
  kid: string;
  /** The issuer's public keys as a JWKS (RFC 7517 §5), what its `jwks_uri` would serve. */
  jwks: { keys: JsonWebKey[] };
  /** A signed JWT from this issuer. Times are judged by Entra against its own clock. */
  mint(options: MintOptions): string;
  /** A new signing key (new `kid`); the old public key stays in `jwks` unless `dropOld`. */
  rotateKey(options?: { dropOld?: boolean }): void;
  /** A private key that is not published, for tokens whose signature must fail. */
  strangerKey(): KeyObject;
}

interface SigningKey {
  kid: string;
  privateKey: KeyObject;
  publicJwk: JsonWebKey;
}

function newKey(): SigningKey {
  const { privateKey, publicKey } = generateKeyPairSync('rsa', { modulusLength: 2048 });
  const publicJwk = publicKey.export({ format: 'jwk' });
  // kid as an RFC 7638 thumbprint, as Kubernetes does for its service-account keys.
  const thumbprintInput = JSON.stringify({ e: publicJwk.e, kty: publicJwk.kty, n: publicJwk.n });
  const kid = createHash('sha256').update(thumbprintInput).digest('base64url');
  return { kid, privateKey, publicJwk: { ...publicJwk, kid, use: 'sig', alg: 'RS256' } };
}

export function createFederatedIssuer(options: { issuer?: string } = {}): FederatedIssuer {
  const issuer = options.issuer ?? `https://oidc.federated.test/${randomUUID()}/`;
  let current = newKey();
  let published: JsonWebKey[] = [current.publicJwk];
  let stranger: KeyObject | undefined;

  const jwks = {
    get keys(): JsonWebKey[] {
      return published.map((k) => ({ ...k }));
    },
  };

  return {
    issuer,
    get kid(): string {
      return current.kid;
    },
    jwks,
    mint(o: MintOptions): string {
      const now = Math.floor(Date.now() / 1000);
      const alg = o.alg ?? 'RS256';
      const iat = o.iat === undefined ? now : o.iat;
      const nbf = o.nbf === undefined ? now : o.nbf;
      const exp = o.exp === undefined ? now + (o.lifetimeSeconds ?? 3600) : o.exp;
      const payload: Record<string, unknown> = {
        aud: o.aud ?? [AZURE_AD_TOKEN_EXCHANGE],
        iss: o.iss ?? issuer,
        sub: o.sub,
        jti: randomUUID(),
        ...(iat !== null ? { iat } : {}),
        ...(nbf !== null ? { nbf } : {}),
        ...(exp !== null ? { exp } : {}),
        ...o.claims,
      };
      const header: Record<string, unknown> = { alg, typ: 'JWT', kid: current.kid, ...o.header };
      for (const k of Object.keys(header)) if (header[k] === undefined) delete header[k];
      const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(payload))}`;
      const key = o.signWith ?? current.privateKey;
      const signature =
        alg === 'PS256'
          ? cryptoSign('sha256', Buffer.from(input), { key, padding: cryptoConstants.RSA_PKCS1_PSS_PADDING, saltLength: cryptoConstants.RSA_PSS_SALTLEN_DIGEST })
          : cryptoSign('sha256', Buffer.from(input), key);
      return `${input}.${signature.toString('base64url')}`;
    },
    rotateKey(opts?: { dropOld?: boolean }): void {
      current = newKey();
      published = opts?.dropOld ? [current.publicJwk] : [...published, current.publicJwk];
    },
    strangerKey(): KeyObject {
      stranger ??= newKey().privateKey;
      return stranger;
    },
  };
}

function b64url(s: string): string {
  return Buffer.from(s, 'utf8').toString('base64url');
}
