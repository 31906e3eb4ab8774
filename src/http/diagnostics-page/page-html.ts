// The diagnostics page (docs/design.md §5.4, `GET /diagnostics`): one static document, no inline script or
// style, so it runs under `default-src 'self'`. Its script and stylesheet are served beside it.
export const PAGE_HTML = `<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="no-referrer">
<title>token-broker · assertion diagnostics</title>
<link rel="stylesheet" href="/diagnostics/app.css">
<script src="/diagnostics/app.js" defer></script>
</head>
<body>
<header class="top">
  <h1>Assertion diagnostics</h1>
  <p>Paste a client assertion or an identity provider's error and see, claim by claim, what the IdP will refuse and what to change.
  What you paste is checked by the broker and sent nowhere else; no token is ever shown.</p>
</header>
<main>
  <section class="card" aria-labelledby="key-label">
    <label id="key-label" for="api-key">Caller key</label>
    <input id="api-key" name="api-key" type="password" autocomplete="off" spellcheck="false" placeholder="API key of a caller with diagnostics: true">
    <p class="hint">Kept in this page's memory only, sent as <code>Authorization: Bearer</code>.</p>
  </section>

  <div class="tabs" role="tablist">
    <button type="button" role="tab" id="tab-assertion" aria-controls="assertion-form" aria-selected="true">Assertion</button>
    <button type="button" role="tab" id="tab-error" aria-controls="error-form" aria-selected="false">IdP error</button>
  </div>

  <form id="assertion-form" class="card" role="tabpanel" aria-labelledby="tab-assertion" novalidate>
    <label for="assertion">Client assertion (compact JWS)</label>
    <textarea id="assertion" name="assertion" rows="6" spellcheck="false" autocomplete="off" placeholder="eyJhbGciOi…"></textarea>
    <div class="grid">
      <div>
        <label for="token-endpoint">Token endpoint it is POSTed to <span class="opt">optional</span></label>
        <input id="token-endpoint" name="token_endpoint" type="url" spellcheck="false" autocomplete="off" placeholder="https://login.microsoftonline.com/{tenant}/oauth2/v2.0/token">
      </div>
      <div>
        <label for="provider">Identity provider <span class="opt">optional</span></label>
        <select id="provider" name="provider">
          <option value="">detect</option>
          <option value="entra">Entra ID</option>
          <option value="keycloak">Keycloak</option>
          <option value="okta">Okta</option>
          <option value="auth0">Auth0</option>
          <option value="generic">other OIDC</option>
        </select>
      </div>
      <div>
        <label for="client-id">Client id <span class="opt">optional</span></label>
        <input id="client-id" name="client_id" spellcheck="false" autocomplete="off">
      </div>
      <div>
        <label for="credential">Configured credential <span class="opt">optional, checks the signature</span></label>
        <input id="credential" name="credential" spellcheck="false" autocomplete="off" placeholder="e.g. powerbi">
      </div>
    </div>
    <button type="submit" id="check-assertion">Check assertion</button>
  </form>

  <form id="error-form" class="card" role="tabpanel" aria-labelledby="tab-error" hidden novalidate>
    <label for="error-text">Error text or JSON body from the IdP</label>
    <textarea id="error-text" name="error" rows="6" spellcheck="false" autocomplete="off" placeholder='{"error":"invalid_client","error_description":"AADSTS700023: …"}'></textarea>
    <button type="submit" id="explain-error">Explain error</button>
  </form>

  <p id="status" class="status" role="status" aria-live="polite"></p>
  <section id="result" aria-live="polite"></section>
</main>
</body>
</html>
`;
