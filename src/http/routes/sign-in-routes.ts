// The sign-ins of delegated credentials (docs/delegated-credentials.md): the API a caller with
// signIn: true uses to start, watch and end them, and the two pages a person's browser opens (the
// one-time link and the IdP's redirect), which need no caller key.
import type { Request, RequestHandler, Response, Router } from 'express';
import { Forbidden } from '../../kernel/errors.ts';
import type { SignInService } from '../../delegated/sign-in-service.ts';
import type { TokenService } from '../../core/token-service.ts';
import type { Logger } from '../../observability/logger.ts';
import { currentCaller } from '../middleware/caller-auth.ts';
import { familyRouter } from '../route-table.ts';
import { renderSignInPage } from '../sign-in-page.ts';

export interface SignInRouteDeps {
  signIns: SignInService;
  tokenService: TokenService;
  auditLogger: Logger;
  authenticate: RequestHandler;
}

function noStore(res: Response): void {
  res.setHeader('Cache-Control', 'no-store');
  res.setHeader('Pragma', 'no-cache');
}

export function signInApiRoutes(deps: SignInRouteDeps): Router {
  /** The caller may manage sign-ins, and the id names a configured delegated credential (404 / 400 otherwise). */
  const delegatedCredential = (req: Request, res: Response): string => {
    const caller = currentCaller(res);
    if (!caller.signIn) throw new Forbidden(`caller '${caller.id}' may not manage sign-ins (set signIn: true on the caller)`);
    const id = String(req.params.id);
    deps.tokenService.credential(id);
    return id;
  };
  const audit = (res: Response, action: string, credentialId: string) =>
    deps.auditLogger.info({ requestId: res.locals.requestId as string, caller: currentCaller(res).id, credentialId, action }, `sign-in ${action}`);

  const begin = async (req: Request, res: Response) => {
    const id = delegatedCredential(req, res);
    const started = await deps.signIns.begin(id, currentCaller(res).id);
    audit(res, 'started', id);
    noStore(res);
    res.json(started);
  };
  const status = async (req: Request, res: Response) => {
    const id = delegatedCredential(req, res);
    noStore(res);
    res.json(await deps.signIns.status(id));
  };
  const end = async (req: Request, res: Response) => {
    const id = delegatedCredential(req, res);
    const ended = await deps.signIns.end(id, currentCaller(res).id);
    audit(res, 'ended', id);
    noStore(res);
    res.json(ended);
  };
  return familyRouter('sign-in', { 'POST /v1/credentials/:id/sign-in': begin, 'GET /v1/credentials/:id/sign-in': status, 'DELETE /v1/credentials/:id/sign-in': end }, [deps.authenticate]);
}

export function signInPageRoutes(deps: { signIns: SignInService }): Router {
  const start = async (req: Request, res: Response) => {
    const ticket = typeof req.query.ticket === 'string' ? req.query.ticket : '';
    const target = await deps.signIns.open(ticket);
    noStore(res);
    res.redirect(303, target);
  };
  const callback = async (req: Request, res: Response) => {
    const { credentialId, person } = await deps.signIns.complete(req.query as Record<string, unknown>);
    const who = person ? `${person.displayName ?? person.subject}${person.displayName && person.displayName !== person.subject ? ` (subject ${person.subject})` : ''}` : 'the person who signed in (the IdP sent no ID token)';
    noStore(res);
    res.type('text/html').send(
      renderSignInPage({
        title: 'Signed in',
        lines: [
          `Signed in as ${who} for credential ${credentialId}.`,
          'The broker now holds this sign-in and refreshes it on its own, for as long as the identity provider allows: callers allowed to use this credential get access tokens with this person\'s authority.',
          'You can close this window.',
        ],
        hint: `To end it: DELETE /v1/credentials/${credentialId}/sign-in (a caller with signIn: true), or revoke the grant at the identity provider.`,
      }),
    );
  };
  return familyRouter('sign-in-page', { 'GET /v1/sign-in/start': start, 'GET /v1/sign-in/callback': callback });
}
