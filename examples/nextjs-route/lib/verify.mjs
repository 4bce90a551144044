// Verifying authserver's RFC 9068 access tokens as a resource server, with jose, and answering
// failures the RFC 6750 way (WWW-Authenticate: Bearer ...).

import { createRemoteJWKSet, errors, jwtVerify } from 'jose';

import { apiUrl } from './token.mjs';

/** The realm named in every Bearer challenge. */
export const REALM = 'api';

/** RFC 6750 §2.1 b64token. */
const B64TOKEN = /^[A-Za-z0-9\-._~+/]+=*$/;

/**
 * Verification failures that are the token's fault (401 invalid_token). Anything else — the
 * JWKS unreachable, timing out or not JSON — is ours, and gets a 503 instead.
 */
const TOKEN_FAULTS = [
  errors.JWTExpired,
  errors.JWTClaimValidationFailed,
  errors.JWTInvalid,
  errors.JWSInvalid,
  errors.JWSSignatureVerificationFailed,
  errors.JWKSNoMatchingKey,
  errors.JWKSMultipleMatchingKeys,
  errors.JOSEAlgNotAllowed,
  errors.JOSENotSupported,
];

/**
 * @typedef {object} AccessTokenClaims
 * @property {string} iss
 * @property {string} sub
 * @property {string | string[]} aud
 * @property {number} exp
 * @property {number} iat
 * @property {string} jti
 * @property {string} client_id
 * @property {string} scope  space-separated
 */

/**
 * @typedef {{ ok: true, claims: AccessTokenClaims, scopes: string[] }
 *   | { ok: false, response: Response }} VerifyResult
 */

/**
 * @typedef {object} VerifierOptions
 * @property {string} jwksUrl   `${API_URL}/.well-known/jwks.json`
 * @property {string} issuer    authserver's AUTHSERVER_ISSUER
 * @property {string} audience  this API's identifier (authserver's default: the issuer)
 */

/**
 * @typedef {object} Verifier
 * @property {(request: Request, requiredScope?: string) => Promise<VerifyResult>} verifyRequest
 */

/**
 * An RFC 6750 §3 error answer: JSON body plus the matching Bearer challenge.
 *
 * @param {number} status
 * @param {{ error?: string, description?: string, scope?: string }} [details]
 * @returns {Response}
 */
export function bearerError(status, details = {}) {
  // Only fixed strings and claim names go in here: no quotes or backslashes to escape.
  const params = [`realm="${REALM}"`];
  if (details.error) params.push(`error="${details.error}"`);
  // RFC 6750 §3.1: no error information at all when the request carried no credentials.
  if (details.error && details.description) {
    params.push(`error_description="${details.description}"`);
  }
  if (details.scope) params.push(`scope="${details.scope}"`);
  const body = details.error
    ? { error: details.error, error_description: details.description }
    : { error_description: details.description };
  return Response.json(body, {
    status,
    headers: { 'WWW-Authenticate': `Bearer ${params.join(', ')}`, 'Cache-Control': 'no-store' },
  });
}

/**
 * The token from `Authorization: Bearer …`: a string, null when the request carries no Bearer
 * credentials at all, or an error answer when the header is malformed.
 *
 * @param {Request} request
 * @returns {string | null | Response}
 */
export function bearerToken(request) {
  const header = request.headers.get('authorization');
  if (header === null) return null;
  const match = /^(\S+)(?: +(.*))?$/.exec(header.trim());
  if (!match || match[1].toLowerCase() !== 'bearer') return null;
  const token = match[2] ?? '';
  if (!B64TOKEN.test(token)) {
    return bearerError(400, {
      error: 'invalid_request',
      description: 'Authorization must be: Bearer <token>',
    });
  }
  return token;
}

/**
 * @param {unknown} error
 * @returns {string}
 */
function describe(error) {
  if (error instanceof errors.JWTExpired) return 'the access token expired';
  if (error instanceof errors.JWTClaimValidationFailed) {
    return `the access token failed the ${error.claim} check`;
  }
  if (error instanceof errors.JWSSignatureVerificationFailed) return 'bad signature';
  if (error instanceof errors.JWKSNoMatchingKey) return 'signed by an unknown key';
  if (error instanceof errors.JOSEAlgNotAllowed) return 'signing algorithm not accepted';
  return 'malformed access token';
}

/**
 * @param {VerifierOptions} options
 * @returns {Verifier}
 */
export function createVerifier(options) {
  const { issuer, audience } = options;
  // createRemoteJWKSet caches the key set and refetches it when a token names an unknown kid
  // (at most every 30 s), which is how authserver's key rotation reaches this API.
  const keys = createRemoteJWKSet(new URL(options.jwksUrl));

  return {
    async verifyRequest(request, requiredScope) {
      const token = bearerToken(request);
      if (token instanceof Response) return { ok: false, response: token };
      if (token === null) {
        return {
          ok: false,
          response: bearerError(401, { description: 'a Bearer access token is required' }),
        };
      }
      /** @type {AccessTokenClaims} */
      let claims;
      try {
        const { payload } = await jwtVerify(token, keys, {
          issuer,
          audience,
          algorithms: ['RS256'],
          typ: 'at+jwt',
          requiredClaims: ['iss', 'sub', 'aud', 'exp', 'iat', 'jti', 'client_id'],
        });
        claims = /** @type {AccessTokenClaims} */ (/** @type {unknown} */ (payload));
      } catch (error) {
        if (TOKEN_FAULTS.some((fault) => error instanceof fault)) {
          return {
            ok: false,
            response: bearerError(401, { error: 'invalid_token', description: describe(error) }),
          };
        }
        console.error('token verification could not run (JWKS unavailable?)', error);
        return {
          ok: false,
          response: Response.json(
            { error: 'temporarily_unavailable' },
            { status: 503, headers: { 'Retry-After': '5', 'Cache-Control': 'no-store' } },
          ),
        };
      }
      const scopes =
        typeof claims.scope === 'string' ? claims.scope.split(' ').filter(Boolean) : [];
      if (requiredScope && !scopes.includes(requiredScope)) {
        return {
          ok: false,
          response: bearerError(403, {
            error: 'insufficient_scope',
            description: `the access token lacks the ${requiredScope} scope`,
            scope: requiredScope,
          }),
        };
      }
      return { ok: true, claims, scopes };
    },
  };
}

/**
 * A verifier configured from the environment: JWKS at `${API_URL}/.well-known/jwks.json`,
 * issuer TOKEN_ISSUER (default API_URL), audience API_AUDIENCE (default: the issuer, which is
 * authserver's default audience).
 *
 * @param {Record<string, string | undefined>} [env]
 * @returns {Verifier}
 */
export function verifierFromEnv(env = process.env) {
  const base = apiUrl(env);
  const issuer = (env.TOKEN_ISSUER || base).replace(/\/+$/, '');
  return createVerifier({
    jwksUrl: `${base}/.well-known/jwks.json`,
    issuer,
    audience: env.API_AUDIENCE || issuer,
  });
}

/** @type {Verifier | null} */
let serverVerifier = null;

/**
 * The process-wide verifier (one JWKS cache per server process), created on first use.
 *
 * @returns {Verifier}
 */
export function serverVerifierFromEnv() {
  serverVerifier ??= verifierFromEnv();
  return serverVerifier;
}
