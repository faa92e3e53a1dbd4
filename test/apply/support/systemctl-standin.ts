// The one fake in the apply tests: systemd does not run on this machine, so `systemctl`
// is a small script that does to real daemons what systemd would. Each unit is described
// by <state>/units/<name>.conf (a bash fragment setting SIGNAL and the START argv); the
// daemon's pid lives in <state>/<name>.pid. Every call is appended to <state>/calls.log.
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
unit=\${2:-}
name=\${unit%.service}
pidf=$state/$name.pid

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
  daemon-reload) ;;
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
