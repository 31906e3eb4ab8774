// `token-broker inspect <jwt | ->`: the assertion lint of /v1/diagnostics/assertion, offline, as a
// table (or --json). Exit 0 when the verdict is ok, 1 when the assertion will fail, 2 on usage error.
// Nothing is sent anywhere: the token endpoint given is only compared with the assertion's aud.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';
import { IDP_KINDS, type Finding, type IdpKind } from '../diagnostics/assertion-rule.ts';
import { lintAssertion, type LintResult } from '../diagnostics/assertion-linter.ts';
import { checkedCertificateFromFile } from '../diagnostics/certificate-facts.ts';
import type { CheckedCertificate } from '../diagnostics/assertion-rule.ts';

export const INSPECT_USAGE = `usage: token-broker inspect <jwt | -> [options]

Checks a client assertion (compact JWS) against the rules of the IdP it is meant for.
Reads the assertion from stdin when given '-'. Nothing is sent anywhere.

options:
  --token-endpoint URL   the token URL the assertion is POSTed to (checks aud exactly)
  --provider NAME        entra | keycloak | okta | auth0 | generic (default: detected)
  --client-id ID         the client_id the assertion is sent with
  --cert FILE            PEM (or DER) certificate to check the signature and thumbprints against
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
        json: { type: 'boolean', default: false },
      },
      allowPositionals: true,
    });
    if (positionals.length !== 1) throw new UsageError('inspect takes exactly one assertion (or - to read it from stdin)');
    const provider = values.provider;
    if (provider !== undefined && !(IDP_KINDS as readonly string[]).includes(provider)) {
      throw new UsageError(`--provider must be one of ${IDP_KINDS.join(', ')}`);
    }
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
      target: { tokenEndpoint, provider: provider as IdpKind | undefined, clientId: values['client-id'] },
      certificate,
      nowMs: (io.now ?? Date.now)(),
    });
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
  out.push(
    ...labelled(
      'signature',
      s.checked ? (s.valid ? `valid (certificate ${s.certificate?.subject}, SHA-1 ${s.certificate?.sha1})` : `INVALID for certificate ${s.certificate?.subject} (SHA-1 ${s.certificate?.sha1})`) : 'not checked (give --cert FILE)',
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
