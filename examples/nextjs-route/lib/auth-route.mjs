// POST /api/auth: the server's client-credentials token, from the module-memory cache.
//
// Standard Web Request/Response only, so Next.js (app/api/auth/route.ts) and plain Node
// (test/run.mjs) run the same handler.

import { ConfigurationError, TokenError, serverTokens } from './token.mjs';

/** @typedef {import('./token.mjs').TokenSource} TokenSource */

const NO_STORE = { 'Cache-Control': 'no-store', Pragma: 'no-cache' };

/**
 * @param {unknown} body
 * @param {number} status
 * @returns {Response}
 */
function json(body, status) {
  return Response.json(body, { status, headers: NO_STORE });
}

/**
 * A handler for the token route. The answer is `{ access_token, token_type, expires_in, scope }`
 * with `expires_in` counted down from the cached token's expiry, as the seed route forwarded
 * the token response to the browser. Never the client secret, never a cookie.
 *
 * @param {() => TokenSource} [tokens] defaults to the process-wide source (env configuration)
 * @returns {(request: Request) => Promise<Response>}
 */
export function createAuthHandler(tokens = serverTokens) {
  return async function handleAuth(_request) {
    try {
      const token = await tokens().getToken();
      return json(
        {
          access_token: token.accessToken,
          token_type: token.tokenType,
          expires_in: Math.max(0, Math.floor((token.expiresAt - Date.now()) / 1000)),
          scope: token.scope,
        },
        200,
      );
    } catch (error) {
      if (error instanceof ConfigurationError) {
        console.error(`/api/auth: ${error.message}`);
        return json({ error: 'server_configuration_error' }, 500);
      }
      if (error instanceof TokenError) {
        // The browser's request is fine; the server's own call upstream failed: 502, with the
        // OAuth error code (e.g. invalid_client) but nothing the token endpoint might echo.
        console.error(`/api/auth: ${error.message}`);
        return json(
          {
            error: 'token_request_failed',
            upstream_status: error.status ?? null,
            upstream_error: error.error ?? null,
          },
          502,
        );
      }
      console.error('/api/auth: unexpected error', error);
      return json({ error: 'internal_error' }, 500);
    }
  };
}

/** The handler app/api/auth/route.ts exports as POST. */
export const handleAuth = createAuthHandler();
