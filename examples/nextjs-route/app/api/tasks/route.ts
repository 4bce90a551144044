// GET /api/tasks — protected: `Authorization: Bearer <authserver access token>` with the "api"
// scope, verified against the authserver JWKS (lib/verify.mjs, jose).
import { handleTasks } from '../../../lib/tasks-route.mjs';

export const GET = handleTasks;
