// Entra login hosts and Power BI resources per cloud (docs/design.md §10.8, from the Power BI
// national-clouds page). GCC ("usgov") keeps the commercial login host but a gov resource.
import type { Cloud } from './entra-schema.ts';

export interface EntraCloud {
  authorityHost: string;
  powerBiResource: string;
  /** Hosts Microsoft lists as aliases of authorityHost (cloud discovery metadata). */
  aliases: string[];
  /**
   * The one audience a federated identity credential on an Entra app carries in this cloud
   * (learn.microsoft.com/graph/api/resources/federatedidentitycredential, "audiences"; the national
   * clouds' values as the Azure Identity libraries use them). GCC (usgov) signs in on the commercial
   * host, so it has the commercial value.
   */
  tokenExchangeAudience: string;
}

export const ENTRA_CLOUDS: Readonly<Record<Cloud, EntraCloud>> = {
  public: {
    authorityHost: 'https://login.microsoftonline.com',
    powerBiResource: 'https://analysis.windows.net/powerbi/api',
    aliases: ['login.windows.net', 'login.microsoft.com', 'sts.windows.net'],
    tokenExchangeAudience: 'api://AzureADTokenExchange',
  },
  usgov: {
    authorityHost: 'https://login.microsoftonline.com',
    powerBiResource: 'https://analysis.usgovcloudapi.net/powerbi/api',
    aliases: ['login.windows.net', 'login.microsoft.com', 'sts.windows.net'],
    tokenExchangeAudience: 'api://AzureADTokenExchange',
  },
  usgovhigh: {
    authorityHost: 'https://login.microsoftonline.us',
    powerBiResource: 'https://high.analysis.usgovcloudapi.net/powerbi/api',
    aliases: ['login.usgovcloudapi.net'],
    tokenExchangeAudience: 'api://AzureADTokenExchangeUSGov',
  },
  dod: {
    authorityHost: 'https://login.microsoftonline.us',
    powerBiResource: 'https://mil.analysis.usgovcloudapi.net/powerbi/api',
    aliases: ['login.usgovcloudapi.net'],
    tokenExchangeAudience: 'api://AzureADTokenExchangeUSGov',
  },
  china: {
    authorityHost: 'https://login.partner.microsoftonline.cn',
    powerBiResource: 'https://analysis.chinacloudapi.cn/powerbi/api',
    aliases: ['login.chinacloudapi.cn'],
    tokenExchangeAudience: 'api://AzureADTokenExchangeChina',
  },
};

/** Entra v2 wants `<resource>/.default`; v1 wants the bare resource. */
export function resourceOfScope(scope: string): string {
  return scope.endsWith('/.default') ? scope.slice(0, -'/.default'.length) : scope;
}
