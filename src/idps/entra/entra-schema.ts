// Entra ID's part of a credential: tenant, cloud, endpoint version.
import { z } from 'zod';
import { httpUrl } from '../../kernel/schema-primitives.ts';
import { baseCredential, scopeList } from '../credential-schema.ts';

const GUID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/i;
// A tenant is a GUID or a verified domain name; never common/organizations/consumers, which Entra
// refuses for app-only (client credentials) tokens (AADSTS700023, docs/design.md §10.3).
const TENANT_ALIASES = new Set(['common', 'organizations', 'consumers']);
const TENANT = /^(?:[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}|[a-z0-9][a-z0-9-]*(?:\.[a-z0-9-]+)+)$/i;

export const CLOUDS = ['public', 'usgov', 'usgovhigh', 'dod', 'china'] as const;
export type Cloud = (typeof CLOUDS)[number];

export const entraCredentialSchema = z
  .object({
    ...baseCredential,
    provider: z.literal('entra'),
    tenantId: z.string().superRefine((v, ctx) => {
      if (TENANT_ALIASES.has(v.toLowerCase())) {
        ctx.addIssue({ code: 'custom', message: `'${v}' is a multi-tenant alias, which Entra refuses for app-only tokens (AADSTS700023): use the tenant GUID or a verified domain` });
      } else if (!TENANT.test(v)) {
        ctx.addIssue({ code: 'custom', message: 'must be a tenant GUID or verified domain (not common/organizations/consumers)' });
      }
    }),
    clientId: z.string().regex(GUID, 'must be the Application (client) ID, a GUID'),
    cloud: z.enum(CLOUDS).default('public'),
    endpointVersion: z.enum(['v2', 'v1']).default('v2'),
    authorityHost: httpUrl.optional().describe('override of the cloud login host (tests point it at a local server)'),
    scopes: scopeList.min(1, 'an entra credential needs at least one scope, e.g. https://analysis.windows.net/powerbi/api/.default'),
  })
  .strict();

export type EntraCredentialConfig = z.infer<typeof entraCredentialSchema>;
