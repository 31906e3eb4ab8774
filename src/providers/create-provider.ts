import type { CredentialConfig } from '../config/schema.ts';
import type { ClientAssertionSigner } from '../credentials/client-assertion-signer.ts';
import type { Logger } from '../observability/logger.ts';
import { EntraMsalProvider } from './entra-msal-provider.ts';
import { EntraV1Provider } from './entra-v1-provider.ts';
import { OidcClientCredentialsProvider } from './oidc-client-credentials-provider.ts';
import type { TokenProvider } from './token-provider.ts';

/** `logger` hears what a provider notices once, e.g. discovery naming a token endpoint on another host. */
export function createProvider(config: CredentialConfig, signer: ClientAssertionSigner, logger?: Logger): TokenProvider {
  switch (config.provider) {
    case 'entra':
      return config.endpointVersion === 'v1' ? new EntraV1Provider(config, signer) : new EntraMsalProvider(config, signer);
    case 'oidc':
      return new OidcClientCredentialsProvider(config, signer, logger);
  }
}
