// The /diagnostics page in a real headless Chromium (Debian `chromium`, driven by playwright-core):
// paste the forum-thread assertion, see the aud finding; explain an error; a 360 px window; no CSP
// violation; a screenshot kept in test-artifacts/. CI installs chromium: without it this fails.
import { after, before, test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, mkdirSync } from 'node:fs';
import { createPrivateKey, randomUUID, sign } from 'node:crypto';
import { join } from 'node:path';
import { chromium, type Browser, type Page } from 'playwright-core';
import { sha256Hex, tempDir, writeCredentialFiles, type CredentialFiles, type TempDir } from '../helpers/credential-files.ts';
import { startTestBroker, type TestBroker } from '../helpers/test-broker.ts';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
const ARTIFACTS = join(import.meta.dirname, '..', '..', 'test-artifacts');
const TENANT = '72f988bf-86f1-41af-91ab-2d7cd011db47';
const CLIENT = '3f1e2d4c-5b6a-4789-9abc-def012345678';
const KEY = `engineer-${randomUUID()}`;

let dir: TempDir;
let cert: CredentialFiles;
let tb: TestBroker;
let browser: Browser;
const consoleProblems: string[] = [];

function forumAssertion(): string {
  const now = Math.floor(Date.now() / 1000);
  const b = (v: unknown) => Buffer.from(JSON.stringify(v)).toString('base64url');
  const input = `${b({ typ: 'JWT', alg: 'RS256', x5t: 'SSL_FINGERPRINT', kid: 'SSL_FINGERPRINT' })}.${b({ iss: CLIENT, sub: CLIENT, aud: `https://login.microsoftonline.com/${TENANT}`, jti: 'UNIQUE TOKEN', iat: now, nbf: now + 60, exp: now + 3600 })}`;
  return `${input}.${sign('sha256', Buffer.from(input), createPrivateKey(cert.cert.keyPem)).toString('base64url')}`;
}

async function openPage(width: number): Promise<Page> {
  const page = await browser.newPage({ viewport: { width, height: 900 } });
  // CSP violations are reported on the console ("Refused to …"); failed fetches (the 401 below) are not problems.
  page.on('console', (m) => {
    if (m.type() === 'error' && !/^Failed to load resource/.test(m.text())) consoleProblems.push(m.text());
  });
  page.on('pageerror', (e) => consoleProblems.push(`pageerror: ${e.message}`));
  const res = await page.goto(`${tb.url}/diagnostics`);
  assert.equal(res?.status(), 200);
  return page;
}

before(async () => {
  // Fail, do not skip: CI installs Debian's chromium and this page must be tested in a real browser.
  assert.ok(existsSync(CHROMIUM), `${CHROMIUM} not found: install Debian's chromium package (apt-get install chromium) to run the diagnostics page test`);
  dir = tempDir();
  cert = await writeCredentialFiles(dir, 'page');
  tb = await startTestBroker(
    {
      credentials: [{ id: 'cdr', provider: 'oidc', clientId: 'cdr', tokenEndpoint: 'https://idp.example.org/token', certificate: { certFile: cert.certFile, keyFile: cert.keyFile } }],
      callers: [{ id: 'engineers', apiKeySha256: sha256Hex(KEY), diagnostics: true }],
    },
    dir.path,
    { logLevel: 'warn' },
  );
  browser = await chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
  mkdirSync(ARTIFACTS, { recursive: true });
});

after(async () => {
  await browser?.close();
  await tb?.close();
  dir?.remove();
});

test('the page, its script and stylesheet come from this origin under a strict CSP, without authentication', async () => {
  for (const path of ['/diagnostics', '/diagnostics/app.js', '/diagnostics/app.css']) {
    const res = await fetch(`${tb.url}${path}`);
    assert.equal(res.status, 200, path);
    const csp = res.headers.get('content-security-policy') ?? '';
    assert.match(csp, /default-src 'self'/);
    assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
  }
  const html = await (await fetch(`${tb.url}/diagnostics`)).text();
  assert.doesNotMatch(html, /<script>|<style|\sstyle="|\son[a-z]+="/i, 'no inline script, style or event handler');
  assert.doesNotMatch(html, /https?:\/\/(?!login\.microsoftonline\.com\/\{tenant\})/, 'no external asset');
});

test('paste the forum-thread assertion and a token endpoint, click, see the aud finding with AADSTS700023', async () => {
  const page = await openPage(1100);
  await page.fill('#api-key', KEY);
  await page.fill('#assertion', forumAssertion());
  await page.fill('#token-endpoint', `https://login.windows.net/${TENANT}/oauth2/token`);
  await page.click('#check-assertion');
  const aud = page.locator('[data-finding-id="aud.issuer_only"]');
  await aud.waitFor({ timeout: 10_000 });
  const text = await aud.innerText();
  assert.match(text, /AADSTS700023/);
  assert.match(text, new RegExp(`https://login\\.windows\\.net/${TENANT}/oauth2/token`));
  assert.match(await page.locator('#verdict').innerText(), /will fail/i);
  assert.ok((await page.locator('[data-finding-id="nbf.after_iat"]').count()) === 1);
  // The key lives in the page only: nothing in storage.
  assert.equal(await page.evaluate(() => localStorage.length + sessionStorage.length), 0);
  await page.close();
});

test('at 360 px: usable, no horizontal scrolling, screenshot kept', async () => {
  const page = await openPage(360);
  await page.fill('#api-key', KEY);
  await page.fill('#assertion', forumAssertion());
  await page.fill('#token-endpoint', `https://login.windows.net/${TENANT}/oauth2/token`);
  await page.click('#check-assertion');
  await page.locator('[data-finding-id="aud.issuer_only"]').waitFor({ timeout: 10_000 });
  const { scrollWidth, clientWidth } = await page.evaluate(() => ({ scrollWidth: document.documentElement.scrollWidth, clientWidth: document.documentElement.clientWidth }));
  assert.ok(scrollWidth <= clientWidth, `page is ${scrollWidth}px wide in a ${clientWidth}px window`);
  const button = await page.locator('#check-assertion').boundingBox();
  assert.ok(button && button.x >= 0 && button.x + button.width <= 360, 'the button fits the window');
  await page.screenshot({ path: join(ARTIFACTS, 'diagnostics-page.png'), fullPage: true });
  assert.ok(existsSync(join(ARTIFACTS, 'diagnostics-page.png')));
  await page.close();
});

test('explain an error; a wrong key is reported on the page', async () => {
  const page = await openPage(800);
  await page.fill('#api-key', 'wrong-key');
  await page.click('#tab-error');
  await page.fill('#error-text', '{"error":"invalid_client","error_description":"AADSTS700027: Client assertion contains an invalid signature. [Reason - The key was not found.]","error_codes":[700027]}');
  await page.click('#explain-error');
  await page.locator('#status.failed').waitFor({ timeout: 10_000 });
  assert.match(await page.locator('#status').innerText(), /valid caller credential/);
  await page.fill('#api-key', KEY);
  await page.click('#explain-error');
  await page.locator('[data-code="AADSTS700027"]').waitFor({ timeout: 10_000 });
  assert.match(await page.locator('[data-code="AADSTS700027"]').innerText(), /upload the public certificate/);
  await page.close();
});

test('no CSP violation or script error in any page', () => {
  assert.deepEqual(consoleProblems, []);
});
