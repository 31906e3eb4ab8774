// Who the callers are and what each may ask for (docs/design.md §4.4, §6.4).
import { hash, timingSafeEqual } from 'node:crypto';
import type { CallerConfig } from '../config/schema.ts';

export interface Caller {
  id: string;
  diagnostics: boolean;
  /** May start, watch and end the sign-ins of delegated credentials. */
  signIn: boolean;
  /** credential id → compiled scope patterns */
  allow: ReadonlyMap<string, RegExp[]>;
  /** Managed-identity requests without client_id use this credential (or the only one allowed). */
  defaultCredential?: string;
  rateLimit: { requestsPerSecond: number; burst: number };
}

/** `*` matches any run of characters; everything else is literal. */
export function compileScopePattern(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

type SecretKind = 'apiKey' | 'identityHeader';

export class CallerDirectory {
  readonly callers: Caller[];
  private readonly secrets: { caller: Caller; kind: SecretKind; hash: Buffer }[] = [];

  constructor(configs: readonly CallerConfig[]) {
    this.callers = configs.map((c) => {
      const allow = new Map<string, RegExp[]>();
      for (const rule of c.allow) allow.set(rule.credential, [...(allow.get(rule.credential) ?? []), ...rule.scopes.map(compileScopePattern)]);
      const caller: Caller = {
        id: c.id,
        diagnostics: c.diagnostics,
        signIn: c.signIn,
        allow,
        defaultCredential: c.defaultCredential ?? (allow.size === 1 ? [...allow.keys()][0] : undefined),
        rateLimit: c.rateLimit,
      };
      if (c.apiKeySha256) this.secrets.push({ caller, kind: 'apiKey', hash: Buffer.from(c.apiKeySha256, 'hex') });
      if (c.identityHeaderSha256) this.secrets.push({ caller, kind: 'identityHeader', hash: Buffer.from(c.identityHeaderSha256, 'hex') });
      return caller;
    });
  }

  byId(id: string): Caller | undefined {
    return this.callers.find((c) => c.id === id);
  }

  /**
   * The caller whose secret hashes to the configured SHA-256. Every configured hash is compared in
   * constant time and none is skipped, so timing says nothing about which secret was close.
   */
  private authenticate(kind: SecretKind, secret: string): Caller | undefined {
    const presented = hash('sha256', secret, 'buffer');
    let found: Caller | undefined;
    for (const entry of this.secrets) {
      if (timingSafeEqual(presented, entry.hash) && entry.kind === kind && !found) found = entry.caller;
    }
    return found;
  }

  authenticateApiKey(apiKey: string): Caller | undefined {
    return this.authenticate('apiKey', apiKey);
  }

  authenticateIdentityHeader(secret: string): Caller | undefined {
    return this.authenticate('identityHeader', secret);
  }

  mayUseCredential(caller: Caller, credentialId: string): boolean {
    return caller.allow.has(credentialId);
  }

  mayUseScope(caller: Caller, credentialId: string, scope: string): boolean {
    return caller.allow.get(credentialId)?.some((p) => p.test(scope)) ?? false;
  }
}
