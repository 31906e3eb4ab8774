// A public client (RFC 6749 §2.1): an app registration without a secret or key, as for a native or
// desktop app. The token request names the client with client_id and carries nothing else (RFC 6749
// §3.2.1); PKCE protects its authorization codes (RFC 7636). Only delegated credentials use it: the
// client credentials grant is for confidential clients (RFC 6749 §4.4).
import type { ClientAuthentication, ClientAuthParts, ClientAuthStatus, ClientAuthTarget } from './client-authentication.ts';

export class PublicClientAuthentication implements ClientAuthentication {
  readonly kind = 'publicClient' as const;

  identity(): string {
    return 'public_client';
  }

  previousIdentity(): undefined {
    return undefined;
  }

  hasPrevious(): boolean {
    return false;
  }

  async authenticate(target: ClientAuthTarget): Promise<ClientAuthParts> {
    return { form: { client_id: target.clientId } };
  }

  status(): ClientAuthStatus {
    return { status: 'ok', detail: {} };
  }

  expiresAt(): undefined {
    return undefined;
  }

  describe(): Record<string, unknown> {
    return { kind: this.kind, note: 'a public client: no secret or key; the IdP identifies it by client_id and its redirect URI' };
  }

  redactions(): string[] {
    return [];
  }

  start(): void {}

  stop(): void {}
}
