// A person signing in, in a real headless Chromium (Debian `chromium`, driven by playwright-core), on
// oidc-provider's dev interaction pages (test/helpers/delegated-idp.ts): the login form, the consent
// "Continue", and the device flow's code entry and confirmation (RFC 8628 §3.3). CI installs
// chromium: without it these helpers fail, they never skip.
import { existsSync } from 'node:fs';
import { chromium, type Browser, type Page } from 'playwright-core';

const CHROMIUM = '/usr/bin/chromium';
const ARGS = ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync'];
/** A cap per page step, not an expectation: every step is a loopback round trip. */
const STEP_TIMEOUT = 30_000;
/** Login, consent, and a few redirects between them; more means the pages loop. */
const MAX_STEPS = 10;

// What oidc-provider's dev interaction views render (lib/views/login.js, interaction.js, layout.js)
// and its device flow pages (lib/helpers/defaults.js, user_code_form.js).
const LOGIN_FORM = 'form:has(input[name="prompt"][value="login"])';
const CONSENT_FORM = 'form:has(input[name="prompt"][value="consent"])';
const CANCEL_LINK = '.login-help a[href*="/abort"]';
const DEVICE_INPUT_FORM = 'form[id="op.deviceInputForm"]';
const DEVICE_CONFIRM_FORM = 'form[id="op.deviceConfirmForm"]';

interface SignInResult {
  url: string;
  status: number;
  text: string;
}

interface DeviceVerification {
  verification_uri: string;
  verification_uri_complete?: string;
  user_code: string;
}

export async function launchBrowser(): Promise<Browser> {
  // Fail, do not skip: the sign-in must be tested in a real browser, as in diagnostics-page.test.ts.
  if (!existsSync(CHROMIUM)) {
    throw new Error(`${CHROMIUM} not found: install Debian's chromium package (apt-get install chromium) to run the delegated sign-in tests`);
  }
  return chromium.launch({ executablePath: CHROMIUM, args: ARGS, headless: true });
}

