#!/usr/bin/env bash
# The config of an ephemeral pull-request stack (.github/workflows/pr-stack.yml): the
# self-contained example (its own LB, self-signed certificates, no protection), with the hcloud
# token and the stats password as secrets. Needs the Pulumi CLI, HCLOUD_TOKEN, STATS_PASSWORD,
# PULUMI_CONFIG_PASSPHRASE (or another secrets provider) and, for a self-managed backend,
# PULUMI_BACKEND_URL.
set -euo pipefail
cd "$(dirname "$0")/.."
stack=${1:?usage: scripts/pr-stack-config.sh <stack>}
[[ $stack =~ ^pr-[0-9]+$ ]] || { echo "pr-stack-config: $stack is not a pr-<number> stack" >&2; exit 2; }
: "${HCLOUD_TOKEN:?set HCLOUD_TOKEN}" "${STATS_PASSWORD:?set STATS_PASSWORD}"
cp examples/Pulumi.standalone-demo.yaml "Pulumi.$stack.yaml"
if [[ -n ${PULUMI_BACKEND_URL:-} ]]; then pulumi login "$PULUMI_BACKEND_URL"; else pulumi login; fi
pulumi stack select --create "$stack"
# From stdin, so neither value shows in the process list or the job log.
printf '%s' "$HCLOUD_TOKEN" | pulumi config set --secret hcloud:token --stack "$stack"
printf '%s' "$STATS_PASSWORD" | pulumi config set --secret statsPassword --stack "$stack"
