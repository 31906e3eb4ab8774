// The rule catalogue: every assertion rule, in the order findings are reported within a severity.
// Each rule names the IdPs it applies to (Entra v1 and v2 on every cloud share one set, with the
// cloud's hosts and the endpoint version taken from the target), its severity, the claim, the IdP
// error it leads to and the fix. Rule ids are stable: clients, the page and tests key on them.
import { IDP_KINDS, defineRule, type AssertionRule, type IdpKind } from './assertion-rule.ts';
import { AUDIENCE_RULES } from './rules/audience-rules.ts';
import { HEADER_RULES } from './rules/header-rules.ts';
import { IDENTITY_RULES } from './rules/identity-rules.ts';
import { SIGNATURE_RULES, jwsMalformed } from './rules/signature-rules.ts';
import { TIME_RULES } from './rules/time-rules.ts';

/** Says what the assertion was checked against, so a finding is never read against the wrong IdP. */
export const targetAssumed = defineRule({
  id: 'target.assumed',
  severity: 'info',
  idps: IDP_KINDS,
  summary: 'which IdP, token endpoint and client the assertion was checked against',
  check: (ctx) => ({ message: ctx.target.description, expected: ctx.target.audience ? `aud ${ctx.target.audience}` : undefined }),
});

export const ASSERTION_RULES: readonly AssertionRule[] = [
  jwsMalformed,
  ...AUDIENCE_RULES,
  ...IDENTITY_RULES,
  ...TIME_RULES,
  ...HEADER_RULES,
  ...SIGNATURE_RULES.filter((r) => r !== jwsMalformed),
  targetAssumed,
];

const seen = new Set<string>();
for (const rule of ASSERTION_RULES) {
  if (seen.has(rule.id)) throw new Error(`duplicate assertion rule id ${rule.id}`);
  seen.add(rule.id);
}

export function rulesFor(idp: IdpKind): AssertionRule[] {
  return ASSERTION_RULES.filter((r) => r.idps.includes(idp));
}

export function ruleById(id: string): AssertionRule | undefined {
  return ASSERTION_RULES.find((r) => r.id === id);
}

/** How many rules apply to each IdP (the closing note of issue 5 asks for it). */
export function ruleCounts(): Record<IdpKind, number> {
  return Object.fromEntries(IDP_KINDS.map((idp) => [idp, rulesFor(idp).length])) as Record<IdpKind, number>;
}

/** The rules whose breach leads to this IdP error (an AADSTS code, a Keycloak string, an OAuth error). */
export function rulesLeadingTo(idpError: string, idp?: IdpKind): string[] {
  const wanted = idpError.toLowerCase();
  return ASSERTION_RULES.filter((r) =>
    Object.entries(r.idpError ?? {}).some(([kind, value]) => value?.toLowerCase() === wanted && (!idp || kind === idp)),
  ).map((r) => r.id);
}
