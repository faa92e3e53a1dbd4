#!/usr/bin/env bash
# On-host apply. Stages a rendered bundle (or an attached stack's routes data) as a
# new release, validates it with the binaries that will run it, swaps `current`
# atomically, reloads only what changed, probes, and rolls back to the last good release
# on any failure; once the release is committed, installs its timers and starts its jobs.
# The CLI, environment, layout and exit codes are in docs/apply.md.
set -euo pipefail
shopt -s nullglob
umask 022
export LC_ALL=C
# UTC for every timestamp; bash's printf %(...)T then needs no `date` process per line.
export TZ=UTC

readonly ROOT="${INGRESS_ROOT:-/srv/ingress}"
readonly QUADLET_DIR="${QUADLET_DIR:-/etc/containers/systemd}"
# Plain systemd units (the `timer` records' .timer files) go here, not to Quadlet.
readonly SYSTEMD_UNIT_DIR="${SYSTEMD_UNIT_DIR:-/etc/systemd/system}"
readonly SYSTEMCTL="${SYSTEMCTL:-systemctl}"
readonly NFT="${INGRESS_NFT:-nft}"
readonly KEEP="${INGRESS_KEEP_RELEASES:-5}"
readonly PROBE_TIMEOUT="${INGRESS_PROBE_TIMEOUT:-10}"
readonly LOCK_TIMEOUT="${INGRESS_LOCK_TIMEOUT:-300}"
# Each config is checked by the `check` record of the release's apply.plan. A host without
# podman (the tests) replaces one with INGRESS_VALIDATE_<UNIT>, a shell command in which {dir}
# is the release being checked and {envfile} the unit's env files as --env-file placeholders.
# Attached stacks' routes are data, rendered into config by the owner's renderer in the
# release, run in the release's node image with no network, no env and read-only mounts.
DEFAULT_RENDER_ROUTES='podman run --rm --network none --security-opt label=disable --read-only -v {dir}:{dir}:ro -v {routes}:{routes}:ro {image} node'
readonly RENDER_ROUTES="${INGRESS_RENDER_ROUTES:-$DEFAULT_RENDER_ROUTES}"
# The most an attached stack's routes.json may weigh (the renderer caps it the same way).
readonly ROUTES_MAX_BYTES=1048576

# Bundles always use the canonical on-host layout, whatever ROOT is here.
readonly B_CURRENT="srv/ingress/current/"
readonly B_QUADLET="etc/containers/systemd/"
readonly B_SYSTEMD="etc/systemd/system/"
readonly NAME_RE='^[a-z0-9][a-z0-9_-]{0,62}$'
# A unit's or timer's name: <name>.container / <name>.timer in the bundle, and in apply.plan.
readonly UNIT_RE='^[a-z0-9][a-z0-9_-]*$'

# --- output -------------------------------------------------------------------------

LOG="$ROOT/apply.log"
CERTS_LOADED="$ROOT/.certs-loaded"
# <unit> here holds the id of the release that unit's daemon last loaded at apply.sh's word
# (mark_loaded): the doctor compares it with `current` (docs/apply.md, "Which release each
# daemon loaded").
LOADED_DIR="$ROOT/.loaded"

# Values of the host's secret env files (stats.env): nothing this script prints or logs may
# carry one. Validators never see them (they get placeholders, see placeholder_env), so this
# is the second line: whatever a checker or a config still manages to echo is masked.
declare -a SECRET_VALUES=()
load_secret_values() {
  local f k v
  for f in "$ROOT"/secrets/*.env; do
    while IFS='=' read -r k v || [[ -n $k ]]; do
      [[ -n $k && $k != \#* && ${#v} -ge 4 ]] && SECRET_VALUES+=("$v")
    done <"$f" 2>/dev/null || true
  done
}
SCRUBBED=""
scrub() {
  local text=$1 v
  for v in "${SECRET_VALUES[@]}"; do text=${text//"$v"/<secret>}; done
  SCRUBBED=$text
}

log_line() {
  scrub "$*"
  printf '%(%FT%TZ)T %s\n' -1 "$SCRUBBED" >>"$LOG" 2>/dev/null || true
}
say() {
  scrub "$*"
  printf 'apply: %s\n' "$SCRUBBED" || true
  log_line "$*"
}
warn() {
  scrub "$*"
  printf 'apply: warning: %s\n' "$SCRUBBED" >&2 || true
  log_line "warning: $*"
}
# Detail lines (validator output) are indented under the message they belong to.
say_block() {
  scrub "$1"
  printf '    %s\n' "${SCRUBBED//$'\n'/$'\n'    }" >&2 || true
  log_line "$1"
}

usage() {
  cat <<'EOF'
usage: apply.sh --bundle DIR --role ingress|web
       apply.sh --routes FILE|- --stack STACK
       apply.sh --remove-routes STACK
       apply.sh --attached STACK      (sshd's forced command of an attached stack's key)
       apply.sh --switch-certs
       apply.sh --help
Applies a rendered bundle, or installs/removes an attached stack's routes (JSON data),
as a new validated release under $INGRESS_ROOT (default /srv/ingress). See docs/apply.md.
EOF
}

usage_error() {
  printf 'apply: usage error: %s\n' "$1" >&2
  usage >&2
  exit 2
}

# --- failure and rollback ------------------------------------------------------------

PHASE=prepare   # prepare -> staged -> live -> committed
FAIL_MSG=""
FAIL_DETAIL=""
PREV=""         # release id that was live before this run ("" on the first apply)
NEW=""          # release id being applied
WORK=""
STAGE=""
VDIR=""
ROUTES_STACK=""      # stack whose routes dir this run replaced or removed
ROUTES_BACKUP=""     # where its previous routes were kept ("" if it had none)
NEWCOMER=""          # stack whose routes this run installs: refusing them fails the run
declare -a CERT_UNDO=()       # "<link>\t<previous target>" of each certificate link this run moved
declare -a UNITS_TOUCHED=()   # units reloaded or restarted, to undo
declare -a UNITS_CHANGED=()   # unit files installed (added or replaced), jobs' included
declare -a UNITS_REMOVED=()   # unit files removed, jobs' included
NFT_LOADED=0

fail() {
  FAIL_MSG="$1"
  FAIL_DETAIL="${2:-}"
  exit 1
}

ctl() {
  # fd 9 holds the apply lock; nothing we start may inherit it.
  "$SYSTEMCTL" "$@" 9>&-
}

restore_routes() {
  [[ -n $ROUTES_STACK ]] || return 0
  rm -rf "${ROOT:?}/routes/$ROUTES_STACK"
  if [[ -n $ROUTES_BACKUP ]]; then
    mv -T "$ROUTES_BACKUP" "$ROOT/routes/$ROUTES_STACK"
    say "routes of stack $ROUTES_STACK restored to their previous state"
  else
    say "routes of stack $ROUTES_STACK not kept"
  fi
}

rollback() {
  local ok=1 u live
  say "rolling back to ${PREV:-no release}"
  if [[ -n $PREV ]]; then
    swap_to "$PREV" || ok=0
  else
    rm -f "$ROOT/current" || ok=0
  fi
  # What the reloads below load: PREV, or NEW still if the swap back failed.
  live=$(current_id)
  if ((${#UNITS_CHANGED[@]} + ${#UNITS_REMOVED[@]} > 0)); then
    for u in "${UNITS_CHANGED[@]}"; do
      if [[ -f $WORK/units-backup/$u.container ]]; then
        install_unit_file "$WORK/units-backup/$u.container" "$u" || ok=0
      else
        if ctl stop "$u.service"; then unmark_loaded "$u"; else ok=0; fi
        rm -f "$QUADLET_DIR/$u.container" || ok=0
      fi
    done
    for u in "${UNITS_REMOVED[@]}"; do
      install_unit_file "$WORK/units-backup/$u.container" "$u" || ok=0
    done
    ctl daemon-reload || ok=0
  fi
  if ((NFT_LOADED)) && [[ -n $PREV ]]; then
    local f
    if [[ -f $ROOT/releases/$PREV/apply.plan ]]; then
      while IFS=$'\t' read -r f _; do
        "$NFT" -f "$ROOT/releases/$PREV/$f" 9>&- || ok=0
      done < <(plan_records "$ROOT/releases/$PREV" nft)
    else
      # A release from before apply.plan (the first deploy after an upgrade rolls back to one).
      for f in "$ROOT/releases/$PREV"/nftables/*.nft; do
        "$NFT" -f "$f" 9>&- || ok=0
      done
    fi
  fi
  for u in "${UNITS_REMOVED[@]}" "${UNITS_TOUCHED[@]}"; do
    # A job of the previous release is a oneshot its timer starts: restarting it here would
    # run it (and wait for it) in the middle of a rollback. Jobs are never in UNITS_TOUCHED.
    if [[ -n $PREV ]] && is_job "$ROOT/releases/$PREV" "$u"; then continue; fi
    if [[ -f $QUADLET_DIR/$u.container ]]; then
      if is_in "$u" "${UNITS_CHANGED[@]}" "${UNITS_REMOVED[@]}"; then
        ctl restart "$u.service" || { ok=0; continue; }
      else
        ctl reload-or-restart "$u.service" || { ok=0; continue; }
      fi
      [[ -z $live ]] || mark_loaded "$u" "$live"
    fi
  done
  rm -rf "${ROOT:?}/releases/$NEW"
  restore_routes || ok=0
  ((ok))
}

on_exit() {
  local rc=$?
  trap '' HUP INT TERM
  set +e
  if [[ $PHASE != committed ]]; then
    ((rc != 0)) || rc=1
    [[ -n $FAIL_MSG ]] || FAIL_MSG="unexpected error (exit $rc) while in phase $PHASE"
    scrub "$FAIL_MSG"
    printf 'apply: error: %s\n' "$SCRUBBED" >&2
    log_line "error: $FAIL_MSG"
    [[ -z $FAIL_DETAIL ]] || say_block "$FAIL_DETAIL"
    restore_cert_links
    case $PHASE in
      certs)
        say "failed: certificate links restored; nginx was not reloaded"
        ;;
      prepare | staged)
        [[ -z $NEW ]] || rm -rf "${ROOT:?}/releases/$NEW"
        restore_routes
        say "failed: nothing changed; ${PREV:-no release} is still live"
        ;;
      live)
        if rollback; then
          say "failed: rolled back; ${PREV:-no release} is live again"
        else
          say "FAILED AND ROLLBACK INCOMPLETE: check $ROOT/current, the units and the firewall by hand"
          rc=3
        fi
        ;;
    esac
  fi
  [[ -z $STAGE ]] || rm -rf "$STAGE"
  [[ -z $VDIR ]] || rm -rf "$VDIR"
  [[ -z $WORK ]] || rm -rf "$WORK"
  exit "$rc"
}

# --- small helpers -------------------------------------------------------------------

is_in() {
  local x=$1 y
  shift
  for y in "$@"; do [[ $x == "$y" ]] && return 0; done
  return 1
}

# sed needs the search text as a regex and the replacement with & and | escaped.
sed_re() { printf '%s' "$1" | sed 's/[][\.*^$|/]/\\&/g'; }
sed_repl() { printf '%s' "$1" | sed 's/[\&|]/\\&/g'; }

swap_to() {
  ln -sfn "releases/$1" "$ROOT/.current.tmp"
  mv -Tf "$ROOT/.current.tmp" "$ROOT/current"
}

current_id() {
  local t
  t=$(readlink "$ROOT/current" 2>/dev/null) || return 0
  t=${t%/}
  [[ -d $ROOT/releases/${t##*/} ]] && printf '%s' "${t##*/}"
  return 0
}

