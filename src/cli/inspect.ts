// `token-broker inspect <jwt | ->`: the assertion lint of /v1/diagnostics/assertion, offline, as a
// table (or --json). Exit 0 when the verdict is ok, 1 when the assertion will fail, 2 on usage error.
// Nothing is sent anywhere: the token endpoint given is only compared with the assertion's aud.
// Per kind of client authentication: a client assertion (signed with a certificate's key) or a
// federated token (signed by another issuer: recognised by its token-exchange aud, or --federated).
// The JWT itself is never printed: header and claims only (and a client secret is no JWT at all).
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { IDP_PROFILE_NAMES, type Finding, type IdpProfileName } from '../diagnostics/assertion-rule.ts';
import { lintAssertion, type LintResult } from '../diagnostics/assertion-linter.ts';
import { checkedCertificateFromFile } from '../diagnostics/certificate-facts.ts';
import type { CheckedCertificate } from '../diagnostics/assertion-rule.ts';

export const INSPECT_USAGE = `usage: token-broker inspect <jwt | -> [options]

Checks a client assertion (compact JWS) against the rules of the IdP it is meant for, or a
federated token (a JWT from another issuer, e.g. a Kubernetes service-account token) against
Entra's federated-credential rules. Reads the JWT from stdin when given '-'. Nothing is sent
anywhere, and the JWT is never printed (header and claims only).

options:
  --token-endpoint URL   the token URL the assertion is POSTed to (checks aud exactly)
  --provider NAME        entra | keycloak | okta | auth0 | generic (default: detected)
  --client-id ID         the client_id the assertion is sent with
  --cert FILE            PEM (or DER) certificate to check the signature and thumbprints against
                         (client assertions; a federated token is signed by its issuer)
  --federated            check it as a federated token (default: when aud is api://AzureADTokenExchange
                         and iss is not a client id)
  --json                 print the result as JSON (the /v1/diagnostics/assertion response)

exit status: 0 verdict ok, 1 the IdP will refuse it, 2 usage error
`;

export interface InspectIo {
  readStdin(): Promise<string>;
  out(text: string): void;
  err(text: string): void;
  columns?: number;
  now?: () => number;
}

export const defaultIo: InspectIo = {
  readStdin: async () => {
    const chunks: Buffer[] = [];
    for await (const chunk of process.stdin) chunks.push(Buffer.from(chunk as Buffer));
    return Buffer.concat(chunks).toString('utf8');
  },
  out: (t) => process.stdout.write(t),
  err: (t) => process.stderr.write(t),
  columns: process.stdout.columns,
};

class UsageError extends Error {}

