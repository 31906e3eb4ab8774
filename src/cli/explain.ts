// `token-broker explain <text | ->`: the explanation of /v1/diagnostics/explain, offline. Takes an
// IdP error as pasted (a JSON body, a log line, an AADSTS message with or without its code, a bare
// invalid_client). Exit 0 when explained, 1 when nothing matched, 2 on usage error. The text is only
// parsed: nothing is sent anywhere and nothing in it is followed.
import { parseArgs } from 'node:util';
import { explainIdpError, type ErrorExplainResult, type ErrorSource } from '../diagnostics/error-explainer.ts';
import { wrap, type InspectIo } from './inspect.ts';

export const EXPLAIN_USAGE = `usage: token-broker explain <text | -> [--json]

Explains an error from an identity provider: an Entra answer (AADSTS code or its message), a
Keycloak, Okta, Auth0 or Power BI error, or a plain OAuth error such as invalid_client.
Reads the text from stdin when given '-'. Nothing is sent anywhere.

options:
  --json   print the result as JSON (the /v1/diagnostics/explain response)

exit status: 0 explained, 1 not recognised, 2 usage error
`;

const SOURCE_NAMES: Record<ErrorSource, string> = {
  entra: 'Entra ID',
  keycloak: 'Keycloak',
  okta: 'Okta',
  auth0: 'Auth0',
  powerbi: 'Power BI',
  oauth: 'OAuth 2.0, RFC 6749 §5.2',
};
const IDP_NAMES: Record<string, string> = { entra: 'Entra ID', keycloak: 'Keycloak', okta: 'Okta', auth0: 'Auth0' };

class UsageError extends Error {}

/** Runs the command; returns the exit status. */
export async function explain(args: string[], io: InspectIo): Promise<number> {
  try {
    const { values, positionals } = parseArgs({ args, options: { json: { type: 'boolean', default: false } }, allowPositionals: true });
    if (positionals.length === 0) throw new UsageError('explain takes the error text (or - to read it from stdin)');
    if (positionals.includes('-') && positionals.length > 1) throw new UsageError("give the text as arguments or '-' for stdin, not both");
    // Unquoted words arrive as several arguments; they are one message.
    const text = positionals[0] === '-' ? await io.readStdin() : positionals.join(' ');
    if (text.trim() === '') throw new UsageError('the error text is empty');

    const result = explainIdpError(text);
    if (values.json) io.out(JSON.stringify(result, null, 2) + '\n');
    else io.out(render(result, Math.max(80, Math.min(io.columns ?? 100, 160))));
    return result.recognized ? 0 : 1;
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`token-broker: ${(err as Error).message}\n\n${EXPLAIN_USAGE}`);
      return 2;
    }
    throw err;
  }
}

function labelled(label: string, text: string, width: number, indent = 2): string[] {
  const pad = indent + 10;
  return wrap(text, width - pad).map((l, i) => `${' '.repeat(indent)}${(i === 0 ? label : '').padEnd(10)}${l}`);
}

export function render(result: ErrorExplainResult, width: number): string {
  if (!result.recognized) {
    return 'token-broker explain: not recognised (no AADSTS code, known IdP message or OAuth error in the text)\n';
  }
  const out: string[] = [];
  const p = result.parsed;
  for (const [label, value] of [
    ['trace id', p.trace_id],
    ['corr. id', p.correlation_id],
  ] as const) {
    if (value) out.push(...labelled(label, value, width, 0));
  }
  if (out.length > 0) out.push('');
  for (const e of result.explanations) {
    out.push(...wrap(`${e.code} (${SOURCE_NAMES[e.source]}): ${e.title}`, width));
    out.push(...labelled('cause', e.cause, width), ...labelled('fix', e.fix, width));
    if (e.matched_by === 'message') out.push(...labelled('matched', 'by its wording (the text has no code)', width));
    if (e.claim) out.push(...labelled('claim', e.claim, width));
    if (e.rules) out.push(...labelled('rules', e.rules.join(', '), width));
    for (const n of e.per_idp ?? []) {
      out.push(`  at ${IDP_NAMES[n.idp] ?? n.idp}:`, ...labelled('cause', n.cause, width, 4), ...labelled('fix', n.fix, width, 4));
    }
    out.push('');
  }
  return out.join('\n');
}
