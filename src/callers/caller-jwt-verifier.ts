// Callers that prove who they are with a JWT from a configured issuer (Kubernetes projected service
// account tokens first of all): signature from the issuer's JWKS, iss, aud, exp/nbf with a small
// leeway, sub (exact or pattern), further claims, and an algorithm allow-list without none or HMAC.
import jwt from 'jsonwebtoken';
import type { CallerJwtConfig } from '../config/schema.ts';
import type { Caller } from './caller-directory.ts';
import { compileScopePattern } from './caller-directory.ts';
import type { Logger } from '../observability/logger.ts';
import { JwksKeySet } from './jwks-key-set.ts';

export interface JwtCaller {
  caller: Caller;
  config: CallerJwtConfig;
  keySet: JwksKeySet;
  subject: RegExp;
}

function decodeUnverified(token: string): { header: jwt.JwtHeader; payload: jwt.JwtPayload } | undefined {
  try {
    const decoded = jwt.decode(token, { complete: true });
    if (!decoded || typeof decoded.payload === 'string') return undefined;
    return { header: decoded.header, payload: decoded.payload };
  } catch {
    return undefined;
  }
}

/** Three base64url parts, the first a JSON object with alg: worth trying as a JWT. */
export function looksLikeJwt(token: string): boolean {
  return /^eyJ[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]*$/.test(token);
}

export class CallerJwtVerifier {
  private readonly byIssuer = new Map<string, JwtCaller[]>();

  constructor(
    callers: { caller: Caller; config: CallerJwtConfig; keySet: JwksKeySet }[],
    private readonly logger: Logger,
  ) {
    for (const c of callers) {
      const list = this.byIssuer.get(c.config.issuer) ?? [];
      list.push({ ...c, subject: compileScopePattern(c.config.subject) });
      this.byIssuer.set(c.config.issuer, list);
    }
  }

  get size(): number {
    return this.byIssuer.size;
  }

  /** The caller this token proves, or undefined (never a reason: the HTTP answer is one uniform 401). */
  async verify(token: string): Promise<Caller | undefined> {
    const decoded = decodeUnverified(token);
    if (!decoded || typeof decoded.payload.iss !== 'string') return undefined;
    const candidates = this.byIssuer.get(decoded.payload.iss);
    if (!candidates) return undefined;
    for (const candidate of candidates) {
      const payload = await this.verifyFor(candidate, token, decoded.header);
      if (payload && this.matches(candidate, payload)) return candidate.caller;
    }
    return undefined;
  }

  private async verifyFor(candidate: JwtCaller, token: string, header: jwt.JwtHeader): Promise<jwt.JwtPayload | undefined> {
    const { config, keySet } = candidate;
    if (!config.algorithms.includes(header.alg as never)) return undefined;
    const options: jwt.VerifyOptions = {
      algorithms: config.algorithms as jwt.Algorithm[],
      issuer: config.issuer,
      audience: config.audience as string | [string, ...string[]],
      clockTolerance: config.clockToleranceSeconds,
    };
    const attempt = (keys: import('node:crypto').KeyObject[]): jwt.JwtPayload | undefined | 'signature' => {
      let signatureFailed = false;
      for (const key of keys) {
        try {
          const payload = jwt.verify(token, key, options);
          return typeof payload === 'string' ? undefined : payload;
        } catch (err) {
          if ((err as Error).message === 'invalid signature') signatureFailed = true;
          else return undefined; // expired, wrong audience, …: another key would not help
        }
      }
      return signatureFailed ? 'signature' : undefined;
    };
    const first = attempt(await keySet.keysFor(header.kid));
    if (first !== 'signature') return first;
    // Keycloak-style rotation under the same kid: refetch once, then try again.
    const refreshed = await keySet.refreshAfterFailure(header.kid);
    const second = refreshed ? attempt(refreshed) : undefined;
    if (second === 'signature' || second === undefined) {
      this.logger.debug({ issuer: config.issuer, kid: header.kid }, 'caller JWT signature did not verify');
      return undefined;
    }
    return second;
  }

  private matches(candidate: JwtCaller, payload: jwt.JwtPayload): boolean {
    // A caller token must expire: one without exp would be a permanent credential.
    if (typeof payload.exp !== 'number') return false;
    if (typeof payload.sub !== 'string' || !candidate.subject.test(payload.sub)) return false;
    for (const [claim, expected] of Object.entries(candidate.config.claims)) {
      if (payload[claim] !== expected) return false;
    }
    return true;
  }
}