/** Runs the command; returns the exit status. */
export async function inspect(args: string[], io: InspectIo = defaultIo): Promise<number> {
  try {
    const { values, positionals } = parseArgs({
      args,
      options: {
        'token-endpoint': { type: 'string' },
        provider: { type: 'string' },
        'client-id': { type: 'string' },
        cert: { type: 'string' },
        federated: { type: 'boolean', default: false },
        json: { type: 'boolean', default: false },
      },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('inspect takes exactly one assertion (or - to read it from stdin)');
    const provider = values.provider;
    if (provider !== undefined && !(IDP_PROFILE_NAMES as readonly string[]).includes(provider)) {
      throw new UsageError(`--provider must be one of ${IDP_PROFILE_NAMES.join(', ')}`);
    }
    if (values.federated && values.cert !== undefined) throw new UsageError('--cert checks a client assertion\'s signature; a federated token is signed by its issuer');
    const tokenEndpoint = values['token-endpoint'];
    if (tokenEndpoint !== undefined && !/^https?:\/\/[^\s]+$/i.test(tokenEndpoint)) throw new UsageError('--token-endpoint must be an absolute http(s) URL');
    let certificate: CheckedCertificate | undefined;
    if (values.cert !== undefined) {
      let content: Buffer;
      try {
        content = readFileSync(values.cert);
      } catch (err) {
        throw new UsageError(`cannot read --cert ${values.cert} (${(err as NodeJS.ErrnoException).code ?? 'error'})`);
      }
      try {
        certificate = checkedCertificateFromFile(content);
      } catch {
        throw new UsageError(`--cert ${values.cert} is not a PEM or DER certificate`);
      }
    }
    const assertion = positionals[0] === '-' ? await io.readStdin() : positionals[0]!;
    if (assertion.trim() === '') throw new UsageError('the assertion is empty');

    const result = lintAssertion({
      assertion,
      target: { kind: values.federated ? 'federated_token' : undefined, tokenEndpoint, provider: provider as IdpProfileName | undefined, clientId: values['client-id'] },
      certificate,
      nowMs: (io.now ?? Date.now)(),
    });
    if (certificate && result.target.kind === 'federated_token') {
      throw new UsageError('this JWT is a federated token (aud api://AzureADTokenExchange, iss another issuer), signed by its issuer: --cert checks client assertions only');
    }
    if (values.json) {
      const { header, claims, signature, findings, verdict } = result;
      io.out(JSON.stringify({ header, claims, signature, findings, verdict }, null, 2) + '\n');
    } else {
      io.out(renderTable(result, Math.max(80, Math.min(io.columns ?? 120, 160))));
    }
    return result.verdict === 'ok' ? 0 : 1;
  } catch (err) {
    if (err instanceof UsageError || (err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`token-broker: ${(err as Error).message}\n\n${INSPECT_USAGE}`);
      return 2;
    }
    throw err;
  }
}

// ── table ────────────────────────────────────────────────────────────────────────────────────

/** Word-wraps to `width`, breaking words (URLs, base64) that are longer than a line. */
export function wrap(text: string, width: number): string[] {
  const lines: string[] = [];
  let line = '';
  for (let word of text.split(/\s+/).filter(Boolean)) {
    while (word.length > width) {
      if (line) {
        lines.push(line);
        line = '';
      }
      lines.push(word.slice(0, width));
      word = word.slice(width);
    }
    if (!line) line = word;
    else if (line.length + 1 + word.length <= width) line += ` ${word}`;
    else {
      lines.push(line);
      line = word;
    }
  }
  if (line) lines.push(line);
  return lines.length > 0 ? lines : [''];
}

function abbreviateX5c(header: Record<string, unknown>): Record<string, unknown> {
  if (!Array.isArray(header.x5c)) return header;
  return { ...header, x5c: header.x5c.map((c) => (typeof c === 'string' && c.length > 24 ? `${c.slice(0, 20)}…(${c.length} chars)` : c)) };
}

function labelled(label: string, text: string, width: number): string[] {
  const pad = 11;
  return wrap(text, width - pad).map((l, i) => `${(i === 0 ? label : '').padEnd(pad)}${l}`);
}

export function renderTable(result: LintResult, width: number): string {
  const out: string[] = [];
  out.push(...wrap(`token-broker inspect: ${result.target.description}`, width), '');
  out.push(...labelled('header', JSON.stringify(abbreviateX5c(result.header)), width));
  out.push(...labelled('claims', JSON.stringify(result.claims), width));
  const s = result.signature;
  const unchecked = result.target.kind === 'federated_token' ? 'not checked here (signed by its issuer: the IdP checks it with the issuer\'s published keys)' : 'not checked (give --cert FILE)';
  out.push(
    ...labelled(
      'signature',
      s.checked ? (s.valid ? `valid (certificate ${s.certificate?.subject}, SHA-1 ${s.certificate?.sha1})` : `INVALID for certificate ${s.certificate?.subject} (SHA-1 ${s.certificate?.sha1})`) : unchecked,
      width,
    ),
    '',
  );

  // The target line above says what target.assumed says.
  const findings = result.findings.filter((f) => f.id !== 'target.assumed');
  const cols = [
    { title: 'SEVERITY', get: (f: Finding) => f.severity },
    { title: 'ID', get: (f: Finding) => f.id },
    { title: 'CLAIM', get: (f: Finding) => f.claim ?? '-' },
    { title: 'IDP ERROR', get: (f: Finding) => f.idp_error ?? '-' },
  ];
  const widths = cols.map((c) => Math.max(c.title.length, ...findings.map((f) => c.get(f).length)));
  const lead = widths.reduce((sum, w) => sum + w + 2, 0);
  const messageWidth = Math.max(30, width - lead);
  const row = (cells: string[], message: string) => cells.map((c, i) => c.padEnd(widths[i]! + 2)).join('') + message;
  out.push(row(cols.map((c) => c.title), 'FINDING'));
  // Details (expected / actual / fix) run under the ID column, so URLs get a whole line.
  const detailIndent = widths[0]! + 2;
  const detailWidth = Math.max(30, width - detailIndent);
  for (const f of findings) {
    wrap(f.message, messageWidth).forEach((line, i) => out.push(i === 0 ? row(cols.map((c) => c.get(f)), line) : ' '.repeat(lead) + line));
    for (const [label, value] of [
      ['expected', f.expected],
      ['actual', f.actual],
      ['fix', f.fix],
    ] as const) {
      if (value === undefined) continue;
      const prefix = `${label}:`.padEnd(10);
      wrap(value, detailWidth - prefix.length).forEach((l, i) => out.push(' '.repeat(detailIndent) + (i === 0 ? prefix : ' '.repeat(prefix.length)) + l));
    }
  }
  if (findings.length === 0) out.push('(no findings)');
  const count = (sev: string) => result.findings.filter((f) => f.severity === sev).length;
  out.push('', `verdict: ${result.verdict} (${count('error')} errors, ${count('warning')} warnings, ${count('info')} notes)`, '');
  return out.join('\n');
}