# Written only once systemctl said the restart or reload worked, and with the release `current`
# named at that moment: a daemon reads its config through `current`, so that is what it loaded.
# A failed write costs the record, never the deploy.
mark_loaded() {
  local unit=$1 id=$2
  if ! { mkdir -p "$LOADED_DIR" && printf '%s\n' "$id" >"$LOADED_DIR/.$unit.tmp" && mv -f "$LOADED_DIR/.$unit.tmp" "$LOADED_DIR/$unit"; } 2>/dev/null; then
    warn "could not record in $LOADED_DIR/$unit that $unit.service loaded release $id"
  fi
}

# A stopped daemon runs no release.
unmark_loaded() {
  rm -f "$LOADED_DIR/$1" 2>/dev/null || warn "could not remove $LOADED_DIR/$1 ($1.service was stopped)"
}

release_field() { sed -n "s/^$2=//p" "$ROOT/releases/$1/.release" 2>/dev/null | head -n1; }

# Every file of a release as "path mode sha256", sorted; .release (metadata) excluded.
tree_manifest() {
  (
    cd "$1"
    find . -type f ! -path ./.release -printf '%P %m\n' | sort >"$WORK/tree.modes"
    cut -d' ' -f1 "$WORK/tree.modes" | xargs -r -d '\n' sha256sum -- | cut -d' ' -f1 | paste -d' ' "$WORK/tree.modes" -
  )
}

# The part of a tree manifest below one directory, or of the files named, hashed.
component_hash() {
  local m=$1 f
  shift
  for f in "$@"; do
    awk -v p="$f" 'index($0, p "/") == 1 || index($0, p " ") == 1' "$m"
  done | sha256sum | cut -d' ' -f1
}

# --- the release's apply.plan (render/apply-plan.ts) ---------------------------------

