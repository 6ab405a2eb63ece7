// Real GraphQL clients against a real server: Apollo Client (normalized cache: every object
// type with an `id` is stored once, by `__typename:id`) and urql each register, log in, ask
// for `me`, page through `users` as an administrator, run a mutation, and read the
// `extensions.code` of what a bad token and bad input get; and both upload an avatar as
// the GraphQL multipart request spec has it (apollo-upload-client, urql's own fetch); and
// both send queries by hash with their persisted-query links (automatic persisted queries).
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import { after, before, describe, test } from 'node:test';
import { ApolloClient, ApolloLink, HttpLink, InMemoryCache, gql } from '@apollo/client/core/index.js';
import { Client, fetchExchange, gql as ugql } from '@urql/core';
import { createPersistedQueryLink } from '@apollo/client/link/persisted-queries/index.js';
import { persistedExchange } from '@urql/exchange-persisted';
import createUploadLink from 'apollo-upload-client/createUploadLink.mjs';
import { ADMIN, startServer } from './server.mjs';

const PASSWORD = 'a client passphrase long enough';

const REGISTER = `mutation Register($email: String!, $password: String!) {
  register(input: { email: $email, password: $password }) { accessToken refreshToken user { id email } } }`;
const LOGIN = `mutation Login($email: String!, $password: String!) {
  login(input: { email: $email, password: $password }) { accessToken user { id } } }`;
const ME = 'query Me { me { id email profile { displayName } roles { id name } } }';
const USERS = `query Users($after: String) {
  users(first: 2, after: $after) { totalCount nodes { id email } pageInfo { hasNextPage endCursor } } }`;
const UPDATE = `mutation Update($name: String!) {
  updateMyProfile(input: { displayName: $name }) { id profile { displayName } } }`;

let server;
before(async () => { server = await startServer(); });
after(async () => { await server?.stop(); });

/// The steps both clients take; `client` runs one operation and answers `{ data, code }`.
async function journey(name, client) {
  const email = `${name}-${server.backend}@example.com`;
  const registered = await client.mutate(REGISTER, { email, password: PASSWORD });
  assert.equal(registered.data.register.user.email, email);
  const login = await client.mutate(LOGIN, { email, password: PASSWORD });
  const token = login.data.login.accessToken;
  assert.equal(login.data.login.user.id, registered.data.register.user.id);

  const me = await client.query(ME, {}, token);
  assert.equal(me.data.me.email, email);

  const admin = (await client.mutate(LOGIN, ADMIN)).data.login.accessToken;
  const seen = [];
  let after = null;
  for (let page = 0; page < 10; page++) {
    const answer = await client.query(USERS, { after }, admin);
    seen.push(...answer.data.users.nodes.map((n) => n.email));
    if (!answer.data.users.pageInfo.hasNextPage) break;
    after = answer.data.users.pageInfo.endCursor;
  }
  assert.ok(seen.includes(email) && seen.includes(ADMIN.email), seen.join(', '));
  assert.equal(new Set(seen).size, seen.length, 'pages do not overlap');

  const updated = await client.mutate(UPDATE, { name: `${name} user` }, token);
  assert.equal(updated.data.updateMyProfile.profile.displayName, `${name} user`);

  assert.equal((await client.query(ME, {}, 'not-a-token')).code, 'UNAUTHENTICATED');
  const weak = await client.mutate(REGISTER, { email: `weak-${email}`, password: 'short' });
  assert.equal(weak.code, 'BAD_USER_INPUT');
  return { token, userId: registered.data.register.user.id, roles: me.data.me.roles };
}

describe('Apollo Client', () => {
  test('register, login, me, users pages, a mutation, and error codes', async () => {
    const cache = new InMemoryCache();
    const auth = (token) => new ApolloLink((operation, forward) => {
      if (token) operation.setContext({ headers: { authorization: `Bearer ${token}` } });
      return forward(operation);
    });
    const http = new HttpLink({ uri: server.url, fetch });
    const run = async (kind, text, variables, token) => {
      const apollo = new ApolloClient({ cache, link: auth(token).concat(http) });
      try {
        const { data } = kind === 'query'
          ? await apollo.query({ query: gql(text), variables, fetchPolicy: 'network-only' })
          : await apollo.mutate({ mutation: gql(text), variables });
        return { data };
      } catch (error) {
        return { code: error.graphQLErrors?.[0]?.extensions?.code, error };
      }
    };
    const client = {
      query: (text, variables, token) => run('query', text, variables, token),
      mutate: (text, variables, token) => run('mutate', text, variables, token),
    };
    const { userId, roles } = await journey('apollo', client);
    // The normalized cache holds the account once, with what `me` and the update brought.
    const stored = cache.extract()[`User:${userId}`];
    assert.ok(stored, Object.keys(cache.extract()).join(', '));
    assert.equal(stored.email, `apollo-${server.backend}@example.com`);
    assert.ok(roles.length > 0, 'a new account has the default role');
    for (const role of roles) assert.equal(cache.extract()[`Role:${role.id}`]?.name, role.name);
  });
});

