// GET /api/tasks: a protected resource. Only a valid authserver access token carrying the
// "api" scope gets through; everything else gets an RFC 6750 answer (401 or 403).

import { serverVerifierFromEnv } from './verify.mjs';

/** @typedef {import('./verify.mjs').Verifier} Verifier */

/** The scope this route requires. */
export const TASKS_SCOPE = 'api';

/**
 * @param {() => Verifier} [verifier] defaults to the process-wide verifier (env configuration)
 * @param {string} [requiredScope]
 * @returns {(request: Request) => Promise<Response>}
 */
export function createTasksHandler(verifier = serverVerifierFromEnv, requiredScope = TASKS_SCOPE) {
  return async function handleTasks(request) {
    const result = await verifier().verifyRequest(request, requiredScope);
    if (!result.ok) return result.response;
    const { claims } = result;
    return Response.json(
      {
        tasks: [
          { id: 1, title: 'Rotate the signing key', done: true },
          { id: 2, title: 'Ship the Next.js example', done: false },
        ],
        // Who called: the client the token was issued to, and what it may do.
        client_id: claims.client_id,
        scope: claims.scope,
      },
      { headers: { 'Cache-Control': 'no-store' } },
    );
  };
}

/** The handler app/api/tasks/route.ts exports as GET. */
export const handleTasks = createTasksHandler();