/** A fresh context per sign-in (no IdP session or cookie carried over), closed afterwards. */
async function withPage<T>(browser: Browser, run: (page: Page, last: () => number) => Promise<T>): Promise<T> {
  const context = await browser.newContext();
  context.setDefaultTimeout(STEP_TIMEOUT);
  context.setDefaultNavigationTimeout(STEP_TIMEOUT);
  // The dev pages @import Google Fonts: keep every test on loopback, with or without a network.
  await context.route(
    (url) => !['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname),
    (route) => route.abort('blockedbyclient'),
  );
  try {
    const page = await context.newPage();
    // The status of the document now shown: redirects in between (3xx) are not it.
    let status = 0;
    page.on('response', (response) => {
      if (response.request().isNavigationRequest() && response.frame() === page.mainFrame() && (response.status() < 300 || response.status() >= 400)) {
        status = response.status();
      }
    });
    return await run(page, () => status);
  } finally {
    await context.close();
  }
}

/** Runs an action that submits a form or follows a link, and waits for the next document to load. */
async function navigateBy(page: Page, action: () => Promise<unknown>): Promise<void> {
  await Promise.all([page.waitForEvent('framenavigated', { predicate: (frame) => frame === page.mainFrame() }), action()]);
  await page.waitForLoadState('load');
}

async function present(page: Page, selector: string): Promise<boolean> {
  return (await page.locator(selector).count()) > 0;
}

async function result(page: Page, status: number): Promise<SignInResult> {
  await page.waitForLoadState('load');
  return { url: page.url(), status, text: await page.evaluate(() => document.body?.innerText ?? '') };
}

/** Fills the dev login form (any login and password are accepted) or presses the consent "Continue". */
async function interact(page: Page, login: string): Promise<boolean> {
  if (await present(page, LOGIN_FORM)) {
    const form = page.locator(LOGIN_FORM);
    await form.locator('input[name="login"]').fill(login);
    await form.locator('input[name="password"]').fill('any-password');
    await navigateBy(page, () => form.locator('button[type="submit"]').click());
    return true;
  }
  if (await present(page, CONSENT_FORM)) {
    await navigateBy(page, () => page.locator(CONSENT_FORM).locator('button[type="submit"]').click());
    return true;
  }
  return false;
}

/** Opens the URL in a fresh context (no cookies shared between calls) and signs in as `login` on
 *  oidc-provider's dev interaction pages (login form, then consent), following redirects until the
 *  page is no longer on the IdP's origin. Returns the final page's URL, HTTP status of the last
 *  navigation and its visible text (document.body.innerText). */
export async function signInInBrowser(browser: Browser, url: string, login: string, idpIssuer: string): Promise<{ url: string; status: number; text: string }> {
  const idpOrigin = new URL(idpIssuer).origin;
  return withPage(browser, async (page, status) => {
    await page.goto(url);
    for (let step = 0; step < MAX_STEPS; step += 1) {
      if (new URL(page.url()).origin !== idpOrigin) return result(page, status());
      // Neither form: an IdP error page (e.g. a redirect_uri it does not know), which is the test's to judge.
      if (!(await interact(page, login))) return result(page, status());
    }
    throw new Error(`sign-in did not leave ${idpOrigin} after ${MAX_STEPS} pages; last: ${page.url()}`);
  });
}

/** Opens the URL and, on the IdP's login page, aborts (the dev interactions' cancel/abort link),
 *  so the IdP redirects back with error=access_denied. Same return shape. */
export async function abortSignInInBrowser(browser: Browser, url: string, idpIssuer: string): Promise<{ url: string; status: number; text: string }> {
  const idpOrigin = new URL(idpIssuer).origin;
  return withPage(browser, async (page, status) => {
    await page.goto(url);
    if (new URL(page.url()).origin === idpOrigin && (await present(page, CANCEL_LINK))) {
      // lib/actions/interaction.js: abort finishes the interaction with access_denied, and the
      // authorization endpoint sends it to the redirect_uri (RFC 6749 §4.1.2.1).
      await navigateBy(page, () => page.locator(CANCEL_LINK).click());
    }
    return result(page, status());
  });
}

/** Gets to the device confirmation page: the complete URI auto-posts the code (a form_post page),
 *  the plain one gets it typed in (RFC 8628 §3.3). False when the IdP refused the code instead. */
async function openDeviceConfirmation(page: Page, verification: DeviceVerification): Promise<boolean> {
  if (verification.verification_uri_complete) {
    // The first document only submits itself on DOMContentLoaded: wait for what it leads to.
    await page.goto(verification.verification_uri_complete, { waitUntil: 'commit' });
  } else {
    await page.goto(verification.verification_uri);
    await page.locator(`${DEVICE_INPUT_FORM} input[name="user_code"]`).fill(verification.user_code);
    // The Continue button sits outside the form (form="op.deviceInputForm").
    await navigateBy(page, () => page.locator('button[form="op.deviceInputForm"][type="submit"]').click());
  }
  // Attached, not visible: these forms hold hidden inputs only (their buttons sit outside).
  await page.locator(`${DEVICE_CONFIRM_FORM}, ${DEVICE_INPUT_FORM}`).first().waitFor({ state: 'attached' });
  await page.waitForLoadState('load');
  return present(page, DEVICE_CONFIRM_FORM);
}

/** Device flow (RFC 8628 §3.3): opens verification_uri, types user_code (or opens
 *  verification_uri_complete when given), confirms, signs in as `login`, consents. Returns the
 *  IdP's final page text (its "sign-in complete" page). */
export async function completeDeviceSignIn(
  browser: Browser,
  verification: { verification_uri: string; verification_uri_complete?: string; user_code: string },
  login: string,
): Promise<{ text: string }> {
  return withPage(browser, async (page, status) => {
    // A refused code (unknown, expired, already used) leaves the input page with its message: return it.
    if (!(await openDeviceConfirmation(page, verification))) return { text: (await result(page, status())).text };
    await navigateBy(page, () => page.locator(`button[form="op.deviceConfirmForm"]:not([name="abort"])`).click());
    for (let step = 0; step < MAX_STEPS; step += 1) {
      // The flow ends on the IdP itself: its success page (or an error page) has neither form.
      if (!(await interact(page, login))) return { text: (await result(page, status())).text };
    }
    throw new Error(`device sign-in did not finish after ${MAX_STEPS} pages; last: ${page.url()}`);
  });
}

/** Same, but declines on the device confirmation page (or aborts at login) → the device code is denied. */
export async function denyDeviceSignIn(
  browser: Browser,
  verification: { verification_uri: string; verification_uri_complete?: string; user_code: string },
): Promise<void> {
  await withPage(browser, async (page, status) => {
    if (!(await openDeviceConfirmation(page, verification))) {
      throw new Error(`no device confirmation page for user code ${verification.user_code}: ${(await result(page, status())).text}`);
    }
    // lib/actions/code_verification.js: abort marks the device code access_denied, which the next
    // token poll returns (RFC 8628 §3.5).
    await navigateBy(page, () => page.locator(`button[form="op.deviceConfirmForm"][name="abort"]`).click());
  });
}
