// POST /api/auth — the server's client-credentials token (cached in module memory until
// 3 minutes before it expires; concurrent requests share one fetch). The logic lives in
// lib/auth-route.mjs so that plain Node runs it too (test/run.mjs).
import { handleAuth } from '../../../lib/auth-route.mjs';

export const POST = handleAuth;
