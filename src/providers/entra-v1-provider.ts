// Entra ID v1 endpoint (/{tenant}/oauth2/token with resource=): a direct form POST, since msal-node
// speaks only v2. expires_in arrives as a string here (docs/design.md §10.7).
import type { EntraCredentialConfig } from '../config/schema.ts';
import type { ClientAssertionSigner } from '../credentials/client-assertion-signer.ts';
import { ENTRA_CLOUDS, resourceOfScope } from './entra-clouds.ts';
import { postTokenRequest } from './token-endpoint-client.ts';
import type { IssuedToken, TokenEndpointDescription, TokenProvider, TokenRequest } from './token-provider.ts';

export class EntraV1Provider implements TokenProvider {
  private readonly tokenEndpoint: string;

  constructor(
    private readonly config: EntraCredentialConfig,
    private readonly signer: ClientAssertionSigner,
  ) {
    const origin = new URL(config.authorityHost ?? ENTRA_CLOUDS[config.cloud].authorityHost).origin;
    this.tokenEndpoint = `${origin}/${config.tenantId}/oauth2/token`;
  }

  async describeEndpoint(): Promise<TokenEndpointDescription> {
    // The v1 aud is the v1 token URL itself (the doc's own sample decodes to …/oauth2/token).
    return { tokenEndpoint: this.tokenEndpoint, audience: this.tokenEndpoint };
  }

  acquire(request: TokenRequest): Promise<IssuedToken> {
    const form = new URLSearchParams({
      grant_type: 'client_credentials',
      client_id: this.config.clientId,
      // RFC 7521 §4.2
      client_assertion_type: 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer',
      client_assertion: this.signer.sign(this.tokenEndpoint, this.config.clientId, request.certificate),
      resource: resourceOfScope(request.scope),
    });
    return postTokenRequest(this.tokenEndpoint, form, { timeoutMs: this.config.timeoutMs, signal: request.signal, idpName: 'Entra ID (v1)' });
  }
}
