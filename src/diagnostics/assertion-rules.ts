// The rule catalogue: every assertion rule, in the order findings are reported within a severity.
// Each rule names the IdPs it applies to (Entra v1 and v2 on every cloud share one set, with the
// cloud's hosts and the endpoint version taken from the target), its severity, the claim, the IdP
// error it leads to and the fix. Rule ids are stable: clients, the page and tests key on them.
// A client assertion (the broker signs it) and a federated token (another issuer signed it) have a
// rule set each; the structural rules are in both.
import { IDP_PROFILE_NAMES, defineRule, type AssertionKind, type AssertionRule, type IdpProfileName } from './assertion-rule.ts';
import { AUDIENCE_RULES } from './rules/audience-rules.ts';
import { FEDERATED_TOKEN_RULES } from './rules/federated-token-rules.ts';
import { HEADER_RULES, critHeader } from './rules/header-rules.ts';
import { IDENTITY_RULES } from './rules/identity-rules.ts';
import { SIGNATURE_RULES, jwsMalformed, signatureMissing } from './rules/signature-rules.ts';
import { TIME_RULES, timeMilliseconds } from './rules/time-rules.ts';

/** Says what the assertion was checked against, so a finding is never read against the wrong IdP. */
export const targetAssumed = defineRule({
  id: 'target.assumed',
  severity: 'info',
  idps: IDP_PROFILE_NAMES,
  summary: 'which IdP, token endpoint and client the assertion was checked against',
  check: (ctx) => ({ message: ctx.target.description, expected: ctx.target.audience ? `aud ${ctx.target.audience}` : undefined }),
});

/** The rules of each kind of assertion. */
export const RULE_SETS: Readonly<Record<AssertionKind, readonly AssertionRule[]>> = {
  client_assertion: [jwsMalformed, ...AUDIENCE_RULES, ...IDENTITY_RULES, ...TIME_RULES, ...HEADER_RULES, ...SIGNATURE_RULES.filter((r) => r !== jwsMalformed), targetAssumed],
  federated_token: [jwsMalformed, ...FEDERATED_TOKEN_RULES, timeMilliseconds, critHeader, signatureMissing, targetAssumed],
};

/** Every rule once. */
export const ASSERTION_RULES: readonly AssertionRule[] = [...new Set([...RULE_SETS.client_assertion, ...RULE_SETS.federated_token])];

const seen = new Set<string>();
for (const rule of ASSERTION_RULES) {
  if (seen.has(rule.id)) throw new Error(`duplicate assertion rule id ${rule.id}`);
  seen.add(rule.id);
}

export function rulesFor(idp: IdpProfileName, kind: AssertionKind = 'client_assertion'): AssertionRule[] {
  return RULE_SETS[kind].filter((r) => r.idps.includes(idp));
}

export function ruleById(id: string): AssertionRule | undefined {
  return ASSERTION_RULES.find((r) => r.id === id);
}

/** How many client-assertion rules apply to each IdP (the closing note of issue 5 asks for it). */
export function ruleCounts(kind: AssertionKind = 'client_assertion'): Record<IdpProfileName, number> {
  return Object.fromEntries(IDP_PROFILE_NAMES.map((idp) => [idp, rulesFor(idp, kind).length])) as Record<IdpProfileName, number>;
}

/** The rules whose breach leads to this IdP error (an AADSTS code, a Keycloak string, an OAuth error). */
export function rulesLeadingTo(idpError: string, idp?: IdpProfileName): string[] {
  const wanted = idpError.toLowerCase();
  return ASSERTION_RULES.filter((r) =>
    Object.entries(r.idpError ?? {}).some(([kind, value]) => value?.toLowerCase() === wanted && (!idp || kind === idp)),
  ).map((r) => r.id);
}
