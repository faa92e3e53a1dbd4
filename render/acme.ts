// The acme job of a web server: the script lego's image runs (acme/renew.sh in the release) and
// the timer that starts it (acme.timer). Pure: the same plan gives byte-identical text.
import * as paths from "../topology/paths";
import type { AcmeCertificatePlan, AcmePlan, HostPlan } from "../topology";

/** Seconds between two looks at a certificate that is fine: twice a day, as Let's Encrypt advises. */
export const ACME_CHECK_EVERY_S = 12 * 3600;
/**
 * Backoff after a failed run. A certificate never obtained yet is most likely waiting for its DNS
 * record or for the LB to route its challenge (a fresh stack): 15 min, 30 min, then hourly. A
 * renewal has weeks left: 1 h, 2 h, 4 h ... at most a day. Let's Encrypt allows 5 failed
 * validations per name and account an hour; neither schedule comes near it.
 */
export const ACME_BACKOFF = { first: { start: 900, max: 3600 }, renewal: { start: 3600, max: 24 * 3600 } } as const;
/**
 * The very first attempt for a name tries once more after this many seconds in the same run: on
 * a fresh stack this server's deploy may finish a moment before the LB routes its challenge.
 */
export const ACME_FIRST_RETRY_S = 60;
/** lego's provider for Hetzner DNS (the Cloud API, token in HETZNER_API_TOKEN). */
export const HETZNER_DNS_PROVIDER = "hetzner";

function acmeOf(host: HostPlan): AcmePlan {
  const acme = host.web?.acme;
  if (!acme) throw new Error(`host ${host.name} of stack ${host.stack} takes no certificate from ACME`);
  return acme;
}

