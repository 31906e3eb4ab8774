// Checks the ID token a sign-in returns before the broker believes who signed in (OIDC Core §3.1.3.7):
// signature by a key of the issuer's JWKS, iss, aud containing the client id, exp, and the nonce the
// broker put in the authorization request (§3.1.2.1), which binds the token to this sign-in.
import jwt from 'jsonwebtoken';
import { JwksKeySet } from '../callers/jwks-key-set.ts';
import type { Logger } from '../observability/logger.ts';

export interface SignedInPerson {
  subject: string;
  displayName?: string;
}

export class IdTokenProblem extends Error {}

const ALGORITHMS: jwt.Algorithm[] = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512'];

export class IdTokenVerifier {
  private readonly keySets = new Map<string, JwksKeySet>();

  constructor(private readonly logger: Logger) {}

  private keySet(jwksUri: string): JwksKeySet {
    let keySet = this.keySets.get(jwksUri);
    if (!keySet) this.keySets.set(jwksUri, (keySet = new JwksKeySet({ uri: jwksUri }, this.logger)));
    return keySet;
  }

  /** The person the token names; throws IdTokenProblem (a message without the token) when a check fails. */
  async verify(idToken: string, expected: { issuer: string; clientId: string; jwksUri?: string; nonce?: string }): Promise<SignedInPerson> {
    const decoded = jwt.decode(idToken, { complete: true });
    if (!decoded || typeof decoded.payload !== 'object') throw new IdTokenProblem('the ID token is not a JWT');
    if (!expected.jwksUri) throw new IdTokenProblem('the IdP publishes no jwks_uri, so its ID token cannot be checked');
    const keySet = this.keySet(expected.jwksUri);
    const options: jwt.VerifyOptions = { issuer: expected.issuer, audience: expected.clientId, algorithms: ALGORITHMS, clockTolerance: 60 };
    const attempt = (keys: readonly unknown[]): jwt.JwtPayload | undefined => {
      let last: unknown;
      for (const key of keys) {
        try {
          return jwt.verify(idToken, key as jwt.Secret, options) as jwt.JwtPayload;
        } catch (err) {
          last = err;
        }
      }
      if (last instanceof jwt.JsonWebTokenError && !/signature/.test(last.message)) throw new IdTokenProblem(`the ID token was refused: ${last.message}`);
      return undefined;
    };
    const claims = attempt(await keySet.keysFor(decoded.header.kid)) ?? attempt((await keySet.refreshAfterFailure(decoded.header.kid)) ?? []);
    if (!claims) throw new IdTokenProblem('the ID token signature does not verify with any key of the issuer');
    if (expected.nonce !== undefined && claims.nonce !== expected.nonce) throw new IdTokenProblem('the ID token nonce is not the one of this sign-in');
    if (typeof claims.sub !== 'string' || !claims.sub) throw new IdTokenProblem('the ID token has no sub');
    const display = [claims.preferred_username, claims.email, claims.name, claims.upn].find((v): v is string => typeof v === 'string' && v !== '');
    return { subject: claims.sub, displayName: display };
  }
}
