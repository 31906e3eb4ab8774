// Entra ID v1 endpoint (/{tenant}/oauth2/token with resource=): a direct form POST, since msal-node
// speaks only v2. expires_in arrives as a string here (docs/design.md §10.7).
import type { EntraCredentialConfig } from './entra-schema.ts';
import type { ClientAuthentication } from '../../client-auth/client-authentication.ts';
import { ENTRA_CLOUDS, resourceOfScope } from './entra-clouds.ts';
import { postTokenRequest } from '../token-endpoint-client.ts';
import type { IssuedToken, TokenEndpointDescription, TokenProvider, TokenRequest } from '../token-provider.ts';

export class EntraV1Provider implements TokenProvider {
  private readonly tokenEndpoint: string;

  constructor(
    private readonly config: EntraCredentialConfig,
    private readonly auth: ClientAuthentication,
  ) {
    const origin = new URL(config.authorityHost ?? ENTRA_CLOUDS[config.cloud].authorityHost).origin;
    this.tokenEndpoint = `${origin}/${config.tenantId}/oauth2/token`;
  }

  async describeEndpoint(): Promise<TokenEndpointDescription> {
    // The v1 aud is the v1 token URL itself (the doc's own sample decodes to …/oauth2/token).
    return { tokenEndpoint: this.tokenEndpoint, audience: this.tokenEndpoint };
  }

  async acquire(request: TokenRequest): Promise<IssuedToken> {
    // Entra takes a client secret as a form field only (formOnly), like an assertion.
    const parts = await this.auth.authenticate({ clientId: this.config.clientId, tokenEndpoint: this.tokenEndpoint, audience: this.tokenEndpoint, formOnly: true }, request.use);
    const form = new URLSearchParams({ grant_type: 'client_credentials', client_id: this.config.clientId, ...parts.form, resource: resourceOfScope(request.scope) });
    return postTokenRequest(this.tokenEndpoint, { form }, { timeoutMs: this.config.timeoutMs, signal: request.signal, idpName: 'Entra ID (v1)', redactions: this.auth.redactions() });
  }
}