describe('urql', () => {
  test('register, login, me, users pages, a mutation, and error codes', async () => {
    const run = async (kind, text, variables, token) => {
      const urql = new Client({
        url: server.url,
        exchanges: [fetchExchange],
        fetchOptions: () => (token ? { headers: { authorization: `Bearer ${token}` } } : {}),
        requestPolicy: 'network-only',
      });
      const result = kind === 'query'
        ? await urql.query(ugql(text), variables).toPromise()
        : await urql.mutation(ugql(text), variables).toPromise();
      if (result.error) return { code: result.error.graphQLErrors?.[0]?.extensions?.code, error: result.error };
      return { data: result.data };
    };
    await journey('urql', {
      query: (text, variables, token) => run('query', text, variables, token),
      mutate: (text, variables, token) => run('mutate', text, variables, token),
    });
  });
});

// A 1×1 PNG.
const PNG = Buffer.from(
  'iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNkYPhfDwAChwGA60e6kgAAAABJRU5ErkJggg==',
  'base64',
);
const UPLOAD = 'mutation Upload($file: Upload!) { uploadAvatar(file: $file) { id profile { avatarUrl } } }';

/// Registers `email` and returns its access token.
async function tokenFor(email) {
  const response = await fetch(server.url, {
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body: JSON.stringify({ query: REGISTER, variables: { email, password: PASSWORD } }),
  });
  return (await response.json()).data.register.accessToken;
}

/// Fetches what `avatarUrl` names and checks it is a 256 px square PNG.
async function assertServed(avatarUrl) {
  assert.match(avatarUrl, /^\/uploads\/[0-9a-f-]{36}-256\.png$/);
  const response = await fetch(new URL(avatarUrl, server.url));
  assert.equal(response.status, 200);
  assert.equal(response.headers.get('content-type'), 'image/png');
  const bytes = Buffer.from(await response.arrayBuffer());
  assert.equal(bytes.readUInt32BE(16), 256, 'width');
  assert.equal(bytes.readUInt32BE(20), 256, 'height');
}

describe('uploads', () => {
  test('apollo-upload-client uploads an avatar', async () => {
    const token = await tokenFor(`upload-apollo-${server.backend}@example.com`);
    const apollo = new ApolloClient({
      cache: new InMemoryCache(),
      link: createUploadLink({ uri: server.url, fetch, headers: { authorization: `Bearer ${token}` } }),
    });
    const file = new File([PNG], 'me.png', { type: 'image/png' });
    const { data } = await apollo.mutate({ mutation: gql(UPLOAD), variables: { file } });
    await assertServed(data.uploadAvatar.profile.avatarUrl);
  });

  test('urql uploads an avatar', async () => {
    const token = await tokenFor(`upload-urql-${server.backend}@example.com`);
    const urql = new Client({
      url: server.url,
      exchanges: [fetchExchange],
      fetchOptions: { headers: { authorization: `Bearer ${token}` } },
    });
    const file = new File([PNG], 'me.png', { type: 'image/png' });
    const result = await urql.mutation(ugql(UPLOAD), { file }).toPromise();
    assert.equal(result.error, undefined, String(result.error));
    await assertServed(result.data.uploadAvatar.profile.avatarUrl);
  });
});

const sha256 = (text) => createHash('sha256').update(text).digest('hex');

/// A `fetch` that notes what each request sent: its method and whether the text went too.
function recordingFetch(sent) {
  return (url, init = {}) => {
    const method = init.method ?? 'GET';
    const carried = method === 'GET'
      ? new URL(String(url)).searchParams.has('query')
      : 'query' in JSON.parse(init.body);
    sent.push({ method, carried });
    return fetch(url, init);
  };
}

describe('persisted queries', () => {
  test('Apollo Client sends the text once, then the hash alone by GET', async () => {
    const token = await tokenFor(`apq-apollo-${server.backend}@example.com`);
    const ask = async () => {
      const sent = [];
      const apollo = new ApolloClient({
        cache: new InMemoryCache(),
        link: createPersistedQueryLink({ sha256, useGETForHashedQueries: true }).concat(
          new HttpLink({ uri: server.url, fetch: recordingFetch(sent), headers: { authorization: `Bearer ${token}` } }),
        ),
      });
      const { data } = await apollo.query({ query: gql(ME), fetchPolicy: 'network-only' });
      assert.equal(data.me.email, `apq-apollo-${server.backend}@example.com`);
      return sent;
    };
    // The first client is told the hash is unknown and sends the text with it.
    const first = await ask();
    assert.deepEqual(first.map((s) => s.carried), [false, true], JSON.stringify(first));
    // Another client (another tab, another device) gets its answer by hash alone.
    assert.deepEqual(await ask(), [{ method: 'GET', carried: false }]);
  });

  test("urql's persistedExchange sends the text once, then the hash alone by GET", async () => {
    const token = await tokenFor(`apq-urql-${server.backend}@example.com`);
    const ask = async () => {
      const sent = [];
      const urql = new Client({
        url: server.url,
        exchanges: [
          persistedExchange({ preferGetForPersistedQueries: true, generateHash: async (query) => sha256(query) }),
          fetchExchange,
        ],
        fetch: recordingFetch(sent),
        fetchOptions: { headers: { authorization: `Bearer ${token}` } },
        requestPolicy: 'network-only',
      });
      const result = await urql.query(ugql(ME), {}).toPromise();
      assert.equal(result.error, undefined, String(result.error));
      assert.equal(result.data.me.email, `apq-urql-${server.backend}@example.com`);
      return sent;
    };
    const first = await ask();
    assert.deepEqual(first.map((s) => s.carried), [false, true], JSON.stringify(first));
    assert.deepEqual(await ask(), [{ method: 'GET', carried: false }]);
  });
});
