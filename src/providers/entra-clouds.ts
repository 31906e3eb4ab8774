// Entra login hosts and Power BI resources per cloud (docs/design.md §10.8, from the Power BI
// national-clouds page). GCC ("usgov") keeps the commercial login host but a gov resource.
import type { Cloud } from '../config/schema.ts';

export interface EntraCloud {
  authorityHost: string;
  powerBiResource: string;
  /** Hosts Microsoft lists as aliases of authorityHost (cloud discovery metadata). */
  aliases: string[];
}

export const ENTRA_CLOUDS: Readonly<Record<Cloud, EntraCloud>> = {
  public: {
    authorityHost: 'https://login.microsoftonline.com',
    powerBiResource: 'https://analysis.windows.net/powerbi/api',
    aliases: ['login.windows.net', 'login.microsoft.com', 'sts.windows.net'],
  },
  usgov: {
    authorityHost: 'https://login.microsoftonline.com',
    powerBiResource: 'https://analysis.usgovcloudapi.net/powerbi/api',
    aliases: ['login.windows.net', 'login.microsoft.com', 'sts.windows.net'],
  },
  usgovhigh: {
    authorityHost: 'https://login.microsoftonline.us',
    powerBiResource: 'https://high.analysis.usgovcloudapi.net/powerbi/api',
    aliases: ['login.usgovcloudapi.net'],
  },
  dod: {
    authorityHost: 'https://login.microsoftonline.us',
    powerBiResource: 'https://mil.analysis.usgovcloudapi.net/powerbi/api',
    aliases: ['login.usgovcloudapi.net'],
  },
  china: {
    authorityHost: 'https://login.partner.microsoftonline.cn',
    powerBiResource: 'https://analysis.chinacloudapi.cn/powerbi/api',
    aliases: ['login.chinacloudapi.cn'],
  },
};

/** Entra v2 wants `<resource>/.default`; v1 wants the bare resource. */
export function resourceOfScope(scope: string): string {
  return scope.endsWith('/.default') ? scope.slice(0, -'/.default'.length) : scope;
}
