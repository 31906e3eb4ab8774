// `token-broker sign-in CREDENTIAL`: starts the sign-in of a delegated credential on a running broker
// (POST /v1/credentials/{id}/sign-in, as a caller with signIn: true), prints the link or the device
// code for the person, and waits until the sign-in completes, fails or expires.
import { readFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

export const SIGN_IN_USAGE = `usage: token-broker sign-in CREDENTIAL --url BROKER_URL [--api-key-file FILE] [--no-wait]

  Starts a sign-in of a delegated credential on a running broker and waits for the person to finish.
  --url            the broker, e.g. https://broker.example (env TOKEN_BROKER_URL)
  --api-key-file   a file holding the API key of a caller with signIn: true (else env TOKEN_BROKER_API_KEY)
  --no-wait        print the link or code and exit
  exit 0 signed in; 1 the sign-in failed, was declined or expired; 2 usage
`;

export interface SignInIo {
  out(text: string): void;
  err(text: string): void;
  env: NodeJS.ProcessEnv;
  sleep(ms: number): Promise<void>;
}

interface Status {
  state: string;
  subject?: string;
  display_name?: string;
  signed_in_at?: string;
  reason?: string;
  pending?: { expires_at: string };
}

const POLL_MS = 2000;

class CliFailure extends Error {
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

function apiKey(file: string | undefined, env: NodeJS.ProcessEnv): string {
  if (file) {
    try {
      return readFileSync(file, 'utf8').trim();
    } catch (err) {
      throw new CliFailure(`--api-key-file: cannot read ${file} (${(err as NodeJS.ErrnoException).code})`, 2);
    }
  }
  const key = env.TOKEN_BROKER_API_KEY?.trim();
  if (!key) throw new CliFailure('an API key is needed: --api-key-file FILE or env TOKEN_BROKER_API_KEY (a caller with signIn: true)', 2);
  return key;
}

async function call(url: string, method: string, key: string): Promise<Record<string, unknown>> {
  let res: Response;
  try {
    res = await fetch(url, { method, headers: { authorization: `Bearer ${key}`, accept: 'application/json' } });
  } catch (err) {
    throw new CliFailure(`cannot reach ${new URL(url).origin} (${(err as Error).message})`, 1);
  }
  const body = (await res.json().catch(() => ({}))) as Record<string, unknown>;
  if (!res.ok) throw new CliFailure(`${method} ${new URL(url).pathname}: ${res.status} ${String(body.detail ?? body.title ?? res.statusText)}${body.hint ? ` (${String(body.hint)})` : ''}`, 1);
  return body;
}

export async function signInCommand(args: string[], io: SignInIo): Promise<number> {
  try {
    const { values, positionals } = parseArgs({ args, options: { url: { type: 'string' }, 'api-key-file': { type: 'string' }, 'no-wait': { type: 'boolean', default: false } }, allowPositionals: true });
    const credential = positionals[0];
    if (!credential || positionals.length > 1) throw new CliFailure('sign-in takes exactly one CREDENTIAL', 2);
    const base = values.url ?? io.env.TOKEN_BROKER_URL;
    if (!base || !URL.canParse(base)) throw new CliFailure('--url: the broker URL is needed, e.g. --url https://broker.example (or env TOKEN_BROKER_URL)', 2);
    const key = apiKey(values['api-key-file'], io.env);
    const endpoint = new URL(`/v1/credentials/${encodeURIComponent(credential)}/sign-in`, base).toString();
    const before = (await call(endpoint, 'GET', key)) as unknown as Status;
    const started = await call(endpoint, 'POST', key);
    if (started.flow === 'device_code') {
      io.out(`On any device, open ${String(started.verification_uri)} and enter the code ${String(started.user_code)}\n`);
      if (started.verification_uri_complete) io.out(`(or open ${String(started.verification_uri_complete)})\n`);
    } else {
      io.out(`Open this link in a browser and sign in (it works once):\n  ${String(started.sign_in_url)}\n`);
    }
    io.out(`The ${started.flow === 'device_code' ? 'code' : 'link'} expires at ${String(started.expires_at)}.\n`);
    if (values['no-wait']) return 0;
    io.out('Waiting for the sign-in…\n');
    const deadline = Date.parse(String(started.expires_at)) + 30_000;
    for (;;) {
      await io.sleep(POLL_MS);
      const status = (await call(endpoint, 'GET', key)) as unknown as Status;
      if (status.state === 'signed_in' && !status.pending && status.signed_in_at !== before.signed_in_at) {
        const who = status.display_name ?? status.subject ?? 'the person';
        io.out(`Signed in as ${who}${status.subject && status.subject !== who ? ` (subject ${status.subject})` : ''}: credential ${credential} is ready.\n`);
        return 0;
      }
      if (!status.pending && status.signed_in_at === before.signed_in_at && status.reason) throw new CliFailure(`the sign-in did not complete: ${status.reason}`, 1);
      if (!status.pending && status.state === 'signed_in') throw new CliFailure('the sign-in did not complete; the earlier sign-in is still in use', 1);
      if (Date.now() > deadline) throw new CliFailure('the sign-in did not complete before the link or code expired', 1);
    }
  } catch (err) {
    if (err instanceof CliFailure) {
      io.err(`token-broker sign-in: ${err.message}\n`);
      return err.exitCode;
    }
    if ((err as { code?: string }).code?.startsWith('ERR_PARSE_ARGS')) {
      io.err(`token-broker sign-in: ${(err as Error).message}\n\n${SIGN_IN_USAGE}`);
      return 2;
    }
    throw err;
  }
}
