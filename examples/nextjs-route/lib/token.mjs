// Client-credentials tokens from authserver, cached in module memory.
//
// Plain ES module with JSDoc types: Next.js imports it from app/api/auth/route.ts, and Node 20
// runs it as it is (test/run.mjs), with no TypeScript compiler in between.

/** Refetch this long before the token's `expires_in` runs out. */
export const REFRESH_MARGIN_MS = 3 * 60 * 1000;

/** Give up on the token endpoint after this long. */
export const TOKEN_REQUEST_TIMEOUT_MS = 10_000;

/**
 * @typedef {object} Token
 * @property {string} accessToken
 * @property {string} tokenType   "Bearer"
 * @property {string} scope       the granted scope (authserver always returns it)
 * @property {number} expiresAt   epoch milliseconds
 */

/**
 * @typedef {object} TokenSourceOptions
 * @property {string} tokenUrl      e.g. `${API_URL}/oauth2/token`
 * @property {string} clientId
 * @property {string} clientSecret
 * @property {string} [scope]       space-separated; omitted: the client's registered scopes
 * @property {number} [refreshMarginMs]
 * @property {typeof fetch} [fetch] defaults to the global fetch, looked up at call time
 * @property {() => number} [now]   clock in epoch milliseconds (tests)
 */

/**
 * @typedef {object} TokenSource
 * @property {() => Promise<Token>} getToken  cached token, or one fetch shared by every caller
 * @property {() => void} clear               forget the cached token (e.g. after a 401 from the API)
 */

/** The token endpoint refused or could not be reached. Never carries the client secret. */
export class TokenError extends Error {
  /**
   * @param {string} message
   * @param {{ status?: number, error?: string, cause?: unknown }} [details]
   */
  constructor(message, details = {}) {
    super(message, { cause: details.cause });
    this.name = 'TokenError';
    /** HTTP status of the token endpoint's answer; undefined when there was none. */
    this.status = details.status;
    /** The OAuth `error` code (RFC 6749 §5.2), e.g. "invalid_client". */
    this.error = details.error;
  }
}

/**
 * `Authorization: Basic …` for client_secret_basic. RFC 6749 §2.3.1: the client id and the
 * secret are each form-urlencoded before they are joined with ":" and base64-encoded, so a
 * secret holding ":", "+", "%" or a space still reaches the server intact.
 *
 * @param {string} clientId
 * @param {string} clientSecret
 * @returns {string}
 */
export function basicAuthorization(clientId, clientSecret) {
  // encodeURIComponent output is ASCII, so btoa (available in Node and the Edge runtime) is safe.
  return `Basic ${btoa(`${encodeURIComponent(clientId)}:${encodeURIComponent(clientSecret)}`)}`;
}

/**
 * A cached, single-flight source of client-credentials tokens.
 *
 * @param {TokenSourceOptions} options
 * @returns {TokenSource}
 */
export function createTokenSource(options) {
  const { tokenUrl, clientId, clientSecret, scope } = options;
  const refreshMarginMs = options.refreshMarginMs ?? REFRESH_MARGIN_MS;
  const now = options.now ?? Date.now;
  const authorization = basicAuthorization(clientId, clientSecret);

  /** @type {Token | null} */
  let cached = null;
  /** @type {Promise<Token> | null} */
  let inFlight = null;

  /** @returns {Promise<Token>} */
  async function fetchToken() {
    const body = new URLSearchParams({ grant_type: 'client_credentials' });
    if (scope) body.set('scope', scope);
    // The lifetime counts from before the request: never later than the server's own clock.
    const requestedAt = now();
    const doFetch = options.fetch ?? globalThis.fetch;
    /** @type {Response} */
    let response;
    try {
      response = await doFetch(tokenUrl, {
        method: 'POST',
        headers: {
          Authorization: authorization,
          'Content-Type': 'application/x-www-form-urlencoded',
          Accept: 'application/json',
        },
        body,
        cache: 'no-store',
        signal: AbortSignal.timeout(TOKEN_REQUEST_TIMEOUT_MS),
      });
    } catch (cause) {
      throw new TokenError(`token endpoint unreachable: ${tokenUrl}`, { cause });
    }
    /** @type {any} */
    let data = null;
    try {
      data = await response.json();
    } catch {
      // handled below: a non-JSON answer is as bad as a refusal
    }
    if (!response.ok) {
      const error = typeof data?.error === 'string' ? data.error : undefined;
      throw new TokenError(
        `token endpoint answered ${response.status}${error ? ` ${error}` : ''}`,
        { status: response.status, error },
      );
    }
    if (
      typeof data?.access_token !== 'string' ||
      typeof data.token_type !== 'string' ||
      data.token_type.toLowerCase() !== 'bearer' ||
      typeof data.expires_in !== 'number' ||
      !(data.expires_in > 0)
    ) {
      throw new TokenError('token endpoint answered 200 without a usable Bearer token', {
        status: response.status,
      });
    }
    return {
      accessToken: data.access_token,
      tokenType: 'Bearer',
      scope: typeof data.scope === 'string' ? data.scope : (scope ?? ''),
      expiresAt: requestedAt + data.expires_in * 1000,
    };
  }

  return {
    getToken() {
      // A token with less than the margin left is not served: the caller may hold it a while.
      // (A client whose token lifetime is shorter than the margin therefore fetches every time,
      // still one fetch for concurrent callers.)
      if (cached && now() < cached.expiresAt - refreshMarginMs) {
        return Promise.resolve(cached);
      }
      // Single flight: concurrent callers share the one request already under way.
      if (!inFlight) {
        inFlight = fetchToken()
          .then((token) => {
            cached = token;
            return token;
          })
          .finally(() => {
            inFlight = null;
          });
      }
      return inFlight;
    },
    clear() {
      cached = null;
    },
  };
}

/** Thrown when API_URL, CLIENT_ID or CLIENT_SECRET is missing. */
export class ConfigurationError extends Error {
  /** @param {string} message */
  constructor(message) {
    super(message);
    this.name = 'ConfigurationError';
  }
}

/**
 * The authserver base URL: API_URL without a trailing slash.
 *
 * @param {Record<string, string | undefined>} [env]
 * @returns {string}
 */
export function apiUrl(env = process.env) {
  const url = env.API_URL || 'http://localhost:8080';
  return url.replace(/\/+$/, '');
}

/**
 * A token source configured from the environment: API_URL, CLIENT_ID, CLIENT_SECRET and
 * TOKEN_SCOPE (default "api").
 *
 * @param {Record<string, string | undefined>} [env]
 * @returns {TokenSource}
 */
export function tokenSourceFromEnv(env = process.env) {
  const clientId = env.CLIENT_ID;
  const clientSecret = env.CLIENT_SECRET;
  if (!clientId || !clientSecret) {
    throw new ConfigurationError('CLIENT_ID and CLIENT_SECRET must be set');
  }
  return createTokenSource({
    tokenUrl: `${apiUrl(env)}/oauth2/token`,
    clientId,
    clientSecret,
    scope: env.TOKEN_SCOPE ?? 'api',
  });
}

/** @type {TokenSource | null} */
let serverTokenSource = null;

/**
 * The process-wide token source (module memory: one per server process, shared by every
 * request it handles), created from the environment on first use.
 *
 * @returns {TokenSource}
 */
export function serverTokens() {
  serverTokenSource ??= tokenSourceFromEnv();
  return serverTokenSource;
}
