// GraphiQL in a real browser, with every request to anywhere but the server refused: the
// page renders, the tour's operations run as written, a register mutation typed into the
// editor runs, `me` with the token typed into the headers editor answers the account, tabs
// and headers survive a reload, a subscription shows the change it is told of, TOTP
// enrolment draws its QR code and a login completes with a code, and no
// Content-Security-Policy violation or page error is reported. Screenshots go to artifacts/.
import assert from 'node:assert/strict';
import { mkdirSync, copyFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, test } from 'node:test';
import { fileURLToPath } from 'node:url';
import * as OTPAuth from 'otpauth';
import { chromium } from 'playwright-core';
import { post, startServer } from './server.mjs';

const HERE = path.dirname(fileURLToPath(import.meta.url));
const ARTIFACTS = path.join(HERE, 'artifacts');
// The visible one of the variables and headers editors: the playground opens on headers.
const HEADERS_EDITOR = '.graphiql-editor-tool .graphiql-editor:not(.hidden)';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await chromium.launch({
    executablePath: process.env.CHROMIUM ?? '/usr/bin/chromium',
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync'],
  });
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/// A page whose requests may reach the server only; what else it asked for, and the
/// console's Content-Security-Policy reports, are collected.
async function isolatedPage(context) {
  const page = await context.newPage();
  const elsewhere = [];
  const violations = [];
  await page.route('**/*', (route) => {
    const url = route.request().url();
    if (url.startsWith('data:') || new URL(url).origin === server.origin) return route.continue();
    elsewhere.push(url);
    return route.abort('blockedbyclient');
  });
  page.on('console', (message) => {
    if (/Content Security Policy/i.test(message.text())) violations.push(message.text());
  });
  page.on('pageerror', (error) => violations.push(`page error: ${error.message}`));
  return { page, elsewhere, violations };
}

/// Resolves once GraphiQL has rendered its editors; rejects if the page is still loading
/// after `timeout` ms.
async function playgroundReady(page, timeout = 20_000) {
  await page.waitForSelector('.graphiql-container .graphiql-query-editor .CodeMirror', { timeout });
  await page.waitForFunction(() => !document.body.innerText.includes('Loading'), null, { timeout });
}

function editorValue(page, selector) {
  return page.evaluate((s) => document.querySelector(s).CodeMirror.getValue(), selector);
}

/// Replaces what an editor holds by typing, as a person would.
async function typeInto(page, selector, text) {
  await page.click(`${selector} .CodeMirror-lines`);
  await page.keyboard.press('Control+A');
  await page.keyboard.press('Delete');
  await page.keyboard.type(text, { delay: 5 });
  // Typing `{` or `"` inserts its pair and typing the closer steps over it; whatever the
  // editor made of the keys, it must hold exactly this text now.
  assert.equal((await editorValue(page, `${selector} .CodeMirror`)).trim(), text);
}

/// Waits for the response editor to show an answer other than `previous`; returns it.
async function answer(page, previous) {
  await page.waitForFunction(
    (before) => {
      const value = document.querySelector('.graphiql-response .CodeMirror').CodeMirror.getValue();
      return value !== before && value.trim().startsWith('{');
    },
    previous,
    { timeout: 15_000 },
  );
  return JSON.parse(await editorValue(page, '.graphiql-response .CodeMirror'));
}

/// Runs the tab's only operation with the run button.
async function run(page) {
  // GraphiQL reads the editor's operations a moment after the last keystroke.
  await page.waitForTimeout(600);
  const before = await editorValue(page, '.graphiql-response .CodeMirror');
  await page.click('.graphiql-execute-button');
  return answer(page, before);
}

/// Runs the operation `name` of a tab that holds several: the run button asks which.
async function runNamed(page, name) {
  await page.waitForTimeout(600);
  const before = await editorValue(page, '.graphiql-response .CodeMirror');
  await page.click('.graphiql-execute-button');
  // Chosen with the keyboard: the run button's tooltip opens over the menu's first items.
  const item = page.locator('[role="menuitem"]', { hasText: new RegExp(`^${name}$`) });
  await item.focus();
  await page.keyboard.press('Enter');
  return answer(page, before);
}

