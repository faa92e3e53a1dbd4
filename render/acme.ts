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

export function renderAcmeScript(host: HostPlan): string {
  const acme = acmeOf(host);
  return [
    "#!/bin/sh",
    `# renew.sh for ${host.name} (stack ${host.stack}), generated from Pulumi.${host.stack}.yaml: edit that, not this file.`,
    "# acme.service (acme.container, started by acme.timer and by a deploy that changes it) runs it",
    "# in lego's official image. Per certificate: the first run obtains it (lego run); later runs",
    "# look at it twice a day and renew it when fewer than RENEW_DAYS days are left (lego renew).",
    "# A failure is logged and backs off (a first certificate: 15 min, 30 min, then hourly; a",
    "# renewal: 1 h, 2 h, 4 h ... at most a day); the other certificates go on. The unit then runs",
    "# apply.sh --switch-certs, which reloads nginx if a certificate changed.",
    "set -u",
    "",
    `SERVER=${sq(acme.directoryUrl)}`,
    `EMAIL=${sq(acme.email)}`,
    `KEY_TYPE=${sq(acme.keyType)}`,
    `RENEW_DAYS=${acme.renewBeforeDays}`,
    `CHECK_EVERY=${ACME_CHECK_EVERY_S}`,
    `FIRST_RETRY=${ACME_FIRST_RETRY_S}`,
    ...(acme.caFile !== undefined ? ["# The ACME server's HTTPS is signed by this private root, not a public one.", `export LEGO_CA_CERTIFICATES=${sq(acme.caFile)}`] : []),
    "# The official image has lego at /lego; elsewhere (a host install) it is on PATH.",
    "LEGO=/lego",
    '[ -x "$LEGO" ] || LEGO=lego',
    "",
    'log() { echo "acme: $*"; }',
    'at() { date -u -d "@$1" +%Y-%m-%dT%H:%M:%SZ 2>/dev/null || echo "@$1"; }',
    "",
    "# <dir>/attempts holds \"<failed runs in a row> <earliest next attempt, epoch s>\".",
    "certificate() {",
    '  host=$1 challenge=$2 dir=$3',
    "  shift 3",
    '  failures=0 next=0',
    '  if [ -f "$dir/attempts" ]; then read -r failures next <"$dir/attempts" || true; fi',
    "  # A damaged record is treated as none: one more attempt, not a script that stops.",
    '  case "$failures" in "" | *[!0-9]*) failures=0 ;; esac',
    '  case "$next" in "" | *[!0-9]*) next=0 ;; esac',
    '  now=$(date +%s)',
    '  if [ "$now" -lt "$next" ]; then',
    '    if [ "$failures" -gt 0 ]; then log "$host: backing off after $failures failed run(s); next attempt at $(at "$next")"; fi',
    "    return 0",
    "  fi",
    '  if [ -s "$dir/certificates/$host.crt" ] && [ -s "$dir/certificates/$host.key" ]; then',
    "    # No random sleep before a renewal: the timer's RandomizedDelaySec already spreads them.",
    '    set -- "$@" renew --days "$RENEW_DAYS" --no-random-sleep',
    `    what="renewal check" backoff=${ACME_BACKOFF.renewal.start} backoff_max=${ACME_BACKOFF.renewal.max} tries=1`,
    "  else",
    '    set -- "$@" run',
    `    what="first certificate" backoff=${ACME_BACKOFF.first.start} backoff_max=${ACME_BACKOFF.first.max} tries=1`,
    '    [ "$failures" -gt 0 ] || tries=2',
    "  fi",
    '  attempt=$((failures + 1))',
    '  mkdir -p "$dir"',
    "  try=1",
    "  while :; do",
    '    log "$host: $what (run $attempt, try $try, $challenge) from $SERVER"',
    '    "$LEGO" --accept-tos --server "$SERVER" --email "$EMAIL" --key-type "$KEY_TYPE" --path "$dir" --domains "$host" "$@"',
    '    status=$?',
    '    [ "$status" -ne 0 ] && [ "$try" -lt "$tries" ] || break',
    '    log "$host: try $try failed (lego exited $status); trying once more in $FIRST_RETRY s"',
    '    sleep "$FIRST_RETRY"',
    '    try=$((try + 1))',
    "  done",
    '  now=$(date +%s)',
    '  if [ "$status" -eq 0 ]; then',
    '    printf \'0 %s\\n\' "$((now + CHECK_EVERY))" >"$dir/attempts.tmp" && mv -f "$dir/attempts.tmp" "$dir/attempts"',
    '    log "$host: ok; next check at $(at "$((now + CHECK_EVERY))")"',
    "    return 0",
    "  fi",
    '  delay=$backoff',
    '  i=1',
    '  while [ "$i" -lt "$attempt" ] && [ "$delay" -lt "$backoff_max" ]; do delay=$((delay * 2)); i=$((i + 1)); done',
    '  [ "$delay" -le "$backoff_max" ] || delay=$backoff_max',
    '  printf \'%s %s\\n\' "$attempt" "$((now + delay))" >"$dir/attempts.tmp" && mv -f "$dir/attempts.tmp" "$dir/attempts"',
    '  log "$host: FAILED (lego exited $status, run $attempt); the certificate in use stays; next attempt at $(at "$((now + delay))")"',
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
