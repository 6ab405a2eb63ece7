// Subscriptions with the real `graphql-ws` client (and, over it, Apollo Client's
// GraphQLWsLink and urql's subscriptionExchange), as a new user would meet them: an app
// open in two tabs, logged out everywhere from one, tells the other at once and its socket
// closes; an administrator watching `auditEvents` on one instance sees a login made on
// another; urql's `userUpdated` follows a profile change.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { ApolloClient, InMemoryCache, gql } from '@apollo/client/core/index.js';
import { GraphQLWsLink } from '@apollo/client/link/subscriptions/index.js';
import { Client, fetchExchange, subscriptionExchange } from '@urql/core';
import { createClient } from 'graphql-ws';
import WebSocket from 'ws';
import { ADMIN, post, startServer } from './server.mjs';

let server;
before(async () => {
  server = await startServer();
});
after(async () => {
  await server?.stop();
});

const PASSWORD = 'a subscriber passphrase long enough';
const REGISTER = `mutation Register($email: String!, $password: String!) {
  register(input: { email: $email, password: $password }) { user { id } } }`;
const LOGIN = `mutation Login($email: String!, $password: String!) {
  login(input: { email: $email, password: $password }) { accessToken } }`;

/// What "within a second" may stretch to on a machine busy with other work.
const SECOND_ON_A_BUSY_MACHINE = 2000;

async function login(url, email, password = PASSWORD) {
  const answer = await post(url, LOGIN, { email, password });
  assert.ok(answer.data, JSON.stringify(answer));
  return answer.data.login.accessToken;
}

/// A graphql-ws client of `instance` acting as `token`; `closed` resolves with the close
/// code, `connected` once acknowledged.
function subscriber(instance, token) {
  let onClosed;
  let onConnected;
  const closed = new Promise((resolve) => { onClosed = resolve; });
  const connected = new Promise((resolve) => { onConnected = resolve; });
  const client = createClient({
    url: instance.socket,
    webSocketImpl: WebSocket,
    connectionParams: { Authorization: `Bearer ${token}` },
    lazy: false,
    retryAttempts: 0,
    // The tests look at the close code through `closed`.
    onNonLazyError: () => {},
    on: { closed: (event) => onClosed(event), connected: () => onConnected() },
  });
  return { client, closed, connected };
}

/// `promise`, or a failure naming `what` after `ms`.
function within(ms, what, promise) {
  let timer;
  const late = new Promise((_, reject) => {
    timer = setTimeout(() => reject(new Error(`${what}: nothing within ${ms} ms`)), ms);
  });
  return Promise.race([promise, late]).finally(() => clearTimeout(timer));
}

/// graphql-ws does not acknowledge a subscription: give the server a moment to start it.
const settle = () => new Promise((r) => setTimeout(r, 500));

describe('graphql-ws', () => {
  test('two tabs: logging out everywhere in one tells the other, whose socket closes', async () => {
    const email = `tabs-${server.backend}@example.com`;
    const registered = await post(server.url, REGISTER, { email, password: PASSWORD });
    assert.ok(registered.data, JSON.stringify(registered));
    const tabA = await login(server.url, email);
    const tabB = await login(server.url, email);

    const a = subscriber(server, tabA);
    await within(5000, 'connection_ack', a.connected);
    const revocations = a.client.iterate({ query: 'subscription { sessionRevoked { id current } }' });
    const first = revocations.next();
    await settle();

    const started = Date.now();
    const answer = await post(server.url, 'mutation { logoutAll }', {}, tabB);
    assert.equal(answer.data?.logoutAll, true, JSON.stringify(answer));
    let result = await within(5000, 'sessionRevoked', first);
    while (!result.done && !result.value.data.sessionRevoked.current) {
      result = await within(5000, 'sessionRevoked', revocations.next());
    }
    assert.equal(result.done, false, 'the own session was reported');
    assert.equal(result.value.data.sessionRevoked.current, true);
    const told = Date.now() - started;
    assert.ok(told < SECOND_ON_A_BUSY_MACHINE, `told after ${told} ms`);
    // Its last message: the subscription completes and the server closes the socket.
    assert.equal((await within(5000, 'complete', revocations.next())).done, true);
    const close = await within(5000, 'close', a.closed);
    assert.equal(close.code, 4403, close.reason);
    await a.client.dispose();
  });

  test('a connection without a valid token is refused', async () => {
    const refused = subscriber(server, 'not-a-token');
    const close = await within(5000, 'close', refused.closed);
    assert.equal(close.code, 4403, close.reason);
    await refused.client.dispose();
  });
});

describe('Apollo Client over GraphQLWsLink', () => {
  test('an administrator watching auditEvents on B sees a login on A', async () => {
    const b = await server.twin();
    const admin = await login(server.url, ADMIN.email, ADMIN.password);
    const watcher = subscriber(b, admin);
    const apollo = new ApolloClient({ cache: new InMemoryCache(), link: new GraphQLWsLink(watcher.client) });
    const seen = [];
    let onLogin;
    const loginSeen = new Promise((resolve) => { onLogin = resolve; });
    const subscription = apollo
      .subscribe({
        query: gql`subscription Watch {
          auditEvents(filter: { action: "user.login" }) { id action actor { id } }
        }`,
      })
      .subscribe({
        next: ({ data }) => {
          seen.push(data.auditEvents);
          onLogin(Date.now());
        },
        error: (error) => onLogin(error),
      });
    await within(5000, 'connection_ack', watcher.connected);
    await settle();

    const email = `watched-${server.backend}@example.com`;
    const registered = await post(server.url, REGISTER, { email, password: PASSWORD });
    const userId = registered.data.register.user.id;
    const started = Date.now();
    await login(server.url, email);
    const at = await within(5000, 'the login on B', loginSeen);
    assert.equal(typeof at, 'number', String(at));
    assert.ok(at - started < SECOND_ON_A_BUSY_MACHINE, `seen after ${at - started} ms`);
    assert.equal(seen[0].action, 'user.login');
    assert.equal(seen[0].actor.id, userId);
    subscription.unsubscribe();
    await watcher.client.dispose();
  });
});

describe('urql over subscriptionExchange', () => {
  test('userUpdated follows a change of the profile', async () => {
    const email = `urql-live-${server.backend}@example.com`;
    const registered = await post(server.url, REGISTER, { email, password: PASSWORD });
    assert.ok(registered.data, JSON.stringify(registered));
    const token = await login(server.url, email);
    const socket = subscriber(server, token);
    const urql = new Client({
      url: server.url,
      exchanges: [
        fetchExchange,
        subscriptionExchange({
          forwardSubscription: (request) => ({
            subscribe: (sink) => ({
              unsubscribe: socket.client.subscribe({ ...request, query: request.query ?? '' }, sink),
            }),
          }),
        }),
      ],
    });
    let onUpdate;
    const updated = new Promise((resolve) => { onUpdate = resolve; });
    const { unsubscribe } = urql
      .subscription('subscription { userUpdated { profile { displayName } } }', {})
      .subscribe((result) => onUpdate(result));
    await within(5000, 'connection_ack', socket.connected);
    await settle();

    const renamed = await post(server.url,
      'mutation { updateMyProfile(input: { displayName: "Seen by urql" }) { id } }', {}, token);
    assert.equal(renamed.errors, undefined, JSON.stringify(renamed));
    const result = await within(5000, 'userUpdated', updated);
    assert.equal(result.error, undefined, String(result.error));
    assert.equal(result.data.userUpdated.profile.displayName, 'Seen by urql');
    unsubscribe();
    await socket.client.dispose();
  });
});
