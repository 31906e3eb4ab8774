// The `federatedToken` way of authenticating a client: a JWT from another issuer (a Kubernetes
// projected service-account token, a GitHub Actions OIDC token) sent as the client assertion
// (RFC 7521 §4.2; Entra workload identity federation, docs/design.md §9.1).
import { z } from 'zod';
import { filePath } from '../kernel/schema-primitives.ts';

export const federatedTokenSchema = z
  .object({
    file: filePath.describe('file holding the JWT (e.g. /var/run/secrets/azure/tokens/azure-identity-token); read afresh for every exchange, never sent once expired'),
  })
  .strict();

export type FederatedTokenConfig = z.infer<typeof federatedTokenSchema>;
