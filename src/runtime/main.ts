/**
 * The animus agent runtime: a Broca-compatible message broker between chat
 * platforms and one Letta agent, run once per agent folder.
 *
 * Contract (process managers, `animus send`, health and update rely on it):
 * - Started as `node <agentDir>/runtime/main.js` with cwd = the agent folder, or with
 *   ANIMUS_AGENT_DIR pointing at it. npm packages resolve from `<home>/node_modules` by
 *   Node's walk-up; nothing is read next to this file. It loads the folder's `.env`
 *   itself (its values win over the inherited environment), so process managers never
 *   hold secrets, and it sets umask 077.
 * - Configuration errors (missing AGENT_ID, placeholder key, unknown mode, malformed
 *   settings.json or .env, missing database, another runtime holding the folder's
 *   lock `runtime.pid`): one line per problem on stderr, exit code 78 (EX_CONFIG:
 *   do not restart).
 * - SIGTERM/SIGINT: the in-flight agent request gets 7 s to finish, then it is
 *   abandoned and its item returned to the queue; exit 0 within 10 s (use a 15 s kill
 *   timeout). SIGKILL at any moment loses nothing: items left `processing` are
 *   recovered at start and every minute.
 * - Logs: one JSON object per line on stdout, `{"time","level","agent","item"?,"msg",...}`,
 *   level from LOG_LEVEL (debug|info|warn|error), else debug when DEBUG_MODE or
 *   settings.debug_mode; secret values from .env are redacted from every line.
 * - Queue (Broca statuses): oldest due `pending` → `processing` → `completed` (reply in
 *   messages.agent_response, processed=1, latency and tokens; same transaction), or back
 *   to `pending` with `available_at` (exponential backoff with jitter, 429 Retry-After
 *   honoured) up to settings.max_retries, then `failed` with `last_error`; 400/401/403/
 *   404/422 fail at once. Reply delivery is tracked on the message row (delivery_status
 *   pending → sent | failed | skipped) and retried on its own.
 * - Modes (settings.json, hot-reloaded): echo replies with the formatted input; listen
 *   stores messages and leaves them `pending` (never calls the agent; switching to live
 *   answers the backlog oldest first, `animus queue flush` discards it); live asks the agent.
 * - Plugins (settings.plugins.<name>.enabled): telegram_bot (TELEGRAM_BOT_TOKEN,
 *   TELEGRAM_API_ROOT), telegram_user (TELEGRAM_API_ID/_HASH/_SESSION_STRING), local
 *   (`animus send`, woken through the unix socket `runtime.sock` in the agent folder).
 * - Optional tuning variables in .env: see tuning.ts (ANIMUS_RETRY_BASE_MS, …), plus
 *   TELEGRAM_POLL_TIMEOUT_S for the Bot API long poll.
 */
import { runRuntime, scrubTokens } from './runtime.js';

runRuntime({ env: process.env, cwd: process.cwd() }).then(
  (code) => process.exit(code),
  (error: unknown) => {
    process.stderr.write(`animus-runtime: internal error during start-up: ${scrubTokens(error instanceof Error ? error.message : String(error))}\n`);
    process.exit(1);
  },
);

