// The Entra app the integration tests register at the stand-in, and a broker credential for it.
import type { CredentialFiles } from './credential-files.ts';

export const TEST_TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
export const TEST_CLIENT = '3f1e2d4c-5b6a-4789-9abc-def012345678';
export const POWERBI_SCOPE = 'https://analysis.windows.net/powerbi/api/.default';

/** An entra credential config for the test app, signing with `files`, pointed at the stand-in. */
export function entraCredential(id: string, authorityHost: string, files: Pick<CredentialFiles, 'certFile' | 'keyFile'>, extra: Record<string, unknown> = {}) {
  return {
    id,
    provider: 'entra',
    tenantId: TEST_TENANT,
    clientId: TEST_CLIENT,
    authorityHost,
    certificate: { certFile: files.certFile, keyFile: files.keyFile },
    scopes: [POWERBI_SCOPE],
    ...extra,
  };
}
