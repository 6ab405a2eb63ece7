// usergraph's playground: GraphiQL with the explorer and history plugins, a short tour in
// the first tabs, and a headers editor ready for `Authorization: Bearer …`. Served from
// the binary with every file it needs; nothing is fetched from anywhere else.
(function () {
  'use strict';

  // GraphiQL's menus write a <style> to lock scrolling; the page's Content-Security-Policy
  // lets it apply only with this page's nonce, which react-style-singleton reads from here.
  var script = document.currentScript;
  if (script && script.nonce) window.__webpack_nonce__ = script.nonce;

  var PLACEHOLDER = 'Bearer <paste an accessToken here>';

  var START = [
    '# Welcome to usergraph. These tabs are a short tour; run an operation with the',
    '# ▶ button or Ctrl-Enter, and pick one when a tab holds several.',
    '#',
    '# 1. Sign up: the answer holds an accessToken and a refreshToken.',
    'mutation Register {',
    '  register(input: { email: "you@example.com", password: "a passphrase of 15 or more" }) {',
    '    accessToken',
    '    refreshToken',
    '    expiresIn',
    '    user { id email }',
    '  }',
    '}',
    '',
    '# 2. Log in later with the same email and password.',
    'mutation Login {',
    '  login(input: { email: "you@example.com", password: "a passphrase of 15 or more" }) {',
    '    accessToken',
    '    refreshToken',
    '  }',
    '}',
    '',
    '# 3. Go on in the next tab. The token of your latest register or login here is sent',
    '#    for you while a tab\'s Authorization header (Headers, below) still reads',
    '#    "Bearer <paste an accessToken here>"; put another token there to act as someone else.',
    ''
  ].join('\n');

  var ME = [
    '# Who am I? Sent with the token of your latest register or login in this playground,',
    '# or with the one in this tab\'s Authorization header.',
    'query Me {',
    '  me {',
    '    id',
    '    email',
    '    emailVerified',
    '    profile { displayName yearOfBirth description }',
    '    roles { name }',
    '    permissions',
    '  }',
    '}',
    '',
    '# Change what others see of you.',
    'mutation UpdateProfile {',
    '  updateMyProfile(input: { displayName: "Ada", description: "Hello" }) {',
    '    id',
    '    profile { displayName description }',
    '  }',
    '}',
    ''
  ].join('\n');

  var ADMIN = [
    '# For administrators: log in (first tab) as an account with the admin role; create the',
    '# first one with `usergraph admin create --email … --password …`.',
    '#',
    '# A page of accounts with their roles; pass pageInfo.endCursor as `after` for the next.',
    'query Users {',
    '  users(first: 10) {',
    '    totalCount',
    '    nodes { id email isActive roles { name } }',
    '    pageInfo { hasNextPage endCursor }',
    '  }',
    '}',
    '',
    '# The roles there are, and what each allows.',
    'query Roles {',
    '  roles { id name permissions }',
    '}',
    '',
    '# Give an account a role (paste an id from the Users answer).',
    'mutation AssignRole {',
    '  assignRole(userId: "<an id>", role: "admin") { id email roles { name } }',
    '}',
    ''
  ].join('\n');

  var MFA = [
    '# Two-step verification (TOTP), once logged in (first tab).',
    '#',
    '# 1. Start: the playground shows the QR code; scan it with an authenticator app (or',
    '#    type the secret into it).',
    'mutation StartTotp {',
    '  startTotpEnrollment { secret otpauthUri qrCodeSvg }',
    '}',
    '',
    '# 2. Confirm with the six digits the app shows now. Keep the recovery codes somewhere',
    '#    safe: each signs you in once without the app.',
    'mutation ConfirmTotp {',
    '  confirmTotpEnrollment(code: "<6 digits>") { codes }',
    '}',
    '',
    '# 3. From now on, login answers MFA_REQUIRED: paste its extensions.challenge here with',
    '#    a current code (or a recovery code).',
    'mutation VerifyMfa {',
    '  verifyMfa(challenge: "<ugm_…>", code: "<6 digits>") { accessToken refreshToken }',
    '}',
    '',
    '# Changing the password or email, creating tokens or deleting the account answer',
    '# REAUTHENTICATION_REQUIRED when the login is older than 10 minutes: step up first.',
    'mutation Reauthenticate {',
    '  reauthenticate(password: "a passphrase of 15 or more", code: "<6 digits>")',
    '}',
    ''
  ].join('\n');

  var HEADERS = '{\n  "Authorization": "' + PLACEHOLDER + '"\n}';

  var base = GraphiQL.createFetcher({ url: new URL('/graphql', window.location.href).href });

  // The token of the latest register, login, second step or refresh run here, for this
  // browser tab.
  var TOKEN_KEY = 'usergraph.playground.token';
  function remember(result) {
    var data = result && result.data;
    var payload = data && (data.register || data.login || data.verifyMfa || data.refreshToken);
    if (payload && typeof payload.accessToken === 'string') {
      window.sessionStorage.setItem(TOKEN_KEY, payload.accessToken);
    }
    showQrCode(data && data.startTotpEnrollment);
    return result;
  }

  // An enrolment's QR code, drawn over the playground for an authenticator app to scan
  // (a QR code inside a JSON string helps no one).
  function showQrCode(enrolment) {
    if (!enrolment || typeof enrolment.qrCodeSvg !== 'string') return;
    var svg = new DOMParser().parseFromString(enrolment.qrCodeSvg, 'image/svg+xml').documentElement;
    if (!svg || svg.nodeName !== 'svg') return;
    var old = document.getElementById('usergraph-qr');
    if (old) old.remove();
    var panel = document.createElement('div');
    panel.id = 'usergraph-qr';
    panel.setAttribute('role', 'dialog');
    panel.setAttribute('aria-label', 'Scan with your authenticator app');
    var title = document.createElement('p');
    title.textContent = 'Scan with your authenticator app, then run ConfirmTotp with the code it shows.';
    panel.appendChild(title);
    panel.appendChild(document.importNode(svg, true));
    if (typeof enrolment.secret === 'string') {
      var secret = document.createElement('code');
      secret.textContent = enrolment.secret;
      panel.appendChild(secret);
    }
    var close = document.createElement('button');
    close.type = 'button';
    close.textContent = 'Close';
    close.addEventListener('click', function () { panel.remove(); });
    panel.appendChild(close);
    document.body.appendChild(panel);
  }

  // While the Authorization header holds the tour's placeholder (or nothing), send the
  // remembered token, or no header at all: the schema and sign-up need none.
  function fetcher(params, options) {
    var headers = Object.assign({}, options && options.headers);
    Object.keys(headers).forEach(function (name) {
      var value = String(headers[name]).trim();
      if (name.toLowerCase() === 'authorization' && (value === PLACEHOLDER || value === '' ||
          value === 'Bearer')) {
        delete headers[name];
        var token = window.sessionStorage.getItem(TOKEN_KEY);
        if (token) headers.Authorization = 'Bearer ' + token;
      }
    });
    if (isSubscription(params)) {
      var authorization = Object.keys(headers).filter(function (name) {
        return name.toLowerCase() === 'authorization';
      }).map(function (name) { return headers[name]; })[0];
      return subscribe(socketFor(authorization), params);
    }
    var answer = base(params, Object.assign({}, options, { headers: headers }));
    return answer && typeof answer.then === 'function' ? answer.then(observe) : observe(answer);
  }

  // Subscriptions run over WebSocket (graphql-transport-ws) with the token the requests
  // would carry: one socket per token, opened when first needed.
  var sockets = {};
  function socketFor(authorization) {
    var key = authorization || '';
    if (!sockets[key]) {
      var url = new URL('/graphql/ws', window.location.href);
      url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
      sockets[key] = graphqlWs.createClient({
        url: url.href,
        connectionParams: authorization ? { Authorization: authorization } : {},
        retryAttempts: 0,
      });
    }
    return sockets[key];
  }

  function isSubscription(params) {
    try {
      var operations = GraphiQL.GraphQL.parse(params.query).definitions.filter(function (d) {
        return d.kind === 'OperationDefinition';
      });
      var chosen = operations.filter(function (o) {
        return o.name && o.name.value === params.operationName;
      })[0] || (operations.length === 1 ? operations[0] : null);
      return Boolean(chosen) && chosen.operation === 'subscription';
    } catch (error) {
      // Not parsable: the server says why.
      return false;
    }
  }

  // The events of a subscription; a socket the server closed (a refused token, say)
  // becomes an error in the response pane rather than a bare close event.
  async function* subscribe(client, params) {
    try {
      var events = client.iterate({
        query: params.query,
        variables: params.variables,
        operationName: params.operationName
      });
      for await (var event of events) yield event;
    } catch (error) {
      var message = error && typeof error.code === 'number'
        ? 'the subscription socket closed (' + error.code + '): ' + (error.reason || 'no reason given')
        : String((error && error.message) || error);
      yield { errors: [{ message: message }] };
    }
  }

  // An answer, or (GraphiQL streams: incremental delivery) the parts of one as they pass.
  function observe(answer) {
    if (answer && typeof answer[Symbol.asyncIterator] === 'function') {
      return (async function* () {
        for await (var part of answer) yield remember(part);
      })();
    }
    return remember(answer);
  }

  var root = ReactDOM.createRoot(document.getElementById('graphiql'));
  root.render(React.createElement(GraphiQL, {
    fetcher: fetcher,
    plugins: [GraphiQLPluginExplorer.explorerPlugin()],
    defaultTabs: [{ query: START }, { query: ME }, { query: ADMIN }, { query: MFA }],
    defaultHeaders: HEADERS,
    defaultEditorToolsVisibility: 'headers',
    shouldPersistHeaders: true
  }));
})();