/** A shell word in single quotes; the schema already keeps quotes out of every value here. */
function sq(value: string): string {
  if (/['\n\r]/.test(value)) throw new Error(`acme: ${JSON.stringify(value)} cannot be written into the script`);
  return `'${value}'`;
}

function challengeArgs(c: AcmeCertificatePlan): string {
  return c.challenge === "http-01" ? `--http --http.webroot ${sq(paths.ACME_WEBROOT)}` : `--dns ${HETZNER_DNS_PROVIDER}`;
}

/**
 * Where renew.sh leaves word that a certificate changed, or that a run failed or recovered; the
 * unit's ExecStopPost then runs apply.sh --switch-certs, which also refreshes the ACME header.
 */
export const ACME_SWITCH_MARKER = `${paths.ACME_STATE_DIR}/.switch-certs`;

/** "15 min, 30 min, then hourly" from a backoff's start and cap, for the script's comment. */
function backoffText(b: { readonly start: number; readonly max: number }): string {
  const steps: number[] = [];
  for (let d = b.start; d < b.max && steps.length < 3; d *= 2) steps.push(d);
  const t = (sec: number) => (sec % 3600 === 0 ? `${sec / 3600} h` : `${sec / 60} min`);
  return `${steps.map(t).join(", ")} ... at most ${t(b.max)}`;
}

export function renderAcmeScript(host: HostPlan): string {
  const acme = acmeOf(host);
  const eab = acme.eab !== undefined ? ` --eab --kid ${sq(acme.eab.kid)}` : "";
  return [
    "#!/bin/sh",
    `# renew.sh for ${host.name} (stack ${host.stack}), generated from Pulumi.${host.stack}.yaml: edit that, not this file.`,
    "# acme.service (acme.container, started by acme.timer and by a deploy that changes it) runs it",
    "# in lego's official image (busybox sh). Per certificate: the first run obtains it (lego run);",
    "# later runs look at it twice a day and renew it when fewer than RENEW_DAYS days are left",
    "# (lego renew); new account settings (CA, e-mail, key type, challenge) obtain a new one at once.",
    `# A failure is logged and backs off (a first certificate: ${backoffText(ACME_BACKOFF.first)};`,
    `# a renewal: ${backoffText(ACME_BACKOFF.renewal)}); the other certificates go on. When one changed,`,
    "# it leaves a marker and the unit's ExecStopPost has apply.sh move nginx to it by reload; so does",
    "# a failure or a recovery, which apply.sh shows on the LB's stats page (the health check's headers).",
    "set -u",
    "",
    `SERVER=${sq(acme.directoryUrl)}`,
    `EMAIL=${sq(acme.email)}`,
    `KEY_TYPE=${sq(acme.keyType)}`,
    `RENEW_DAYS=${acme.renewBeforeDays}`,
    `CHECK_EVERY=${ACME_CHECK_EVERY_S}`,
    `FIRST_RETRY=${ACME_FIRST_RETRY_S}`,
    `SWITCH_MARKER=${sq(ACME_SWITCH_MARKER)}`,
    ...(acme.caFile !== undefined ? ["# The ACME server's HTTPS is signed by this private root, not a public one.", `export LEGO_CA_CERTIFICATES=${sq(acme.caFile)}`] : []),
    "# The official image has lego at /lego; elsewhere (a host install) it is on PATH.",
    "LEGO=/lego",
    '[ -x "$LEGO" ] || LEGO=lego',
    "",
    'log() { echo "acme: $*"; }',
    'at() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo "@$1"; }',
    "# A number as this script writes it: digits, no leading zero (sh arithmetic reads 08 as bad octal).",
    'number() { case "$1" in 0 | [1-9] | [1-9]*[0-9]) case "$1" in *[!0-9]*) return 1 ;; esac; return 0 ;; esac; return 1; }',
    'fingerprint() { cat "$1" "$2" 2>/dev/null | cksum; }',
    "",
    '# <dir>/attempts: "<failed runs in a row> <earliest next attempt, epoch s> <settings tried>";',
    "# <dir>/issued-with: the settings the certificate in <dir>/certificates was obtained with.",
    "certificate() {",
    "  host=$1 challenge=$2 dir=$3",
    "  shift 3",
    '  settings="$SERVER,$EMAIL,$KEY_TYPE,$challenge"',
    "  failures=0 next=0 tried=",
    '  if [ -f "$dir/attempts" ]; then read -r failures next tried <"$dir/attempts" || true; fi',
    "  # A damaged record is treated as none (one more attempt, not a script that stops), and new",
    "  # settings (a deploy that fixed them) are tried at once, whatever the old ones' backoff.",
    '  if ! number "$failures" || ! number "$next" || [ "$tried" != "$settings" ]; then failures=0 next=0; fi',
    '  now=$(date +%s)',
    '  if [ "$now" -lt "$next" ]; then',
    '    if [ "$failures" -gt 0 ]; then log "$host: backing off after $failures failed run(s); next attempt at $(at "$next")"; fi',
    "    return 0",
    "  fi",
    '  cert="$dir/certificates/$host.crt" key="$dir/certificates/$host.key"',
    '  if [ -s "$cert" ] && [ -s "$key" ] && [ "$(cat "$dir/issued-with" 2>/dev/null)" = "$settings" ]; then',
    "    # No random sleep before a renewal: the timer's RandomizedDelaySec already spreads them.",
    '    set -- "$@" renew --days "$RENEW_DAYS" --no-random-sleep',
    `    what="renewal check" backoff=${ACME_BACKOFF.renewal.start} backoff_max=${ACME_BACKOFF.renewal.max} tries=1`,
    '  elif [ -s "$cert" ] && [ -s "$key" ]; then',
    "    # Obtained under other settings (another CA or account, say): a renewal there would keep it.",
    '    set -- "$@" run',
    `    what="new certificate for new settings" backoff=${ACME_BACKOFF.renewal.start} backoff_max=${ACME_BACKOFF.renewal.max} tries=1`,
    "  else",
    '    set -- "$@" run',
    `    what="first certificate" backoff=${ACME_BACKOFF.first.start} backoff_max=${ACME_BACKOFF.first.max} tries=1`,
    '    [ "$failures" -gt 0 ] || tries=2',
    "  fi",
    '  attempt=$((failures + 1))',
    "  # Account keys stay root's; the certificates directory is lego's own (0700 too).",
    '  mkdir -p "$dir" && chmod 700 "$dir"',
    '  before=$(fingerprint "$cert" "$key")',
    "  try=1",
    "  while :; do",
    '    log "$host: $what (run $attempt, try $try, $challenge) from $SERVER"',
    `    "$LEGO" --accept-tos --server "$SERVER" --email "$EMAIL" --key-type "$KEY_TYPE"${eab} --path "$dir" --domains "$host" "$@"`,
    "    status=$?",
    '    if [ "$status" -eq 0 ] || [ "$try" -ge "$tries" ]; then break; fi',
    '    log "$host: try $try failed (lego exited $status); trying once more in $FIRST_RETRY s"',
    '    sleep "$FIRST_RETRY"',
    "    try=$((try + 1))",
    "  done",
    "  now=$(date +%s)",
    '  if [ "$status" -eq 0 ]; then',
    '    printf \'%s\\n\' "$settings" >"$dir/issued-with"',
    '    printf \'0 %s %s\\n\' "$((now + CHECK_EVERY))" "$settings" >"$dir/attempts.tmp" && mv -f "$dir/attempts.tmp" "$dir/attempts"',
    "    # A recovery changes what the LB's health check shows (apply.sh writes it): a marker too.",
    '    [ "$failures" -eq 0 ] || : >"$SWITCH_MARKER"',
    '    if [ "$(fingerprint "$cert" "$key")" != "$before" ]; then',
    '      : >"$SWITCH_MARKER"',
    '      log "$host: new certificate; nginx moves to it by reload; next check at $(at "$((now + CHECK_EVERY))")"',
    "    else",
    '      log "$host: ok, not due; next check at $(at "$((now + CHECK_EVERY))")"',
    "    fi",
    "    return 0",
    "  fi",
    "  delay=$backoff",
    "  i=1",
    '  while [ "$i" -lt "$attempt" ] && [ "$delay" -lt "$backoff_max" ]; do delay=$((delay * 2)); i=$((i + 1)); done',
    '  [ "$delay" -le "$backoff_max" ] || delay=$backoff_max',
    '  printf \'%s %s %s\\n\' "$attempt" "$((now + delay))" "$settings" >"$dir/attempts.tmp" && mv -f "$dir/attempts.tmp" "$dir/attempts"',
    '  log "$host: FAILED (lego exited $status, run $attempt); the certificate in use stays; next attempt at $(at "$((now + delay))")"',
    "  # apply.sh puts the failure on the LB's stats page (the health check's ACME header).",
    '  : >"$SWITCH_MARKER"',
    "  return 1",
    "}",
    "",
    "failed=0",
    ...acme.certificates.map((c) => `certificate ${sq(c.hostname)} ${c.challenge} ${sq(c.dir)} ${challengeArgs(c)} || failed=$((failed + 1))`),
    '[ "$failed" -eq 0 ] || { log "$failed of ' + acme.certificates.length + ' certificate(s) failed this run"; exit 1; }',
    "",
  ].join("\n");
}

/** Starts acme.service every 15 minutes: renew.sh decides per certificate whether its time has come. */
export function renderAcmeTimer(host: HostPlan): string {
  acmeOf(host);
  return [
    `# acme.timer for ${host.name} (stack ${host.stack}), generated from Pulumi.${host.stack}.yaml: edit that, not this file.`,
    "[Unit]",
    "Description=Start acme.service: look after this server's ACME certificates",
    "",
    "[Timer]",
    "# Often, so a first certificate follows its DNS record within minutes; renew.sh skips every",
    "# certificate whose next look (twice a day) or retry (its backoff) is not due, without asking the CA.",
    "OnCalendar=*:0/15",
    "RandomizedDelaySec=2min",
    "# A run missed while the server was off happens at boot.",
    "Persistent=true",
    "",
    "[Install]",
    "WantedBy=timers.target",
    "",
  ].join("\n");
}