test('GraphiQL renders from the server alone and runs the tour', async () => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const { page, elsewhere, violations } = await isolatedPage(context);
  const response = await page.goto(server.url);
  assert.equal(response.status(), 200);
  assert.match(response.headers()['content-security-policy'], /default-src 'none'/);
  await playgroundReady(page);

  // The tour opens the first tab; the headers editor is ready for a token.
  assert.match(await editorValue(page, '.graphiql-query-editor .CodeMirror'), /mutation Register/);
  assert.match(await editorValue(page, `${HEADERS_EDITOR} .CodeMirror`), /Authorization/);
  assert.equal(await page.locator('.graphiql-tab').count(), 4, 'the tour has its tabs');
  // The explorer and history plugins are in the sidebar.
  assert.ok(await page.locator('button[aria-label="Show GraphiQL Explorer"]').count() === 1);
  assert.ok(await page.locator('button[aria-label="Show History"]').count() === 1);

  // The tour's tab holds two operations: the run button asks which (a menu that writes an
  // inline style, allowed by the page's nonce).
  await page.click('.graphiql-execute-button');
  const menu = page.locator('[role="menu"]');
  await menu.waitFor();
  assert.match(await menu.innerText(), /Register[\s\S]*Login/);
  await page.keyboard.press('Escape');

  // The explorer builds queries by pointing and clicking; the tour, with it open, is the
  // README's picture.
  await page.click('button[aria-label="Show GraphiQL Explorer"]');
  await page.waitForSelector('.graphiql-explorer-root, .docExplorerWrap', { timeout: 10_000 });
  await page.evaluate(() => document.activeElement?.blur());
  mkdirSync(ARTIFACTS, { recursive: true });
  const tour = path.join(ARTIFACTS, 'tour.png');
  await page.screenshot({ path: tour });
  if (process.env.UPDATE_SCREENSHOT) copyFileSync(tour, path.join(HERE, '..', 'docs', 'playground.png'));
  await page.click('button[aria-label="Hide GraphiQL Explorer"]');

  // The tour as written: sign up in the first tab, then `me` in the second one sends the
  // new token by itself; the administrators' tab answers a plain account FORBIDDEN.
  const signedUp = await runNamed(page, 'Register');
  assert.equal(signedUp.data?.register?.user?.email, 'you@example.com', JSON.stringify(signedUp));
  await page.locator('.graphiql-tab').nth(1).click();
  const tourMe = await runNamed(page, 'Me');
  assert.equal(tourMe.data?.me?.email, 'you@example.com', JSON.stringify(tourMe));
  await page.locator('.graphiql-tab').nth(2).click();
  const users = await runNamed(page, 'Users');
  assert.equal(users.errors?.[0]?.extensions?.code, 'FORBIDDEN', JSON.stringify(users));

  // Typed by hand, in a new tab, with a token typed into the headers editor.
  await page.click('button[aria-label="New tab"]');
  const email = `browser-${server.backend}@example.com`;
  await typeInto(page, '.graphiql-query-editor',
    `mutation { register(input: { email: "${email}", password: "typed into GraphiQL by a browser" }) { accessToken user { id email } } }`);
  const registered = await run(page);
  assert.equal(registered.errors, undefined, JSON.stringify(registered));
  const token = registered.data.register.accessToken;
  assert.ok(token);

  await typeInto(page, HEADERS_EDITOR, `{ "Authorization": "Bearer ${token}" }`);
  await typeInto(page, '.graphiql-query-editor', '{ me { id email } }');
  const me = await run(page);
  assert.equal(me.data?.me?.email, email, JSON.stringify(me));

  await page.screenshot({ path: path.join(ARTIFACTS, 'me.png') });

  // Tabs and headers are kept across a reload.
  await page.reload();
  await playgroundReady(page);
  assert.match(await editorValue(page, '.graphiql-query-editor .CodeMirror'), /me \{ id email \}/);
  assert.match(await editorValue(page, `${HEADERS_EDITOR} .CodeMirror`), new RegExp(token.slice(-16)));

  // A subscription runs over WebSocket with the same token: the answer changes when the
  // account does, and the run button stops it.
  await typeInto(page, '.graphiql-query-editor', 'subscription { userUpdated { profile { displayName } } }');
  await page.waitForTimeout(600);
  const quiet = await editorValue(page, '.graphiql-response .CodeMirror');
  await page.click('.graphiql-execute-button');
  // graphql-ws does not acknowledge a subscription: give the server a moment to start it.
  await page.waitForTimeout(1000);
  const renamed = await post(server.url,
    'mutation { updateMyProfile(input: { displayName: "Pushed to the playground" }) { id } }', {}, token);
  assert.equal(renamed.errors, undefined, JSON.stringify(renamed));
  const pushed = await answer(page, quiet);
  assert.equal(pushed.data?.userUpdated?.profile?.displayName, 'Pushed to the playground',
    JSON.stringify(pushed));
  await page.click('.graphiql-execute-button');

  assert.deepEqual(elsewhere, [], 'requests that left the server');
  assert.deepEqual(violations, [], 'Content-Security-Policy reports and page errors');
  await context.close();
});