# The records of one kind in a release's apply.plan, without the kind: tab-separated fields.
plan_records() {
  local line
  [[ -f $1/apply.plan ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    [[ $line == "$2"$'\t'* ]] && printf '%s\n' "${line#*$'\t'}"
  done <"$1/apply.plan"
  return 0
}

# The release directory whose change reloads a unit ("" if none: it is only restarted).
unit_dir() {
  local name dir
  while IFS=$'\t' read -r name dir _; do
    [[ $name == "$1" ]] && { printf '%s' "$dir"; return 0; }
  done < <(plan_records "$ROOT/releases/$NEW" unit)
  return 0
}

# True when release dir $1's plan has a `job` record for unit $2: a oneshot (Type=oneshot)
# that a timer starts, never restarted, reloaded or probed by a deploy.
is_job() {
  local name
  while IFS=$'\t' read -r name _; do
    [[ $name == "$2" ]] && return 0
  done < <(plan_records "$1" job)
  return 1
}

install_unit_file() {
  local src=$1 name=$2
  mkdir -p "$QUADLET_DIR"
  install -m "$(stat -c %a "$src")" "$src" "$QUADLET_DIR/.$name.container.tmp"
  mv -f "$QUADLET_DIR/.$name.container.tmp" "$QUADLET_DIR/$name.container"
}

# --- certificates kept on the host (tls.source: host, acme) --------------------------

# The release's tls/host-certs lists "<link> <real dir> <stand-in dir> [<cert file> <key file>
# [<acme attempts file>]]" per site; the file names default to fullchain.pem and privkey.pem (certbot's), and lego names
# them <domain>.crt and <domain>.key. nginx opens <link>/<cert file> and <link>/<key file>; the
# link points at the real directory (certbot's live/<name>, lego's certificates/) once both
# files are there, at the deploy's self-signed stand-in (which holds the same two names) until
# then. One symlink per site, swapped atomically, so cert and key always match.
#
# host_cert_line parses one line into HC_LINK HC_REAL HC_STANDIN HC_CERT HC_KEY HC_ATTEMPTS. It returns 1
# for a blank or comment line and 2 for a malformed one, with HC_ERR saying why: it runs in
# cert_fingerprints' command substitution too, where `fail` would only end the subshell, so
# link_host_certs (always first) is the one that fails on it.
HC_LINK="" HC_REAL="" HC_STANDIN="" HC_CERT="" HC_KEY="" HC_ATTEMPTS="" HC_ERR=""
host_cert_line() {
  local extra f
  HC_ERR=""
  read -r HC_LINK HC_REAL HC_STANDIN HC_CERT HC_KEY HC_ATTEMPTS extra <<<"$1"
  [[ -z $HC_LINK || $HC_LINK == \#* ]] && return 1
  if [[ -z $HC_STANDIN || -n $extra || ( -n $HC_CERT && -z $HC_KEY ) ]]; then
    HC_ERR="expected \"<link> <real dir> <stand-in dir>\" and optionally \"<cert file> <key file> [<acme attempts file>]\""
    return 2
  fi
  if [[ -n $HC_ATTEMPTS && $HC_ATTEMPTS != /* ]]; then
    HC_ERR="the acme attempts file \"$HC_ATTEMPTS\" is not an absolute path"
    return 2
  fi
  HC_CERT=${HC_CERT:-fullchain.pem}
  HC_KEY=${HC_KEY:-privkey.pem}
  for f in "$HC_CERT" "$HC_KEY"; do
    # A plain name in the directory: no path, no dot-file (nor . or ..).
    if [[ ! $f =~ ^[A-Za-z0-9._-]+$ || $f == .* ]]; then
      HC_ERR="file name \"$f\" is not a plain name (letters, digits, . _ -, not starting with .)"
      return 2
    fi
  done
  return 0
}

# A real certificate is never linked where it is written: a renewal writes the certificate and
# the key one after the other (lego does) and may be cut off between them, and nginx would then
# load a pair that does not match, or fail to start. So the link points at a copy of the pair,
# $CERT_COPIES/<name>/<sha256 of both>/, made once the key is checked to be the certificate's.
# A pair that does not match (yet) is not taken, and a link never goes back from a real
# certificate to the stand-in: it keeps the last good copy.
CERT_COPIES="$ROOT/secrets/tls/copies"

# The public key of a certificate or of a private key, hashed; empty when the file is neither.
public_key_of() {
  local out
  if [[ $1 == cert ]]; then out=$(openssl x509 -noout -pubkey -in "$2" 2>/dev/null) || return 0
  else out=$(openssl pkey -pubout -in "$2" 2>/dev/null) || return 0; fi
  [[ -n $out ]] && printf '%s' "$out" | sha256sum | cut -d' ' -f1
  return 0
}

# --- what the health check says about a certificate ------------------------------------
# nginx cannot describe the certificate it serves, so each site's health location includes
# $CERT_INFO beside its certificate: two add_header lines (issuer and names; expiry in epoch
# seconds) that both LB engines show on their stats page (contract/certificate-info.ts). Beside
# the certificate, it is read at the same reload: the header describes what is being served.
# Text from a certificate is reduced to characters that mean nothing to nginx (no quote, $, ;,
# brace or backslash) before it enters nginx's config.
readonly CERT_INFO=ingress-info.conf
readonly ACME_STATUS_DIR="$ROOT/secrets/tls/acme-status"

harmless() { printf '%s' "$1" | tr -cd 'A-Za-z0-9 .,:*@_()=/+-' | cut -c1-300; }

# The add_header lines for certificate file $1; nothing when it is not a certificate.
cert_info_text() {
  local out line subject="" issuer="" end="" names="" cn expires
  out=$(openssl x509 -noout -subject -issuer -enddate -ext subjectAltName -nameopt RFC2253 -in "$1" 2>/dev/null) || return 0
  while IFS= read -r line; do
    case $line in
      subject=*) subject=${line#subject=} ;;
      issuer=*) issuer=${line#issuer=} ;;
      notAfter=*) end=${line#notAfter=} ;;
      *DNS:*) names=$(printf '%s' "$line" | grep -o 'DNS:[^, ]*' | cut -c5- | paste -sd, -) ;;
    esac
  done <<<"$out"
  expires=$(date -u -d "$end" +%s 2>/dev/null) || return 0
  cn=$(printf '%s' "$subject" | grep -o 'CN=[^,]*' | head -n1 | cut -c4-)
  [[ -n $names ]] || names=$cn
  local who
  who=$(printf '%s' "$issuer" | grep -o 'CN=[^,]*' | head -n1 | cut -c4-)
  [[ -n $who ]] || who=$(printf '%s' "$issuer" | grep -o 'O=[^,]*' | head -n1 | cut -c3-)
  [[ -n $who ]] || who=$issuer
  [[ $subject != "$issuer" ]] || who="$who (self-signed)"
  printf '# Written by apply.sh from the certificate beside it; the site'"'"'s health location includes it.\n'
  printf 'add_header x-ingress-certificate "issuer %s; names %s" always;\n' "$(harmless "$who")" "$(harmless "$names")"
  printf 'add_header x-ingress-certificate-expires "%s" always;\n' "$expires"
}

# Writes $1/$CERT_INFO for certificate $1/$2 when it says something new. Whether nginx has
# read it is cert_fingerprints' business (a run that fails after this write reloads next time).
write_cert_info() {
  local dir=$1 cert=$2 text
  text=$(cert_info_text "$dir/$cert")
  if [[ -z $text ]]; then
    rm -f -- "$dir/$CERT_INFO"
    return 0
  fi
  [[ $text != "$(cat -- "$dir/$CERT_INFO" 2>/dev/null)" ]] || return 0
  printf '%s\n' "$text" >"$dir/.$CERT_INFO.tmp" && chmod 0644 "$dir/.$CERT_INFO.tmp" && mv -f "$dir/.$CERT_INFO.tmp" "$dir/$CERT_INFO"
}

# The ACME job's state for site $1 from its attempts file $2 ("<failed runs> <next epoch s>
# <settings>", renew.sh's), as the add_header line its health location includes. Only numbers
# are taken from the file: the job writes it, and must not reach nginx's config.
write_acme_status() {
  local name=$1 attempts=$2 file=$ACME_STATUS_DIR/$1.conf failures="" next="" text
  if [[ ! -e $attempts && ! -L $attempts ]]; then
    text="no run yet"
  elif [[ -L $attempts || ! -f $attempts || -L ${attempts%/*} ]]; then
    # The job writes this directory: a FIFO, a device or a link would hang or mislead a read as root.
    text="unreadable attempts record ($attempts is not a plain file)"
  else
    IFS=' ' read -r failures next _ 2>/dev/null < <(head -c 256 -- "$attempts" 2>/dev/null) || true
    if [[ ! $failures =~ ^(0|[1-9][0-9]{0,5})$ || ! $next =~ ^[1-9][0-9]{0,11}$ ]]; then
      text="unreadable attempts record ($attempts)"
    elif ((failures == 0)); then
      text="ok"
    else
      text="failing: $failures run(s), next $(date -u -d "@$next" +%Y-%m-%dT%H:%MZ)"
    fi
  fi
  text=$(printf '# Written by apply.sh from %s.\nadd_header x-ingress-acme "%s" always;' "$attempts" "$(harmless "$text")")
  [[ $text != "$(cat -- "$file" 2>/dev/null)" ]] || return 0
  mkdir -p "${file%/*}"
  printf '%s\n' "$text" >"$file.tmp" && mv -f "$file.tmp" "$file"
}

# The certificates the release's nginx opens under $ROOT/secrets, one path a line.
nginx_cert_paths() {
  [[ -d $1/nginx ]] || return 0
  grep -rhoE '^[[:space:]]*ssl_certificate[[:space:]]+[^;[:space:]]+;' "$1/nginx" | sed -E 's/^[[:space:]]*ssl_certificate[[:space:]]+//; s/;$//' | sort -u |
    while IFS= read -r path; do
      [[ $path == "$ROOT/secrets/"* && $path != *..* && -f $path ]] && printf '%s\n' "$path"
    done
  return 0
}

# Every certificate the release's nginx opens under $ROOT/secrets (through a link: its target)
# gets its $CERT_INFO, and every ACME site its status. Run before nginx is checked and (re)loaded.
refresh_cert_info() {
  local rel=$1 path line
  while IFS= read -r path; do
    write_cert_info "${path%/*}" "${path##*/}"
  done < <(nginx_cert_paths "$rel")
  [[ -f $rel/tls/host-certs ]] || return 0
  while IFS= read -r line || [[ -n $line ]]; do
    host_cert_line "$line" || continue
    [[ -z $HC_ATTEMPTS ]] || write_acme_status "${HC_LINK##*/}" "$HC_ATTEMPTS"
  done <"$rel/tls/host-certs"
}

# Sets COPY to the checked copy of <dir>/<cert> and <dir>/<key> for site <name>, as files
# <as cert> and <as key> (what nginx opens), made if new; to "" when there is no pair, and
# COPY_ERR to why when there is one that does not match.
COPY="" COPY_ERR=""
cert_copy() {
  local dir=$1 cert=$2 key=$3 name=$4 as_cert=$5 as_key=$6 sum tmp want got
  COPY="" COPY_ERR=""
  [[ -s $dir/$cert && -s $dir/$key ]] || return 0
  sum=$({ printf '%s %s\n' "$as_cert" "$as_key"; cat -- "$dir/$cert" "$dir/$key"; } | sha256sum | cut -c1-16)
  if [[ -d $CERT_COPIES/$name/$sum ]]; then COPY=$CERT_COPIES/$name/$sum; return 0; fi
  mkdir -p "$CERT_COPIES/$name"
  chmod 0700 "$CERT_COPIES"
  tmp=$(mktemp -d "$CERT_COPIES/$name/.new.XXXXXX")
  # cp follows symlinks: certbot's live/ files point into archive/.
  cp -- "$dir/$cert" "$tmp/$as_cert"
  cp -- "$dir/$key" "$tmp/$as_key"
  chmod 0644 "$tmp/$as_cert"
  chmod 0600 "$tmp/$as_key"
  want=$(public_key_of cert "$tmp/$as_cert")
  got=$(public_key_of key "$tmp/$as_key")
  if [[ -z $want || $want != "$got" ]]; then
    rm -rf "$tmp"
    COPY_ERR="$dir/$key is not the key of $dir/$cert (being written, or damaged)"
    return 0
  fi
  write_cert_info "$tmp" "$as_cert"
  chmod 0755 "$tmp"
  mv -T "$tmp" "$CERT_COPIES/$name/$sum"
  COPY=$CERT_COPIES/$name/$sum
}

# Copies of site <name> that no link needs: all but its link's target and what it was before this run.
prune_cert_copies() {
  local name=$1 keep1=$2 keep2=$3 d
  for d in "$CERT_COPIES/$name"/*/; do
    d=${d%/}
    [[ $d == "$keep1" || $d == "$keep2" ]] || rm -rf -- "$d"
  done
}

link_host_certs() {
  local list=$1/tls/host-certs line n=0 rc link real standin target old name
  local -a sites=()
  [[ -f $list ]] || return 0
  # Every line is checked before any link moves.
  while IFS= read -r line || [[ -n $line ]]; do
    n=$((n + 1))
    rc=0
    host_cert_line "$line" || rc=$?
    ((rc != 1)) || continue
    ((rc == 0)) || fail "tls/host-certs line $n ($line): $HC_ERR"
    [[ $HC_LINK == "$ROOT"/* || $HC_LINK == /srv/ingress/* ]] || fail "tls/host-certs line $n: link $HC_LINK is not under $ROOT"
    sites+=("$line")
  done <"$list"
  for line in "${sites[@]}"; do
    host_cert_line "$line"
    link=$HC_LINK real=$HC_REAL standin=$HC_STANDIN name=${HC_LINK##*/}
    old=$(readlink "$link" 2>/dev/null || true)
    cert_copy "$real" "$HC_CERT" "$HC_KEY" "$name" "$HC_CERT" "$HC_KEY"
    [[ -z $COPY_ERR ]] || warn "certificate $link: $COPY_ERR; it keeps what it has"
    if [[ -n $COPY ]]; then
      target=$COPY
    elif [[ $old == "$CERT_COPIES/$name/"* && -s $old/$HC_CERT && -s $old/$HC_KEY ]]; then
      target=$old
    elif [[ -n $old && $old != "$standin" && -d $old ]]; then
      # The real certificate of an earlier release (certbot's, before the site moved to ACME):
      # kept, under the names nginx now opens, until the new source has one.
      cert_copy "$old" "$HC_CERT" "$HC_KEY" "$name" "$HC_CERT" "$HC_KEY"
      [[ -n $COPY ]] || cert_copy "$old" fullchain.pem privkey.pem "$name" "$HC_CERT" "$HC_KEY"
      target=${COPY:-$standin}
    else
      target=$standin
    fi
    prune_cert_copies "$name" "$target" "$old"
    [[ $old != "$target" ]] || continue
    CERT_UNDO+=("$link"$'\t'"$old")
    mkdir -p "${link%/*}"
    ln -sfn "$target" "$link.tmp"
    mv -Tf "$link.tmp" "$link"
    if [[ $target == "$standin" ]]; then say "certificate $link -> self-signed stand-in (no $HC_CERT and $HC_KEY in $real yet)"; else say "certificate $link -> $real (its checked copy ${target#"$ROOT"/})"; fi
  done
}

restore_cert_links() {
  local entry link old
  for entry in "${CERT_UNDO[@]}"; do
    link=${entry%%$'\t'*}
    old=${entry#*$'\t'}
    if [[ -n $old ]]; then
      ln -sfn "$old" "$link.tmp" && mv -Tf "$link.tmp" "$link"
    else
      rm -f "$link"
    fi
  done
  CERT_UNDO=()
}

# What nginx last loaded: "<link> <sha256 of the cert file> <sha256 of the key file>" per
# host-kept certificate, written whenever nginx starts or reloads with them. A renewal
# replaces the files behind a link that does not move; this is how it is noticed.
#
# Also every certificate nginx opens under $ROOT/secrets with the $CERT_INFO beside it, and every
# ACME status: a certificate the deploy's secrets step replaced, or a health header nginx has not
# read yet (a run that failed after writing it), differs from the record and brings a reload.
sha_of() { sha256sum -- "$1" 2>/dev/null | cut -d' ' -f1; }
cert_fingerprints() {
  local list=$1/tls/host-certs line path f
  if [[ -f $list ]]; then
    while IFS= read -r line || [[ -n $line ]]; do
      host_cert_line "$line" || continue
      printf '%s %s %s\n' "$HC_LINK" "$(sha_of "$HC_LINK/$HC_CERT")" "$(sha_of "$HC_LINK/$HC_KEY")"
    done <"$list"
  fi
  while IFS= read -r path; do
    printf '%s %s %s\n' "$path" "$(sha_of "$path")" "$(sha_of "${path%/*}/$CERT_INFO")"
  done < <(nginx_cert_paths "$1")
  for f in "$ACME_STATUS_DIR"/*.conf; do
    [[ ! -f $f ]] || printf '%s %s\n' "$f" "$(sha_of "$f")"
  done
  return 0
}

# Records fingerprints taken before nginx was told to (re)load: a certificate renewed while it
# reloads then differs from the record, and the next run reloads again. Recording after the
# reload could claim a certificate nginx never read.
record_loaded_certs() {
  printf '%s\n' "$1" >"$CERTS_LOADED.tmp" && mv -f "$CERTS_LOADED.tmp" "$CERTS_LOADED"
}

# Points the links of release $1 (live) where they belong and reloads nginx when a link moved
# or a certificate changed since nginx loaded it; checks the release with nginx first.
refresh_certs() {
  local rel=$1 why fp
  [[ -f $ROOT/releases/$rel/tls/host-certs || -d $ROOT/releases/$rel/nginx ]] || return 0
  PHASE=certs
  link_host_certs "$ROOT/releases/$rel"
  refresh_cert_info "$ROOT/releases/$rel"
  fp=$(cert_fingerprints "$ROOT/releases/$rel")
  if ((${#CERT_UNDO[@]} > 0)); then
    why="the switched certificates"
  elif [[ $fp != "$(cat "$CERTS_LOADED" 2>/dev/null)" ]]; then
    why="the changed certificates or health headers"
    say "a certificate or its health header changed since nginx loaded it (renewed in place, an ACME run, or never loaded)"
  else
    PHASE=committed
    say "unchanged: every certificate link already points where it should, and nginx has loaded them"
    return 0
  fi
  NEW=$rel
  validate_release
  NEW=""
  ctl reload nginx.service || fail "systemctl reload nginx.service failed"
  mark_loaded nginx "$rel"
  record_loaded_certs "$fp" || warn "could not record which certificates nginx loaded"
  PHASE=committed
  say "nginx reloaded with $why"
}

# --switch-certs: run after a certificate appears or is renewed (certbot's --deploy-hook).
switch_certs() {
  PREV=$(current_id)
  if [[ -z $PREV ]]; then
    PHASE=committed
    say "no live release yet: the first deploy links the certificates"
    return 0
  fi
  refresh_certs "$PREV"
  PHASE=committed
}

# --- bundle --------------------------------------------------------------------------

# Checks MANIFEST ("path mode sha256" per line) against the bundle and copies the files
# into the staging directory: srv/ingress/current/X -> X, etc/containers/systemd/U -> .units/U,
# etc/systemd/system/T -> .timers/T.
stage_bundle() {
  local b=$1 line path mode sum extra rest
  local -A want=() mode_of=()
  local -a paths=()
  [[ -d $b ]] || fail "bundle $b is not a directory"
  [[ -f $b/MANIFEST ]] || fail "bundle $b has no MANIFEST"
  while IFS= read -r line || [[ -n $line ]]; do
    [[ -z $line || $line == \#* ]] && continue
    read -r path mode sum extra <<<"$line"
    [[ -n $sum && -z ${extra:-} ]] || fail "MANIFEST: malformed line: $line"
    [[ $mode =~ ^0?[0-7]{3}$ ]] || fail "MANIFEST: bad mode $mode for $path"
    [[ $sum =~ ^[0-9a-f]{64}$ ]] || fail "MANIFEST: bad sha256 for $path"
    # No absolute paths, no "..", no dot-files (.units, .timers and .release are apply.sh's own).
    [[ $path =~ ^[A-Za-z0-9_@+-][A-Za-z0-9._@+/-]*$ && ! $path =~ (^|/)\. && ! $path =~ //|/$ ]] ||
      fail "MANIFEST: path not allowed: $path"
    [[ -z ${want[$path]:-} ]] || fail "MANIFEST: $path is listed twice"
    [[ -f $b/$path && ! -L $b/$path ]] || fail "bundle file missing or not a regular file: $path"
    want[$path]=$sum
    mode_of[$path]=$mode
    paths+=("$path")
  done <"$b/MANIFEST"
  ((${#paths[@]} > 0)) || fail "MANIFEST of $b lists no files"
  while read -r sum path; do
    [[ $sum == "${want[$path]}" ]] || fail "bundle file does not match MANIFEST (sha256): $path"
  done < <(cd "$b" && sha256sum -- "${paths[@]}")
  while IFS= read -r path; do
    [[ $path == MANIFEST || -n ${want[$path]:-} ]] || fail "bundle file not in MANIFEST: $path"
  done < <(cd "$b" && find . \( -type f -o -type l \) -printf '%P\n')
  for path in "${paths[@]}"; do
    case $path in
      apply.sh) continue ;;
      "$B_CURRENT"*) rest=${path#"$B_CURRENT"} ;;
      "$B_QUADLET"*)
        rest=${path#"$B_QUADLET"}
        [[ $rest =~ ^[a-z0-9][a-z0-9_-]*\.container$ ]] || fail "bundle: only <name>.container units are supported: $path"
        rest=".units/$rest"
        ;;
      "$B_SYSTEMD"*)
        rest=${path#"$B_SYSTEMD"}
        [[ $rest =~ ^[a-z0-9][a-z0-9_-]*\.timer$ ]] || fail "bundle: only <name>.timer units are supported in ${B_SYSTEMD}: $path"
        rest=".timers/$rest"
        ;;
      *) fail "bundle: path outside ${B_CURRENT}, ${B_QUADLET} and ${B_SYSTEMD}: $path" ;;
    esac
    install -D -m "${mode_of[$path]}" "$b/$path" "$STAGE/$rest"
  done
}

# The live release minus what was merged into it, as the base of a routes-only rebuild.
stage_from_current() {
  local cur=$ROOT/releases/$PREV stack path
  cp -a "$cur/." "$STAGE/"
  rm -f "$STAGE/.release"
  while IFS=$'\t' read -r path _; do
    rm -f "${STAGE:?}/$path"
  done < <(plan_records "$STAGE" map)
  while read -r stack path; do
    rm -f "${STAGE:?}/$path"
  done < <(sed -n 's/^fragment=//p' "$cur/.release")
}

check_role() {
  local out dir f u units jobs timers checks nfts
  [[ -f $STAGE/apply.plan ]] || fail "the bundle has no ${B_CURRENT}apply.plan (what to check, reload and probe; render/apply-plan.ts)"
  # A plan that leaves a unit unchecked, a timer uninstalled or a firewall file unloaded fails
  # here, not open later.
  units=$'\n'$(plan_records "$STAGE" unit)$'\n'
  jobs=$'\n'$(plan_records "$STAGE" job)$'\n'
  timers=$'\n'$(plan_records "$STAGE" timer | cut -f1)$'\n'
  checks=$'\n'$(plan_records "$STAGE" check)$'\n'
  nfts=$'\n'$(plan_records "$STAGE" nft)$'\n'
  for f in "$STAGE"/.units/*.container; do
    u=${f##*/}
    u=${u%.container}
    if [[ $units == *$'\n'"$u"$'\t'* ]]; then
      [[ $jobs != *$'\n'"$u"$'\t'* ]] || fail "apply.plan has both a \"unit\" and a \"job\" record for $u.container: a daemon to reload, or a oneshot job to start, not both"
    else
      [[ $jobs == *$'\n'"$u"$'\t'* ]] || fail "the bundle's unit $u.container has no \"unit\" or \"job\" record in apply.plan"
    fi
    [[ $checks == *$'\n'"$u"$'\t'* ]] || fail "the bundle's unit $u.container has no \"check\" record in apply.plan: nothing would check its config"
  done
  while IFS=$'\t' read -r u dir _; do
    [[ $u =~ $UNIT_RE && -f $STAGE/.units/$u.container ]] ||
      fail "the \"job\" record ${u:0:80} in apply.plan names no unit of the bundle (no ${B_QUADLET}${u:0:80}.container)"
    [[ -n $dir ]] || fail "the \"job\" record $u in apply.plan names no directory (job <name> <dir>)"
  done < <(plan_records "$STAGE" job)
  for f in "$STAGE"/.timers/*.timer; do
    u=${f##*/}
    u=${u%.timer}
    [[ $timers == *$'\n'"$u"$'\n'* ]] || fail "the bundle's timer $u.timer has no \"timer\" record in apply.plan: it would never be installed"
  done
  while IFS=$'\t' read -r u _; do
    [[ $u =~ $UNIT_RE && -f $STAGE/.timers/$u.timer ]] ||
      fail "the \"timer\" record ${u:0:80} in apply.plan has no ${B_SYSTEMD}${u:0:80}.timer in the bundle"
  done < <(plan_records "$STAGE" timer)
  for f in "$STAGE"/nftables/*.nft; do
    [[ $nfts == *$'\n'"nftables/${f##*/}"$'\t'* ]] || fail "nftables/${f##*/} has no \"nft\" record in apply.plan: it would never be loaded"
  done
  while IFS=$'\t' read -r out dir _; do
    [[ ! -e $STAGE/$out ]] || fail "bundle must not contain $out: apply.sh assembles it from $dir/*.map"
  done < <(plan_records "$STAGE" map)
  case $1 in
    ingress)
      [[ -f $STAGE/haproxy/haproxy.cfg || -f $STAGE/proxy/proxy.json ]] ||
        fail "role ingress needs ${B_CURRENT}haproxy/haproxy.cfg or ${B_CURRENT}proxy/proxy.json in the bundle" ;;
    web)
      [[ -f $STAGE/nginx/nginx.conf ]] || fail "role web needs ${B_CURRENT}nginx/nginx.conf in the bundle" ;;
  esac
}

# --- routes of attached stacks -------------------------------------------------------

# Attached stacks push data (routes/<stack>/routes.json), never config. The owner's renderer in
# the release (attached/render-routes.js) checks each stack's data against the owner's policy
# (attached/policy.json) and prints the config files of the engine this release runs; they are
# installed here. A stack it refuses is left out with a warning, so the owner's deploy goes on;
# when that stack is the NEWCOMER (the one being pushed), the push fails and nothing changes.
merge_fragments() {
  local dirs=("$ROOT"/routes/*/) image t rc=0 path b64 stack
  ((${#dirs[@]} > 0)) || return 0
  if [[ ! -f $STAGE/attached/policy.json ]]; then
    [[ -z $NEWCOMER ]] || fail "this LB lets no stack attach (its stack lists none in ingress.attachedStacks): routes of stack $NEWCOMER refused"
    warn "routes in $ROOT/routes are not served: this LB's stack lets no stack attach (ingress.attachedStacks); remove them with apply.sh --remove-routes <stack>"
    return 0
  fi
  [[ -f $STAGE/attached/render-routes.js ]] || fail "the release has attached/policy.json but no attached/render-routes.js to apply it with"
  image=$(head -n1 "$STAGE/attached/node-image" 2>/dev/null || true)
  [[ -n $image ]] || fail "the release has attached/policy.json but no attached/node-image to render routes in"
  t=${RENDER_ROUTES//\{dir\}/$(printf '%q' "$STAGE")}
  t=${t//\{routes\}/$(printf '%q' "$ROOT/routes")}
  t=${t//\{image\}/$(printf '%q' "$image")}
  t+=" $(printf '%q ' "$STAGE/attached/render-routes.js" --policy "$STAGE/attached/policy.json" --routes "$ROOT/routes")"
  [[ -z $NEWCOMER ]] || t+=" --newcomer $(printf '%q' "$NEWCOMER")"
  bash -c "$t" >"$WORK/rendered-routes" 2>"$WORK/refused-routes" 9>&- || rc=$?
  case $rc in
    0) ;;
    1) fail "routes of stack $NEWCOMER refused by this LB's policy; nothing changed:" "$(grep -F "stack $NEWCOMER: " "$WORK/refused-routes" || true)" ;;
    *) fail "the routes renderer failed (exit $rc)" "$(<"$WORK/refused-routes")" ;;
  esac
  if [[ -s $WORK/refused-routes ]]; then
    # All of it to apply.log; on the console, an attached stack's push sees none of the other
    # stacks' names (the owner's deploy sees every stack).
    log_line "routes left out by this LB's policy: $(<"$WORK/refused-routes")"
    if [[ -z $NEWCOMER ]]; then
      warn "routes of attached stacks left out (not served) by this LB's policy:"
      say_block "$(<"$WORK/refused-routes")"
    else
      warn "routes of other attached stacks are left out by this LB's policy (see $LOG)"
    fi
  fi
  while IFS=$'\t' read -r path b64 || [[ -n $path ]]; do
    [[ $path =~ ^(haproxy|proxy)/routes\.d/([a-z0-9][a-z0-9_-]{0,62})\.(cfg|map|json)$ ]] ||
      fail "the routes renderer printed a path it may not write: ${path:0:80}"
    stack=${BASH_REMATCH[2]}
    [[ -d $ROOT/routes/$stack ]] || fail "the routes renderer wrote $path for stack $stack, which pushed no routes"
    [[ -d $STAGE/${path%%/*} ]] || fail "the routes renderer wrote $path, for an engine this release does not run"
    [[ ! -e $STAGE/$path ]] || fail "route file $path of attached stack $stack collides with the bundle's own"
    mkdir -p "$STAGE/${path%/*}"
    printf '%s' "$b64" | base64 -d >"$STAGE/$path" 2>/dev/null || fail "the routes renderer printed $path in a form that is not base64"
    chmod 0644 "$STAGE/$path"
    printf 'fragment=%s %s\n' "$stack" "$path" >>"$WORK/fragments"
  done <"$WORK/rendered-routes"
}

# Each `map` record: <output> = every <dir>/<stack>.map, in name order. A hostname claimed
# twice is refused, naming both stacks: a silent override would send one stack's users elsewhere.
assemble_maps() {
  local out dir
  while IFS=$'\t' read -r out dir _; do
    assemble_map "$out" "$dir"
  done < <(plan_records "$STAGE" map)
}

assemble_map() {
  local out=$STAGE/$1 dir=$STAGE/$2 errors
  mkdir -p "$dir"
  local maps=("$dir"/*.map)
  if ((${#maps[@]} == 0)); then
    : >"$out"
    return 0
  fi
  if ! errors=$(awk '
    FNR == 1 { stack = FILENAME; sub(/^.*\//, "", stack); sub(/\.map$/, "", stack) }
    { sub(/#.*/, "") }
    NF == 0 { next }
    NF != 2 { printf "routes.d/%s.map line %d: expected \"<hostname> <backend>\"\n", stack, FNR > "/dev/stderr"; bad = 1; next }
    {
      host = tolower($1)
      if (host in owner) {
        if (owner[host] == stack) printf "hostname \"%s\" is listed twice by stack \"%s\"\n", host, stack > "/dev/stderr"
        else printf "hostname \"%s\" is claimed by stack \"%s\" and stack \"%s\"; remove it from one of them\n", host, owner[host], stack > "/dev/stderr"
        bad = 1; next
      }
      owner[host] = stack
      print host, $2 > OUT
    }
    END { exit bad }
  ' OUT="$out" "${maps[@]}" 2>&1 >/dev/null); then
    fail "routes cannot be assembled" "$errors"
  fi
}

# --- validation ----------------------------------------------------------------------

# The command of one `check` record: its argv with {dir} -> the validation copy and a word
# {env:PATH} -> a placeholder copy of PATH, each word quoted, so nothing in it is shell syntax;
# or INGRESS_VALIDATE_<UNIT> with {dir} and {envfile}. Sets CMD: `fail` must not run in a
# command substitution, where it would only end the subshell.
CMD=""
check_command() {
  local name=$1 rest=$2 w var envs="" quoted=""
  local -a words=()
  IFS=$'\t' read -r -a words <<<"$rest"
  ((${#words[@]} > 0)) || fail "apply.plan: the check of $name has no command"
  for w in "${words[@]}"; do
    if [[ $w =~ ^\{env:(/[^}]+)\}$ ]]; then
      placeholder_env "${BASH_REMATCH[1]}"
      w=$PLACEHOLDER_ENV
      envs+=" --env-file $(printf '%q' "$w")"
    fi
    quoted+="${quoted:+ }$(printf '%q' "${w//\{dir\}/$VDIR}")"
  done
  var=INGRESS_VALIDATE_${name^^}
  if [[ -n ${!var:-} ]]; then
    CMD=${!var//\{dir\}/$(printf '%q' "$VDIR")}
    CMD=${CMD//\{envfile\}/$envs}
  else
    CMD=$quoted
  fi
}

# A copy of an env file with every value replaced by a placeholder of its own: the checks
# parse the configs as the service will, but a config that echoes a variable (an error message
# quoting "${STATS_PASSWORD}") can only echo the placeholder. A missing file stays missing,
# so the check fails as the service would.
PLACEHOLDER_ENV=""
placeholder_env() {
  local src=$1 k v n
  if [[ ! -f $src ]]; then
    PLACEHOLDER_ENV=$src
    return 0
  fi
  n=$(find "$WORK" -maxdepth 1 -name 'placeholder-*.env' | wc -l)
  PLACEHOLDER_ENV=$WORK/placeholder-$n.env
  : >"$PLACEHOLDER_ENV"
  while IFS='=' read -r k v || [[ -n $k ]]; do
    if [[ -z $k || $k == \#* ]]; then printf '%s\n' "$k" >>"$PLACEHOLDER_ENV"; continue; fi
    printf '%s=placeholder-for-%s\n' "$k" "$k" >>"$PLACEHOLDER_ENV"
  done <"$src"
}

# Runs one check; on failure names the release file and shows the checker's output with
# the validation copy's paths mapped back to the paths the configs use.
run_check() {
  local what=$1 file=$2 cmd=$3 out rc=0
  out=$(bash -c "$cmd" 2>&1 9>&-) || rc=$?
  if ((rc != 0)); then
    out=${out//"$VDIR/"/"$ROOT/current/"}
    fail "$what rejected release $NEW (${B_CURRENT}$file), exit $rc:" "$out"
  fi
  say "$what: $file ok"
}

# Configs name their files as $ROOT/current/...; `current` must not point at an unchecked
# release even for a moment (a crash-restart or a dropped ssh session would leave it
# live), so the release is checked as a copy whose paths say the copy's own place.
validate_release() {
  local rel=$ROOT/releases/$NEW f
  VDIR=$ROOT/.validate/$NEW
  rm -rf "$VDIR"
  mkdir -p "$VDIR"
  cp -a "$rel/." "$VDIR/"
  find "$VDIR" -type f ! -path "$VDIR/.units/*" ! -path "$VDIR/.timers/*" -print0 |
    xargs -0 -r sed -i "s|$(sed_re "$ROOT/current/")|$(sed_repl "$VDIR/")|g"
  local name file rest dir
  # podman refuses to bind a source that does not exist: a fresh server has no /etc/letsencrypt.
  while IFS=$'\t' read -r dir _; do
    [[ $dir == /* && $dir != *..* && $dir =~ ^[A-Za-z0-9_./-]+$ ]] || fail "apply.plan: bad volume path: ${dir:0:80}"
    [[ -e $dir ]] && continue
    if ! { mkdir -p "$dir" && chmod 0755 "$dir"; }; then fail "cannot create $dir, which a unit binds"; fi
    say "created $dir (a unit binds it; it did not exist on this host)"
  done < <(plan_records "$rel" volume)
  while IFS=$'\t' read -r name file rest; do
    [[ $name =~ ^[a-z0-9_]+$ ]] || fail "apply.plan: bad unit name in a check record: ${name:0:80}"
    check_command "$name" "$rest"
    run_check "$name" "$file" "$CMD"
  done < <(plan_records "$rel" check)
  while IFS=$'\t' read -r f _; do
    run_check nftables "$f" "$(printf '%q -c -f %q' "$NFT" "$VDIR/$f")"
  done < <(plan_records "$rel" nft)
  rm -rf "$VDIR"
  VDIR=""
}

# --- going live ----------------------------------------------------------------------

# Unit files: install changed ones, remove ones the previous release had and this one
# drops; daemon-reload once if anything changed. Then restart changed units (a unit
# change cannot be reloaded) and reload-or-restart units whose config directory changed.
# Jobs (`job` records) are installed and removed alike, but never restarted or reloaded:
# start_jobs runs them once the release is committed.
apply_units() {
  local rel=$ROOT/releases/$NEW prev_m=$WORK/prev.manifest new_m=$WORK/new.manifest f u dir
  local -a units=() restart=() reload=()
  mkdir -p "$WORK/units-backup"
  for f in "$rel"/.units/*.container; do
    u=${f##*/}
    u=${u%.container}
    units+=("$u")
    if ! cmp -s "$f" "$QUADLET_DIR/$u.container"; then
      [[ ! -f $QUADLET_DIR/$u.container ]] || cp -p "$QUADLET_DIR/$u.container" "$WORK/units-backup/"
      UNITS_CHANGED+=("$u")
    fi
  done
  if [[ -n $PREV ]]; then
    for f in "$ROOT/releases/$PREV"/.units/*.container; do
      u=${f##*/}
      u=${u%.container}
      if ! is_in "$u" "${units[@]}" && [[ -f $QUADLET_DIR/$u.container ]]; then
        cp -p "$QUADLET_DIR/$u.container" "$WORK/units-backup/"
        UNITS_REMOVED+=("$u")
      fi
    done
  fi
  for u in "${UNITS_REMOVED[@]}"; do
    say "stopping $u.service (unit dropped from the bundle)"
    ctl stop "$u.service" || fail "systemctl stop $u.service failed"
    unmark_loaded "$u"
    rm -f "$QUADLET_DIR/$u.container"
  done
  for u in "${UNITS_CHANGED[@]}"; do
    say "installing unit $u.container"
    install_unit_file "$rel/.units/$u.container" "$u"
  done
  if ((${#UNITS_CHANGED[@]} + ${#UNITS_REMOVED[@]} > 0)); then
    ctl daemon-reload || fail "systemctl daemon-reload failed"
  fi
  for u in "${units[@]}"; do
    if is_job "$rel" "$u"; then
      continue
    elif is_in "$u" "${UNITS_CHANGED[@]}"; then
      restart+=("$u")
    else
      dir=$(unit_dir "$u")
      if [[ -n $dir ]] && { [[ -z $PREV ]] || [[ $(component_hash "$prev_m" "$dir") != "$(component_hash "$new_m" "$dir")" ]]; }; then
        reload+=("$u")
      fi
    fi
  done
  for u in "${restart[@]}"; do
    UNITS_TOUCHED+=("$u")
    say "restarting $u.service (unit changed)"
    ctl restart "$u.service" || fail "systemctl restart $u.service failed"
    mark_loaded "$u" "$NEW"
  done
  for u in "${reload[@]}"; do
    UNITS_TOUCHED+=("$u")
    say "reloading $u.service"
    ctl reload-or-restart "$u.service" || fail "systemctl reload-or-restart $u.service failed"
    mark_loaded "$u" "$NEW"
  done
}

apply_nftables() {
  local rel=$ROOT/releases/$NEW f out
  local -a files=()
  while IFS=$'\t' read -r f _; do files+=("$f"); done < <(plan_records "$rel" nft)
  ((${#files[@]} > 0)) || return 0
  # Unchanged rules are not reloaded, unless a table went missing (a `flush ruleset` by the
  # distribution's nftables.service, say): then the release's rules go back in.
  if [[ -n $PREV ]] && [[ $(component_hash "$WORK/prev.manifest" "${files[@]}") == "$(component_hash "$WORK/new.manifest" "${files[@]}")" ]] && firewall_tables_loaded; then
    return 0
  fi
  NFT_LOADED=1
  for f in "${files[@]}"; do
    say "loading $f"
    out=$("$NFT" -f "$ROOT/current/$f" 2>&1 9>&-) || fail "nft -f $f failed" "$out"
  done
}

# A TCP connect to every listener, retried until INGRESS_PROBE_TIMEOUT: enough to see a
# listener that did not come back after a reload. PROXY listeners would reject a bare TLS
# hello, so a connect is the probe that fits every port.
probe() {
  local deadline=$((SECONDS + PROBE_TIMEOUT)) addr port
  while read -r addr port; do
    # shellcheck disable=SC2016 # $0 and $1 are the inner shell's arguments
    until timeout 1 bash -c 'exec 3<>"/dev/tcp/$0/$1"' "$addr" "$port" 2>/dev/null 9>&-; do
      ((SECONDS < deadline)) || fail "health probe: nothing accepts connections on $addr port $port"
      sleep 0.2
    done
  done < <(plan_records "$ROOT/releases/$NEW" probe | cut -f1,2 | tr '\t' ' ' | sort -u)
  say "health probe ok"
}

# The inet tables the release's nftables files define, one per line.
firewall_tables() {
  plan_records "$ROOT/releases/$NEW" nft | cut -f2 | sort -u
}

firewall_tables_loaded() {
  local table
  while read -r table; do
    "$NFT" list table inet "$table" >/dev/null 2>&1 9>&- || return 1
  done < <(firewall_tables)
  return 0
}

# The release's nftables tables are loaded: a listener without its firewall would let anyone
# reach a PROXY port and forge client addresses. Checked before any unit is touched, so a
# failure here rolls back without a reload.
check_firewall() {
  local table out
  while read -r table; do
    out=$("$NFT" list table inet "$table" 2>&1 9>&-) || fail "firewall check: the host firewall table inet $table is not loaded" "$out"
  done < <(firewall_tables)
}

# --- after the commit: timers and jobs -----------------------------------------------

# Everything here runs once the release is live, probed and committed: a timer only schedules
# a job, and a job (the ACME client) runs on its own, so neither may roll back a release that
# serves. Every failure is a warning naming what to run by hand, never a failed deploy; each
# command is guarded, as an unguarded failure would end the run without a word.

install_timer_file() {
  local src=$1 name=$2 tmp=$SYSTEMD_UNIT_DIR/.$2.timer.tmp
  mkdir -p "$SYSTEMD_UNIT_DIR" &&
    install -m "$(stat -c %a "$src")" "$src" "$tmp" &&
    mv -f "$tmp" "$SYSTEMD_UNIT_DIR/$name.timer" && return 0
  rm -f "$tmp" || true
  return 1
}

# `timer` records: each .timers/<name>.timer not installed exactly so in SYSTEMD_UNIT_DIR is
# installed; the previous release's timers this one drops are disabled and removed; then one
# daemon-reload and `enable --now` for each installed timer. An unchanged timer is left alone.
apply_timers() {
  local rel=$ROOT/releases/$NEW name f
  local -a names=() changed=() installed=() removed=()
  while IFS=$'\t' read -r name _; do
    names+=("$name")
    if ! cmp -s "$rel/.timers/$name.timer" "$SYSTEMD_UNIT_DIR/$name.timer"; then
      changed+=("$name")
    elif ! timer_enabled "$name"; then
      # Installed as it should be, but not enabled (an earlier enable failed): enable it now.
      installed+=("$name")
    fi
  done < <(plan_records "$rel" timer)
  if [[ -n $PREV ]]; then
    for f in "$ROOT/releases/$PREV"/.timers/*.timer; do
      name=${f##*/}
      name=${name%.timer}
      is_in "$name" "${names[@]}" || [[ ! -f $SYSTEMD_UNIT_DIR/$name.timer ]] || removed+=("$name")
    done
  fi
  ((${#changed[@]} + ${#removed[@]} + ${#installed[@]} > 0)) || return 0
  for name in "${removed[@]}"; do
    say "disabling $name.timer (timer dropped from the bundle)"
    ctl disable --now "$name.timer" || warn "systemctl disable --now $name.timer failed: it may still start its job; run systemctl disable --now $name.timer"
    rm -f "$SYSTEMD_UNIT_DIR/$name.timer" || warn "could not remove $SYSTEMD_UNIT_DIR/$name.timer; remove it and run systemctl daemon-reload"
  done
  for name in "${changed[@]}"; do
    say "installing timer $name.timer"
    if install_timer_file "$rel/.timers/$name.timer" "$name"; then
      installed+=("$name")
    else
      warn "could not install $SYSTEMD_UNIT_DIR/$name.timer: $name.timer is not scheduled as this release has it; deploy again, or copy $rel/.timers/$name.timer there and run systemctl daemon-reload && systemctl enable --now $name.timer"
    fi
  done
  if ! ctl daemon-reload; then
    warn "systemctl daemon-reload failed: systemd has not loaded the timers this run installed or removed; run systemctl daemon-reload${installed[*]:+, then systemctl enable --now for: ${installed[*]/%/.timer}}"
    return 0
  fi
  for name in "${installed[@]}"; do
    say "enabling $name.timer"
    ctl enable --now "$name.timer" || warn "systemctl enable --now $name.timer failed: its job is not scheduled; see systemctl status $name.timer, then run systemctl enable --now $name.timer"
  done
}

# `job` records: starts <name>.service when this run installed its unit file, when the
# release's <dir>/ changed, or on a first release, so the first deploy issues certificates
# without waiting for the timer. --no-block: the deploy does not wait for the ACME client;
# its journal (journalctl -u <name>.service) tells how it went.
start_jobs() {
  local rel=$ROOT/releases/$NEW name dir why
  while IFS=$'\t' read -r name dir _; do
    if [[ -z $PREV ]]; then
      why="first release"
    elif is_in "$name" "${UNITS_CHANGED[@]}"; then
      why="unit changed"
    elif [[ $(component_hash "$WORK/prev.manifest" "$dir") != "$(component_hash "$WORK/new.manifest" "$dir")" ]]; then
      why="$dir/ changed"
    else
      continue
    fi
    say "starting $name.service ($why), not waiting for it"
    ctl start --no-block "$name.service" || warn "systemctl start --no-block $name.service failed: the job did not run now (its timer runs it later); see systemctl status $name.service, or run systemctl start $name.service"
  done < <(plan_records "$rel" job)
}

# Oldest first by when each release was made (its .release file), not by name: two
# applies within one second share the timestamp part of their ids.
prune_releases() {
  local -a all=()
  local cur i t d
  cur=$(current_id)
  while read -r t d; do
    all+=("${d##*/}")
  done < <(find "$ROOT"/releases/*/.release -maxdepth 0 -printf '%T@ %h\n' | sort -n)
  for ((i = 0; i < ${#all[@]} - KEEP; i++)); do
    [[ ${all[i]} == "$cur" ]] && continue
    rm -rf "${ROOT:?}/releases/${all[i]}"
    say "pruned release ${all[i]}"
  done
}

# --- the build shared by every mode ---------------------------------------------------

# STAGE holds the base tree; merges routes, hashes, validates, swaps, reloads, probes.
build_and_apply() {
  local role=$1 source=$2 hash id fp
  check_role "$role"
  : >"$WORK/fragments"
  if [[ $role == ingress ]]; then
    merge_fragments
    assemble_maps
  fi
  tree_manifest "$STAGE" >"$WORK/new.manifest"
  hash=$(sha256sum <"$WORK/new.manifest" | cut -d' ' -f1)
  if [[ -n $PREV && $(release_field "$PREV" hash) == "$hash" ]] && ! release_intact "$PREV"; then
    # A file of the live release was changed on the host (a hand edit): the same bundle builds
    # the release again from what was deployed, so re-running it repairs the edit.
    say "release $PREV was changed on this host since it was built: building it again from the bundle"
  elif [[ -n $PREV && $(release_field "$PREV" hash) == "$hash" ]] && units_installed "$PREV"; then
    say "unchanged: release $PREV is live with the same content"
    # A certificate that appeared or was renewed since (a failed or missed hook) is still picked up.
    refresh_certs "$PREV"
    PHASE=committed
    return 0
  fi
  printf -v id '%(%Y%m%dT%H%M%SZ)T-%s' -1 "${hash:0:12}"
  [[ ! -e $ROOT/releases/$id ]] || id="$id-$$"
  {
    printf 'id=%s\nhash=%s\nrole=%s\nsource=%s\ncreated=%(%FT%TZ)T\n' "$id" "$hash" "$role" "$source" -1
    cat "$WORK/fragments"
  } >"$STAGE/.release"
  NEW=$id
  mv -T "$STAGE" "$ROOT/releases/$id"
  STAGE=""
  PHASE=staged
  say "staged release $id"
  link_host_certs "$ROOT/releases/$id"
  refresh_cert_info "$ROOT/releases/$id"
  fp=$(cert_fingerprints "$ROOT/releases/$id")
  validate_release
  if [[ -n $PREV ]]; then tree_manifest "$ROOT/releases/$PREV" >"$WORK/prev.manifest"; else : >"$WORK/prev.manifest"; fi
  PHASE=live
  swap_to "$id"
  say "current -> releases/$id"
  apply_nftables
  check_firewall
  apply_units
  if [[ -n $fp ]] && ! is_in nginx "${UNITS_TOUCHED[@]}" &&
    { ((${#CERT_UNDO[@]} > 0)) || [[ $fp != "$(cat "$CERTS_LOADED" 2>/dev/null)" ]]; }; then
    # nginx's own files did not change, but its certificates (or what its health check says
    # about them) did: a reload, or it serves the old ones.
    UNITS_TOUCHED+=(nginx)
    say "reloading nginx.service (certificates changed)"
    ctl reload nginx.service || fail "systemctl reload nginx.service failed"
    mark_loaded nginx "$NEW"
  fi
  probe
  if is_in nginx "${UNITS_TOUCHED[@]}"; then record_loaded_certs "$fp" || warn "could not record which certificates nginx loaded"; fi
  PHASE=committed
  carry_loaded_marks
  [[ -z $ROUTES_BACKUP ]] || rm -rf "$ROUTES_BACKUP"
  # Before the prune, which may take the previous release (and its list of timers) away.
  apply_timers
  start_jobs
  prune_releases
  say "release $id is live"
}

# A daemon this run left alone has the same unit file and the same <dir>/ in NEW as in PREV
# (apply_units restarts or reloads it otherwise), so if it had loaded PREV it now runs NEW's
# config. One that had not loaded PREV (a cut-off run, a failed rollback) keeps its record,
# and the doctor keeps reporting it.
carry_loaded_marks() {
  local name loaded
  [[ -n $PREV ]] || return 0
  while IFS=$'\t' read -r name _; do
    is_in "$name" "${UNITS_TOUCHED[@]}" && continue
    loaded=$(head -n1 "$LOADED_DIR/$name" 2>/dev/null || true)
    [[ $loaded != "$PREV" ]] || mark_loaded "$name" "$NEW"
  done < <(plan_records "$ROOT/releases/$NEW" unit)
}

# True when the release's files are still what it was built from (its recorded hash).
release_intact() {
  [[ $(tree_manifest "$ROOT/releases/$1" | sha256sum | cut -d' ' -f1) == "$(release_field "$1" hash)" ]]
}

# True when every unit and timer of the release is installed exactly as the release has it.
units_installed() {
  local f name
  for f in "$ROOT/releases/$1"/.units/*.container; do
    cmp -s "$f" "$QUADLET_DIR/${f##*/}" || return 1
  done
  for f in "$ROOT/releases/$1"/.timers/*.timer; do
    cmp -s "$f" "$SYSTEMD_UNIT_DIR/${f##*/}" || return 1
    name=${f##*/}
    timer_enabled "${name%.timer}" || return 1
  done
  return 0
}

# True when systemd has <name>.timer enabled: a timer installed but never enabled (its enable
# failed) makes the next deploy of the same bundle a full one, which enables it.
timer_enabled() {
  ctl is-enabled "$1.timer" >/dev/null 2>&1
}

# Replaces routes/<stack>/routes.json with the pushed data (a file, or stdin for `-`), keeping
# the old one to restore. Only its size is checked here; its content is the renderer's to judge.
install_routes() {
  local src=$1 stack=$2 tmp=$ROOT/routes/.$2.new size
  rm -rf "$tmp"
  mkdir -p "$tmp"
  if [[ $src == - ]]; then
    head -c $((ROUTES_MAX_BYTES + 1)) >"$tmp/routes.json"
  else
    [[ -f $src && ! -L $src ]] || fail "routes: $src is not a regular file"
    head -c $((ROUTES_MAX_BYTES + 1)) "$src" >"$tmp/routes.json"
  fi
  size=$(stat -c %s "$tmp/routes.json")
  ((size > 0)) || fail "routes of stack $stack: nothing was sent (expected routes.json data)"
  ((size <= ROUTES_MAX_BYTES)) || fail "routes of stack $stack: more than $ROUTES_MAX_BYTES bytes"
  chmod 0644 "$tmp/routes.json"
  ROUTES_STACK=$stack
  NEWCOMER=$stack
  if [[ -d $ROOT/routes/$stack ]]; then
    ROUTES_BACKUP=$ROOT/routes/.$stack.prev
    rm -rf "$ROUTES_BACKUP"
    mv -T "$ROOT/routes/$stack" "$ROUTES_BACKUP"
  fi
  mv -T "$tmp" "$ROOT/routes/$stack"
}

wait_cloud_init() {
  command -v cloud-init >/dev/null 2>&1 || return 0
  say "waiting for cloud-init"
  local rc=0
  cloud-init status --wait >/dev/null 2>&1 || rc=$?
  case $rc in
    0) ;;
    2) warn "cloud-init finished with recoverable errors (cloud-init status --long)" ;;
    *) fail "cloud-init failed (status exit $rc); see cloud-init status --long" ;;
  esac
}

main() {
  local mode="" bundle="" role="" routes="" stack=""
  while (($# > 0)); do
    case $1 in
      --bundle | --role | --routes | --stack | --remove-routes | --attached)
        (($# >= 2)) || usage_error "$1 needs a value"
        case $1 in
          --bundle) bundle=$2 ;;
          --role) role=$2 ;;
          --routes) routes=$2 ;;
          --stack) stack=$2 ;;
          --remove-routes) stack=$2; mode=remove ;;
          --attached) stack=$2; mode=attached ;;
        esac
        shift 2
        ;;
      --switch-certs) mode=certs; shift ;;
      -h | --help) usage; exit 0 ;;
      *) usage_error "unknown argument: $1" ;;
    esac
  done
  # An attached stack's key runs `apply.sh --attached <stack>` whatever it asks for (sshd's
  # forced command); what it asked for is only ever one of these two words.
  if [[ $mode == attached ]]; then
    [[ -z $bundle && -z $routes && -z $role ]] || usage_error "--attached takes no other option"
    case ${SSH_ORIGINAL_COMMAND:-} in
      routes) mode="" routes=- ;;
      remove-routes) mode=remove ;;
      *)
        printf 'apply: this key may only run "routes" (routes data on stdin) or "remove-routes" for stack %s\n' "$stack" >&2
        exit 2
        ;;
    esac
  fi
  if [[ -n $bundle ]]; then
    [[ -z $mode && -z $routes && -z $stack ]] || usage_error "--bundle goes with --role only"
    [[ $role == ingress || $role == web ]] || usage_error "--bundle needs --role ingress|web"
    mode=bundle
  elif [[ -n $routes ]]; then
    [[ -z $mode && -z $role ]] || usage_error "--routes goes with --stack only"
    [[ -n $stack ]] || usage_error "--routes needs --stack STACK"
    mode=routes
  elif [[ $mode == remove ]]; then
    [[ -z $role ]] || usage_error "--remove-routes takes no other option"
  elif [[ $mode == certs ]]; then
    [[ -z $role && -z $stack ]] || usage_error "--switch-certs takes no other option"
  else
    usage_error "one of --bundle, --routes or --remove-routes is required"
  fi
  [[ -z $stack || $stack =~ $NAME_RE ]] || usage_error "invalid stack name '$stack'"
  [[ $KEEP =~ ^[1-9][0-9]*$ ]] || usage_error "INGRESS_KEEP_RELEASES must be a positive number"

  trap on_exit EXIT
  # A dropped ssh session must not kill the run half-way: with PIPE caught (not ignored,
  # so children keep the default), a write to the closed channel just fails and the run
  # goes on to its end, or to its rollback, and apply.log has the account.
  trap ':' PIPE
  trap 'exit 129' HUP
  trap 'exit 130' INT
  trap 'exit 143' TERM

  mkdir -p "$ROOT/releases" "$ROOT/routes"
  # Root only: it holds validators' output, which may quote configs.
  touch "$LOG" && chmod 0600 "$LOG"
  load_secret_values
  wait_cloud_init
  exec 9>"$ROOT/.apply.lock"
  flock -w "$LOCK_TIMEOUT" 9 || fail "another apply still holds $ROOT/.apply.lock after ${LOCK_TIMEOUT}s"
  # Holding the lock: whatever is left from an interrupted run is stale.
  rm -rf "$ROOT"/releases/.stage-* "$ROOT/.validate" "$ROOT"/routes/.*.new
  local prev old
  for prev in "$ROOT"/routes/.*.prev; do
    old=${prev##*/.}
    old=${old%.prev}
    warn "an interrupted run left routes of stack $old uncommitted; restoring the previous ones"
    rm -rf "${ROOT:?}/routes/$old"
    mv -T "$prev" "$ROOT/routes/$old"
  done
  [[ ! -f $LOG || $(stat -c %s "$LOG") -lt 1048576 ]] || mv -f "$LOG" "$LOG.1"
  touch "$LOG" && chmod 0600 "$LOG"
  WORK=$(mktemp -d)
  STAGE=$ROOT/releases/.stage-$$
  mkdir -p "$STAGE"
  PREV=$(current_id)

  case $mode in
    certs)
      switch_certs
      ;;
    bundle)
      say "applying bundle $bundle (role $role) over ${PREV:-no release}"
      stage_bundle "$bundle"
      build_and_apply "$role" "$bundle"
      ;;
    routes | remove)
      if [[ $mode == routes ]]; then
        say "installing routes of stack $stack"
        install_routes "$routes" "$stack"
      else
        if [[ ! -d $ROOT/routes/$stack ]]; then
          PHASE=committed
          say "unchanged: no routes of stack $stack are installed"
          return 0
        fi
        say "removing routes of stack $stack"
        ROUTES_STACK=$stack
        ROUTES_BACKUP=$ROOT/routes/.$stack.prev
        rm -rf "$ROUTES_BACKUP"
        mv -T "$ROOT/routes/$stack" "$ROUTES_BACKUP"
      fi
      if [[ -z $PREV ]]; then
        PHASE=committed
        [[ -z $ROUTES_BACKUP ]] || rm -rf "$ROUTES_BACKUP"
        say "no live release yet: routes are stored and merged by the next bundle apply"
        return 0
      fi
      [[ $(release_field "$PREV" role) == ingress ]] || fail "routes can only be merged on an ingress host (release $PREV is role $(release_field "$PREV" role))"
      stage_from_current
      build_and_apply ingress "rebuild of $PREV for routes of stack $stack"
      ;;
  esac
  [[ -z $ROUTES_BACKUP ]] || rm -rf "$ROUTES_BACKUP"
}

main "$@"
