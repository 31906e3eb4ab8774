// Who the callers are and what each may ask for (DESIGN §4 `callers`, §6 "Security").
import { createHash, timingSafeEqual } from 'node:crypto';
import type { CallerConfig } from '../config/schema.ts';

export interface Caller {
  id: string;
  diagnostics: boolean;
  /** credential id → compiled scope patterns */
  allow: ReadonlyMap<string, RegExp[]>;
}

/** `*` matches any run of characters; everything else is literal. */
function compilePattern(pattern: string): RegExp {
  return new RegExp(`^${pattern.split('*').map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('.*')}$`);
}

export class CallerDirectory {
  private readonly callers: { caller: Caller; keyHash: Buffer }[];

  constructor(configs: readonly CallerConfig[]) {
    this.callers = configs.map((c) => {
      const allow = new Map<string, RegExp[]>();
      for (const rule of c.allow) allow.set(rule.credential, [...(allow.get(rule.credential) ?? []), ...rule.scopes.map(compilePattern)]);
      return { caller: { id: c.id, diagnostics: c.diagnostics, allow }, keyHash: Buffer.from(c.apiKeySha256, 'hex') };
    });
  }

  /**
   * The caller whose key hashes to the configured SHA-256. Every configured hash is compared in
   * constant time and none is skipped, so timing says nothing about which key was close.
   */
  authenticateApiKey(apiKey: string): Caller | undefined {
    const presented = createHash('sha256').update(apiKey, 'utf8').digest();
    let found: Caller | undefined;
    for (const { caller, keyHash } of this.callers) {
      if (timingSafeEqual(presented, keyHash) && !found) found = caller;
    }
    return found;
  }

  mayUseCredential(caller: Caller, credentialId: string): boolean {
    return caller.allow.has(credentialId);
  }

  mayUseScope(caller: Caller, credentialId: string, scope: string): boolean {
    return caller.allow.get(credentialId)?.some((p) => p.test(scope)) ?? false;
  }
}
