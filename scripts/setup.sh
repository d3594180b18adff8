#!/usr/bin/env bash
# From a fresh clone to a running agent, on the embedded defaults (SQLite per agent,
# PM2 from node_modules; nothing installed globally). The README's setup command is
# `npm ci && npm run setup`; this script:
#   1. installs the dependencies exactly as locked if that was not done (better-sqlite3 compiles: ~1 min),
#   2. builds the CLI and the agent runtime,
#   3. creates the animus home (ANIMUS_HOME, default ~/animus) and its shared runtime,
#   4. deploys a demo agent in echo mode (no Letta account needed) and starts it under PM2,
#   5. sends it a message through its own queue and prints the reply.
# Safe to run again: each step skips what is already done.
set -euo pipefail
cd "$(dirname "$0")/.."

DEMO_AGENT="${ANIMUS_DEMO_AGENT:-agent-00000000-0000-4000-8000-00000000d3e0}"
animus() { node bin/animus.js "$@"; }

step() { printf '\n==> %s\n' "$*"; }

if [ ! -f node_modules/.package-lock.json ]; then
  step "Installing dependencies (npm ci)"
  npm ci --no-audit --no-fund
fi

step "Building"
npm run build

step "Preparing the animus home"
animus init

if animus list --json | grep -q "\"id\": \"${DEMO_AGENT}\""; then
  step "Demo agent ${DEMO_AGENT} already deployed"
else
  step "Deploying demo agent ${DEMO_AGENT} (echo mode)"
  animus deploy "${DEMO_AGENT}" --mode echo --name "animus demo" --description "echo agent made by scripts/setup.sh" --yes
fi

step "Starting it under PM2"
animus start "${DEMO_AGENT}"

step "Sending it a message through its queue"
animus send "${DEMO_AGENT}" "hello from setup" --wait --timeout 30

step "Fleet status"
animus status

cat <<TXT

animus is set up. The demo agent answers in echo mode; to talk to a real Letta agent:
  AGENT_API_KEY=sk-... node bin/animus.js deploy agent-<uuid> --endpoint https://api.letta.com --start
Stop the demo with:   node bin/animus.js stop ${DEMO_AGENT}
Remove it with:       node bin/animus.js remove ${DEMO_AGENT} --yes
TXT
