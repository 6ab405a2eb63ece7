// Two-step verification as a new user meets it, with a real TOTP library (npm `otpauth`,
// what authenticator apps implement) reading the otpauth:// URI the server gives: enrol, log
// out, log in with password and code, use a recovery code once (and fail the second time),
// be asked to re-authenticate before changing the password, and have an administrator reset
// a lost device.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as OTPAuth from 'otpauth';
import { ADMIN, post, startServer } from './server.mjs';

// A short window, so the test can outlive it without waiting ten minutes.
const WINDOW_SECONDS = 3;
process.env.USERGRAPH_REAUTHENTICATION_WINDOW = `${WINDOW_SECONDS}s`;

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const EMAIL = 'totp-user@e2e.example';
const PASSWORD = 'a second factor makes this safer';
const LOGIN = `mutation Login($email: String!, $password: String!) {
  login(input: { email: $email, password: $password }) { accessToken refreshToken } }`;
const VERIFY = `mutation Verify($challenge: String!, $code: String!) {
  verifyMfa(challenge: $challenge, code: $code) { accessToken refreshToken user { id mfaEnabled } } }`;

/// Logs in with the password: the challenge of MFA_REQUIRED.
async function challenge() {
  const answer = await post(server.url, LOGIN, { email: EMAIL, password: PASSWORD });
  assert.equal(answer.errors?.[0]?.extensions?.code, 'MFA_REQUIRED', JSON.stringify(answer));
  assert.equal(answer.data, null);
  return answer.errors[0].extensions.challenge;
}

test('enrol, log in with a code and with a recovery code, step up, reset by an admin', async () => {
  const registered = await post(server.url, `mutation($email: String!, $password: String!) {
    register(input: { email: $email, password: $password }) { accessToken refreshToken user { id } } }`,
  { email: EMAIL, password: PASSWORD });
  const { accessToken, refreshToken, user } = registered.data.register;

  const started = await post(server.url,
    'mutation { startTotpEnrollment { secret otpauthUri qrCodeSvg } }', {}, accessToken);
  const { otpauthUri, qrCodeSvg, secret } = started.data.startTotpEnrollment;
  assert.match(qrCodeSvg, /^<svg/);
  // What an app does with the QR code: read the URI.
  const totp = OTPAuth.URI.parse(otpauthUri);
  assert.equal(totp.issuer, 'usergraph');
  assert.equal(totp.label, EMAIL);
  assert.equal(totp.secret.base32, secret);
  assert.equal(totp.digits, 6);
  assert.equal(totp.period, 30);
  const confirmed = await post(server.url,
    'mutation($code: String!) { confirmTotpEnrollment(code: $code) { codes } }',
    { code: totp.generate() }, accessToken);
  const recovery = confirmed.data.confirmTotpEnrollment.codes;
  assert.equal(recovery.length, 10);

  await post(server.url, 'mutation($t: String!) { logout(refreshToken: $t) }', { t: refreshToken });

  // Password, then a code of the next step (the current one was spent confirming).
  const first = await challenge();
  const nextCode = totp.generate({ timestamp: Date.now() + 30_000 });
  const verified = await post(server.url, VERIFY, { challenge: first, code: nextCode });
  assert.ok(verified.data, JSON.stringify(verified));
  assert.equal(verified.data.verifyMfa.user.mfaEnabled, true);
  const claims = JSON.parse(Buffer.from(verified.data.verifyMfa.accessToken.split('.')[1], 'base64url'));
  assert.deepEqual(claims.amr, ['pwd', 'otp']);
  assert.equal(claims.acr, 'aal2');

  // A recovery code works once.
  const withRecovery = await post(server.url, VERIFY, { challenge: await challenge(), code: recovery[0] });
  assert.ok(withRecovery.data, JSON.stringify(withRecovery));
  const token = withRecovery.data.verifyMfa.accessToken;
  const again = await post(server.url, VERIFY, { challenge: await challenge(), code: recovery[0] });
  assert.equal(again.errors?.[0]?.extensions?.code, 'UNAUTHENTICATED', JSON.stringify(again));

  // Past the window, changing the password asks for the password and a code again.
  await new Promise((r) => setTimeout(r, (WINDOW_SECONDS + 0.5) * 1000));
  const change = `mutation($old: String!, $new: String!) {
    changePassword(input: { currentPassword: $old, newPassword: $new }) }`;
  const newPassword = 'shorter is fine now';
  const refused = await post(server.url, change, { old: PASSWORD, new: newPassword }, token);
  assert.equal(refused.errors?.[0]?.extensions?.code, 'REAUTHENTICATION_REQUIRED');
  assert.deepEqual(refused.errors[0].extensions.factors, ['password', 'totp']);
  const stepUp = await post(server.url,
    'mutation($p: String!, $c: String) { reauthenticate(password: $p, code: $c) }',
    { p: PASSWORD, c: recovery[1] }, token);
  assert.equal(stepUp.data?.reauthenticate, true, JSON.stringify(stepUp));
  const changed = await post(server.url, change, { old: PASSWORD, new: newPassword }, token);
  assert.equal(changed.data?.changePassword, true, JSON.stringify(changed));

  // The device is lost: an administrator resets it, the password alone signs in again.
  const admin = await post(server.url, LOGIN, ADMIN);
  const reset = await post(server.url, 'mutation($id: ID!) { resetUserMfa(id: $id) { mfaEnabled } }',
    { id: user.id }, admin.data.login.accessToken);
  assert.equal(reset.data?.resetUserMfa?.mfaEnabled, false, JSON.stringify(reset));
  const plain = await post(server.url, LOGIN, { email: EMAIL, password: newPassword });
  assert.ok(plain.data?.login?.accessToken, JSON.stringify(plain));
});