test('two-step verification from the playground: the QR code shown, a login with a code', async () => {
  const context = await browser.newContext({ viewport: { width: 1400, height: 900 } });
  const { page, elsewhere, violations } = await isolatedPage(context);
  await page.goto(server.url);
  await playgroundReady(page);
  const email = `totp-${server.backend}@example.com`;
  const password = 'typed into GraphiQL with a second factor';
  await page.click('button[aria-label="New tab"]');
  await typeInto(page, '.graphiql-query-editor',
    `mutation { register(input: { email: "${email}", password: "${password}" }) { accessToken } }`);
  const registered = await run(page);
  assert.equal(registered.errors, undefined, JSON.stringify(registered));

  // The tour's tab starts enrolment with the remembered token; the QR code is drawn.
  await page.locator('.graphiql-tab').nth(3).click();
  const started = await runNamed(page, 'StartTotp');
  assert.equal(started.errors, undefined, JSON.stringify(started));
  const qr = page.locator('#usergraph-qr');
  await qr.locator('svg').waitFor({ state: 'visible' });
  const box = await qr.locator('svg').boundingBox();
  assert.ok(box.width > 100 && box.height > 100, `a QR code an app can scan: ${JSON.stringify(box)}`);
  await page.screenshot({ path: path.join(ARTIFACTS, 'totp.png') });
  // The app: what the QR code says is the URI the answer holds.
  const secret = (await qr.locator('code').innerText()).trim();
  const totp = OTPAuth.URI.parse(started.data.startTotpEnrollment.otpauthUri);
  assert.equal(totp.secret.base32, secret);
  await qr.locator('button', { hasText: 'Close' }).click();
  assert.equal(await qr.count(), 0);

  await page.click('button[aria-label="New tab"]');
  await typeInto(page, '.graphiql-query-editor',
    `mutation { confirmTotpEnrollment(code: "${totp.generate()}") { codes } }`);
  const confirmed = await run(page);
  assert.equal(confirmed.data?.confirmTotpEnrollment?.codes?.length, 10, JSON.stringify(confirmed));

  // Log in again: the challenge, then the next code; `me` then runs with the new token.
  await typeInto(page, '.graphiql-query-editor',
    `mutation { login(input: { email: "${email}", password: "${password}" }) { accessToken } }`);
  const challenged = await run(page);
  assert.equal(challenged.errors?.[0]?.extensions?.code, 'MFA_REQUIRED', JSON.stringify(challenged));
  const challenge = challenged.errors[0].extensions.challenge;
  const code = totp.generate({ timestamp: Date.now() + 30_000 });
  await typeInto(page, '.graphiql-query-editor',
    `mutation { verifyMfa(challenge: "${challenge}", code: "${code}") { accessToken } }`);
  const verified = await run(page);
  assert.ok(verified.data?.verifyMfa?.accessToken, JSON.stringify(verified));
  await typeInto(page, '.graphiql-query-editor', '{ me { email mfaEnabled recoveryCodesLeft } }');
  const me = await run(page);
  assert.deepEqual(me.data?.me, { email, mfaEnabled: true, recoveryCodesLeft: 10 }, JSON.stringify(me));

  assert.deepEqual(elsewhere, [], 'requests that left the server');
  assert.deepEqual(violations, [], 'Content-Security-Policy reports and page errors');
  await context.close();
});

test('the check fails on a page that never finishes loading', async () => {
  const context = await browser.newContext();
  const { page } = await isolatedPage(context);
  await page.route('**/graphql/assets/graphiql.min.*.js', (route) => route.abort());
  await page.goto(server.url);
  await assert.rejects(playgroundReady(page, 3_000));
  assert.match(await page.innerText('body'), /Loading/);
  await context.close();
});
