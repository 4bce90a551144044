// Runs the two routes' handlers under plain Node 20 (no Next.js, no TypeScript compiler) against
// a running authserver, and prints a JSON summary on stdout; logs go to stderr.
//
//   API_URL=http://127.0.0.1:8080 CLIENT_ID=… CLIENT_SECRET=… \
//   OTHER_CLIENT_ID=… OTHER_CLIENT_SECRET=… node test/run.mjs
//
// CLIENT_* is a client registered with the "api" scope; OTHER_CLIENT_* one without it (for the
// 403 case; its token is requested with OTHER_SCOPE, default "other"). Needs only `jose`.

import { decodeProtectedHeader } from 'jose';

import { createAuthHandler, handleAuth } from '../lib/auth-route.mjs';
import { createTasksHandler, handleTasks } from '../lib/tasks-route.mjs';
import { apiUrl, createTokenSource, REFRESH_MARGIN_MS } from '../lib/token.mjs';
import { createVerifier } from '../lib/verify.mjs';

/** @param {string} name */
function required(name) {
  const value = process.env[name];
  if (!value) {
    console.error(`run.mjs: ${name} must be set`);
    process.exit(2);
  }
  return value;
}
const CLIENT_ID = required('CLIENT_ID');
const CLIENT_SECRET = required('CLIENT_SECRET');
const OTHER_CLIENT_ID = required('OTHER_CLIENT_ID');
const OTHER_CLIENT_SECRET = required('OTHER_CLIENT_SECRET');
const base = apiUrl({ API_URL: required('API_URL') });
const tokenUrl = `${base}/oauth2/token`;

// Count what reaches the network, by URL, underneath the handlers.
const originalFetch = globalThis.fetch;
/** @type {Record<string, number>} */
const fetched = {};
/** @type {typeof fetch} */
const countingFetch = async (input, init) => {
  const url = input instanceof Request ? input.url : String(input);
  fetched[url] = (fetched[url] ?? 0) + 1;
  return originalFetch(input, init);
};
globalThis.fetch = countingFetch;
const tokenFetches = () => fetched[tokenUrl] ?? 0;

const postAuth = () => new Request('http://localhost:3000/api/auth', { method: 'POST' });
/** @param {Record<string, string>} [headers] */
const getTasks = (headers = {}) => new Request('http://localhost:3000/api/tasks', { headers });
/** @param {Response} response */
const describe = async (response) => ({
  status: response.status,
  www_authenticate: response.headers.get('www-authenticate'),
  body: await response.json(),
});
/** @param {string} text */
const b64url = (text) => Buffer.from(text).toString('base64url');

const summary = {};

// 1. The auth route: five concurrent requests on a cold cache share one fetch, then a sixth
//    request is served from the cache.
const concurrent = await Promise.all(Array.from({ length: 5 }, () => handleAuth(postAuth())));
const concurrentBodies = await Promise.all(concurrent.map((response) => response.json()));
const afterConcurrent = tokenFetches();
const second = await handleAuth(postAuth());
const secondBody = await second.json();
const token = secondBody.access_token;
const everyBody = JSON.stringify([...concurrentBodies, secondBody]);
summary.auth = {
  concurrent_statuses: concurrent.map((response) => response.status),
  concurrent_same_token: concurrentBodies.every((body) => body.access_token === token),
  token_fetches_after_concurrent: afterConcurrent,
  second_status: second.status,
  token_fetches_after_second: tokenFetches(),
  body_keys: Object.keys(secondBody).sort(),
  token_type: secondBody.token_type,
  scope: secondBody.scope,
  expires_in: secondBody.expires_in,
  cache_control: second.headers.get('cache-control'),
  set_cookie: second.headers.get('set-cookie'),
  secret_in_body: everyBody.includes(CLIENT_SECRET),
  header: (({ alg, typ, kid }) => ({ alg, typ, has_kid: typeof kid === 'string' }))(
    decodeProtectedHeader(token),
  ),
};

// 2. The 3-minute margin, on a fake clock and a fake token endpoint (no network).
{
  let clock = 1_000_000;
  let calls = 0;
  const source = createTokenSource({
    tokenUrl: 'http://token.invalid/oauth2/token',
    clientId: 'id',
    clientSecret: 'secret',
    now: () => clock,
    fetch: async () => {
      calls += 1;
      return Response.json({ access_token: `t${calls}`, token_type: 'Bearer', expires_in: 1800 });
    },
  });
  await source.getToken();
  clock += 1800_000 - REFRESH_MARGIN_MS - 1; // 1 ms before the margin: still cached
  const cached = await source.getToken();
  const callsBeforeMargin = calls;
  clock += 1; // inside the margin: refetched
  const refreshed = await source.getToken();
  summary.cache_margin = {
    calls_before_margin: callsBeforeMargin,
    calls_inside_margin: calls,
    cached_token: cached.accessToken,
    refreshed_token: refreshed.accessToken,
  };
}

// 3. The auth route when the token endpoint refuses the credentials: 502, nothing cached.
{
  const badSecret = `${CLIENT_SECRET}-wrong`;
  const bad = createTokenSource({ tokenUrl, clientId: CLIENT_ID, clientSecret: badSecret });
  const response = await createAuthHandler(() => bad)(postAuth());
  const text = await response.text();
  summary.bad_secret = {
    status: response.status,
    body: JSON.parse(text),
    secret_in_body: text.includes(badSecret),
  };
}

// 4. The protected route.
const [header, payload, signature] = token.split('.');
const claims = JSON.parse(Buffer.from(payload, 'base64url').toString());
const tampered = [
  header,
  b64url(JSON.stringify({ ...claims, scope: 'api admin' })),
  signature,
].join('.');
const unsigned = [b64url(JSON.stringify({ alg: 'none', typ: 'at+jwt' })), payload, ''].join('.');
const other = await createTokenSource({
  tokenUrl,
  clientId: OTHER_CLIENT_ID,
  clientSecret: OTHER_CLIENT_SECRET,
  scope: process.env.OTHER_SCOPE ?? 'other',
}).getToken();
const elsewhere = createVerifier({
  jwksUrl: `${base}/.well-known/jwks.json`,
  issuer: base,
  audience: 'https://another-api.example',
});
summary.tasks = {
  valid: await describe(await handleTasks(getTasks({ Authorization: `Bearer ${token}` }))),
  valid_lowercase_scheme: (await handleTasks(getTasks({ Authorization: `bearer ${token}` })))
    .status,
  missing: await describe(await handleTasks(getTasks())),
  other_scheme: await describe(
    await handleTasks(getTasks({ Authorization: 'Basic Zm9vOmJhcg==' })),
  ),
  malformed: await describe(await handleTasks(getTasks({ Authorization: 'Bearer two words' }))),
  tampered: await describe(await handleTasks(getTasks({ Authorization: `Bearer ${tampered}` }))),
  unsigned: await describe(await handleTasks(getTasks({ Authorization: `Bearer ${unsigned}` }))),
  wrong_audience: await describe(
    await createTasksHandler(() => elsewhere)(getTasks({ Authorization: `Bearer ${token}` })),
  ),
  insufficient_scope: await describe(
    await handleTasks(getTasks({ Authorization: `Bearer ${other.accessToken}` })),
  ),
};
summary.other_scope = other.scope;
summary.token_fetches = tokenFetches();
summary.fetched = fetched;

process.stdout.write(`${JSON.stringify(summary, null, 2)}\n`);
