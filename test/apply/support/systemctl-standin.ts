// The one fake in the apply tests: systemd does not run on this machine, so `systemctl`
// is a small script that does to real daemons what systemd would. Each unit is described
// by <state>/units/<name>.conf (a bash fragment setting SIGNAL and the START argv); the
// daemon's pid lives in <state>/<name>.pid. Every call is appended to <state>/calls.log.
//
// Jobs and timers (acme.container with Type=oneshot, acme.timer): `start [--no-block]` runs
// START in the background like a daemon (a oneshot's START just exits), `enable`/`disable`
// [--now] of a <name>.timer keep <state>/enabled/<name>.timer. As systemd only knows what its
// last daemon-reload saw, daemon-reload records the unit files in $QUADLET_DIR and
// $SYSTEMD_UNIT_DIR (apply.sh's environment) under <state>/loaded/, and `start` and `enable`
// refuse a unit it did not see as it is now on disk: stricter than systemd (which loads a new
// unit on demand, and warns about a changed one), so a missing daemon-reload shows.
//
// Failure injection: if <state>/fail-once-<verb> exists, the verb still acts, then the
// file is removed and the call exits 1. Acting first makes a rollback test sharper: the
// daemon really took the new config, so only the rollback's own reload brings back the old.

export interface UnitSpec {
  readonly name: string;
  /** Signal name without SIG, sent on reload (haproxy -W: USR2; nginx: HUP). */
  readonly signal: string;
  /** argv of the daemon in the foreground, as the Quadlet unit's Exec would run it. */
  readonly start: readonly string[];
}

function shellQuote(s: string): string {
  return `'${s.replace(/'/g, `'\\''`)}'`;
}

export function unitConf(spec: UnitSpec): string {
  return `SIGNAL=${spec.signal}\nSTART=(${spec.start.map(shellQuote).join(" ")})\n`;
}

export function systemctlStandin(stateDir: string): string {
  return `#!/bin/bash
# Test stand-in for systemctl; see test/apply/support/systemctl-standin.ts.
set -u
state=${shellQuote(stateDir)}
printf '%s\\n' "$*" >>"$state/calls.log"
verb=\${1:-}
units=()
for a in "\${@:2}"; do
  case $a in
    --no-block | --now) ;;
    -*) echo "systemctl stand-in: unsupported option: $a" >&2; exit 1 ;;
    *) units+=("$a") ;;
  esac
done
unit=\${units[0]:-}
name=\${unit%.service}
pidf=$state/$name.pid

# The file on disk <unit> is made from (Quadlet's <name>.container for a service); loaded()
# compares it with its copy from the last daemon-reload.
unit_file() {
  case $unit in
    *.service) [[ -n \${QUADLET_DIR:-} ]] && printf '%s' "$QUADLET_DIR/$name.container" ;;
    *.timer) [[ -n \${SYSTEMD_UNIT_DIR:-} ]] && printf '%s' "$SYSTEMD_UNIT_DIR/$unit" ;;
    *) return 1 ;;
  esac
}
loaded() {
  local f
  f=$(unit_file) || return 0 # a directory apply.sh was not told: nothing to compare
  if [[ ! -f $f ]]; then echo "Unit $unit not found." >&2; return 1; fi
  cmp -s "$f" "$state/loaded/$unit" && return 0
  echo "systemctl stand-in: $unit is not loaded as $f has it (no daemon-reload since it changed)" >&2
  return 1
}

# kill -0 also succeeds on a zombie, and a killed daemon lingers as one here for a while.
alive() {
  local pid st
  [[ -f $pidf ]] || return 1
  pid=$(cat "$pidf")
  [[ -r /proc/$pid/stat ]] || return 1
  st=$(sed 's/.*) //' "/proc/$pid/stat" | cut -d' ' -f1)
  [[ $st != Z ]]
}

start() {
  # shellcheck disable=SC1090
  source "$state/units/$name.conf"
  setsid "\${START[@]}" </dev/null >>"$state/$name.log" 2>&1 &
  echo $! >"$pidf"
}

stop() {
  alive || return 0
  kill -TERM "$(cat "$pidf")"
  for _ in $(seq 100); do alive || return 0; sleep 0.05; done
  kill -KILL "$(cat "$pidf")"
}

rc=0
case $verb in
  daemon-reload)
    rm -rf "$state/loaded"
    mkdir -p "$state/loaded"
    for f in "\${QUADLET_DIR:-/nonexistent}"/*.container; do [[ -f $f ]] && cp "$f" "$state/loaded/$(basename "$f" .container).service"; done
    for f in "\${SYSTEMD_UNIT_DIR:-/nonexistent}"/*.timer; do [[ -f $f ]] && cp "$f" "$state/loaded/"; done
    ;;
  start)
    if ! loaded; then
      rc=5
    elif ! alive && [[ -f $state/units/$name.conf ]]; then
      start
    fi
    ;;
  enable)
    if [[ $unit != *.timer ]]; then
      echo "systemctl stand-in: enable supports timers only: $unit" >&2
      rc=1
    elif loaded; then
      mkdir -p "$state/enabled"
      touch "$state/enabled/$unit"
    else
      rc=1
    fi
    ;;
  disable)
    rm -f "$state/enabled/$unit"
    ;;
  is-enabled) [[ -f $state/enabled/$unit ]] || rc=1 ;;
  reload | reload-or-restart)
    if alive; then
      # shellcheck disable=SC1090
      source "$state/units/$name.conf"
      kill -"$SIGNAL" "$(cat "$pidf")" || rc=1
    elif [[ $verb == reload-or-restart ]]; then
      start
    else
      echo "$unit is not active" >&2
      rc=1
    fi
    ;;
  restart) stop; start ;;
  stop) stop ;;
  is-active) alive || rc=3 ;;
  *) echo "systemctl stand-in: unsupported: $*" >&2; rc=1 ;;
esac
if [[ -f $state/fail-once-$verb ]]; then
  rm -f "$state/fail-once-$verb"
  echo "systemctl stand-in: injected failure of $verb $unit" >&2
  rc=1
fi
exit $rc
`;
}
