// The read-only scripts the doctor runs on each host over SSH, and how their output is read.
// Each prints "<key>\t<value>" lines; a value that may hold anything (a page, a ruleset) is
// base64 on one line. They write nothing, on any path, and need only what a Debian or Ubuntu
// server has (bash, coreutils, iproute2, curl, nft; iptables when installed). Pure.

export interface RouteToProbe {
  readonly hostname: string;
  readonly address: string;
  readonly port: number;
  readonly healthPath: string;
}

/** A shell word in single quotes. Values come from the validated stack config. */
function sq(value: string): string {
  if (/['\n\r\0]/.test(value)) throw new Error(`doctor: ${JSON.stringify(value)} cannot be passed to a probe script`);
  return `'${value}'`;
}

const PRELUDE = [
  "set -u",
  "export LC_ALL=C",
  "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin:$PATH",
  "out() { printf '%s\\t%s\\n' \"$1\" \"$(printf '%s' \"$2\" | tr '\\n\\t' '  ')\"; }",
  "b64() { base64 -w0; }",
  "has() { command -v \"$1\" >/dev/null 2>&1; }",
];

/**
 * On the LB: the engine's unit and listeners, its own view of every server (the stats page,
 * read on loopback with the password from stats.env, which is passed to curl on stdin and never
 * printed), and per route from the LB: TCP connect, then TLS with the site's SNI after a PROXY
 * v2 header and GET of the health path, then the same without the PROXY header.
 */
export function lbProbeScript(o: { readonly unit: string; readonly stats?: { readonly port: number; readonly path: string }; readonly routes: readonly RouteToProbe[] }): string {
  const routes = o.routes.map((r, i) => {
    const target = `${r.address}:${r.port}`;
    const url = `https://${r.hostname}:${r.port}${r.healthPath}`;
    const resolve = `${r.hostname}:${r.port}:${r.address}`;
    // No TLS tries after a failed connect: a route that times out costs 4 s, not 16.
    return [
      `err=$(timeout 4 bash -c ${sq(`exec 3<>/dev/tcp/${r.address}/${r.port}`)} 2>&1 </dev/null); rc=$?`,
      `out tcp.${i} "$rc $err"`,
      'if [ "$rc" -eq 0 ]; then',
      `  out proxy.${i} "$(curl -sk -v --haproxy-protocol --connect-timeout 3 --max-time 6 --resolve ${sq(resolve)} -D - -o /dev/null -w 'HTTPCODE=%{http_code}\\n' ${sq(url)} 2>&1 </dev/null | b64)"`,
      `  out plain.${i} "$(curl -sk -v --connect-timeout 3 --max-time 6 --resolve ${sq(resolve)} -o /dev/null -w 'HTTPCODE=%{http_code}\\n' ${sq(url)} 2>&1 </dev/null | b64)"`,
      "fi",
      `out target.${i} ${sq(target)}`,
    ].join("\n");
  });
  return [
    ...PRELUDE,
    `out clock "$(date +%s)"`,
    `out unit "$(systemctl is-active ${sq(`${o.unit}.service`)} 2>&1)"`,
    `out listen "$(ss -Hltn 2>&1 | b64)"`,
    ...(o.stats === undefined
      ? ['out stats_rc "the stats page is off (ingress.stats.enabled: false)"']
      : [
          "if [ -r /srv/ingress/secrets/stats.env ]; then",
          "  user=$(sed -n 's/^STATS_USER=//p' /srv/ingress/secrets/stats.env | head -n1)",
          "  pass=$(sed -n 's/^STATS_PASSWORD=//p' /srv/ingress/secrets/stats.env | head -n1)",
          "  esc() { printf '%s' \"$1\" | sed 's/[\\\\\"]/\\\\&/g'; }",
          `  page=$(printf 'user = "%s:%s"\\n' "$(esc "$user")" "$(esc "$pass")" | curl -sS -f --max-time 5 -K - ${sq(`http://127.0.0.1:${o.stats.port}${o.stats.path}`)} 2>&1); rc=$?`,
          "  unset pass",
          '  if [ "$rc" -eq 0 ]; then out stats_rc 0; else out stats_rc "curl of the stats page: $page"; fi',
          '  out stats "$(printf \'%s\' "$page" | b64)"',
          "else",
          '  out stats_rc "no /srv/ingress/secrets/stats.env"',
          "fi",
        ]),
    ...routes,
    "exit 0",
    "",
  ].join("\n");
}

/**
 * On a web server: its clock, forwarding and reverse-path settings, what listens on each port and
 * which process, every firewall rule (nftables and iptables), nginx's unit and the live release's
 * site files (set_real_ip_from, listen ... proxy_protocol).
 */
export function serverProbeScript(): string {
  return [
    ...PRELUDE,
    `out clock "$(date +%s)"`,
    `out ip_forward "$(cat /proc/sys/net/ipv4/ip_forward 2>&1)"`,
    `out rp_filter "$(for f in /proc/sys/net/ipv4/conf/*/rp_filter; do d=\${f%/rp_filter}; printf '%s=%s ' "\${d##*/}" "$(cat "$f")"; done)"`,
    `out listen "$(ss -Hltnp 2>&1 | b64)"`,
    `out nft "$(if has nft; then nft list ruleset 2>&1; else echo 'nft: not installed'; fi | b64)"`,
    `out iptables "$(if has iptables-save; then iptables-save 2>&1; fi | b64)"`,
    `out nginx "$(systemctl is-active nginx.service 2>&1)"`,
    `out sites "$(cat /srv/ingress/current/nginx/sites/*.conf 2>&1 | b64)"`,
    "exit 0",
    "",
  ].join("\n");
}

/** The "<key>\t<value>" lines of a probe, base64 values decoded by the reader that needs them. */
export function parseProbe(output: string): ReadonlyMap<string, string> {
  const m = new Map<string, string>();
  for (const line of output.split("\n")) {
    const tab = line.indexOf("\t");
    if (tab > 0) m.set(line.slice(0, tab), line.slice(tab + 1));
  }
  return m;
}

export const fromBase64 = (value: string | undefined): string => (value === undefined ? "" : Buffer.from(value, "base64").toString("utf8"));
