// From what the probes saw to a verdict per hop of each route, with the reason and the fix, in
// HAProxy's vocabulary (L4TOUT, L4CON, L6RSP, L7STS) where the engine has a word for it. The
// first failing hop is where the route breaks; what the server showed says why. Pure.
import { CERTIFICATE_WARNING_DAYS } from "../contract/certificate-info";
import type { RoutingRow } from "../topology";
import { fromBase64 } from "./probe-scripts";

export type HopStatus = "ok" | "warn" | "fail" | "skip";

export interface Hop {
  readonly hop: string;
  readonly status: HopStatus;
  readonly detail: string;
  readonly fix?: string;
}

export interface RouteReport {
  readonly hostname: string;
  readonly stack: string;
  readonly backend: string;
  readonly server: string;
  readonly target: string;
  readonly hops: readonly Hop[];
  /** A hop failed: the route does not serve, or serves wrong (e.g. clients' addresses lost). */
  readonly broken: boolean;
}

/** A row of the LB's routing table, with what the doctor needs beyond it. */
export interface RouteFacts extends RoutingRow {
  readonly healthPath: string;
  /** The LB's address on this server's network: what nginx must trust for PROXY headers. */
  readonly lbPrivateIp: string;
  readonly engine: "haproxy" | "ts";
}

export interface DnsAnswer {
  /** Undefined: not asked (a local cloud has no DNS). */
  readonly addresses?: readonly string[];
  readonly error?: string;
}

export interface OutsideFacts {
  readonly lbIpv4: string;
  readonly lbIpv6?: string;
  readonly dns: DnsAnswer;
  /** AAAA records; a name without any is fine (IPv4 only), one elsewhere is not. */
  readonly dns6?: DnsAnswer;
  /** From where the doctor runs to the LB's public address: "ok", "refused", "timeout", or an error. */
  readonly lb443: string;
  readonly lb80: string;
  readonly nowS: number;
}

/** One server row of the engine's stats page, in HAProxy's words. */
export interface EngineServerView {
  readonly status: string;
  readonly checkStatus: string;
  readonly checkDescription: string;
  readonly lastCheck: string;
  readonly checkCode?: number;
}

export interface LbFacts {
  /** Why the LB could not be probed (ssh failed, no key for it); the rest is then absent. */
  readonly unreachable?: string;
  readonly probe?: ReadonlyMap<string, string>;
  /** Its index in the LB probe's routes. */
  readonly index: number;
  readonly unit: string;
  readonly view?: EngineServerView;
  readonly viewError?: string;
}

export interface ServerFacts {
  readonly unreachable?: string;
  readonly probe?: ReadonlyMap<string, string>;
  /** When the probe ran, by the doctor's clock (epoch s): what the server's clock is compared with. */
  readonly probedAtS?: number;
}

const CHECK_MEANING: Readonly<Record<string, string>> = {
  L4TOUT: "the LB's connection got no answer: a firewall drops it, or a DNAT hop with forwarding off",
  L4CON: "the LB's connection was refused or unreachable: nothing listens on the port, or a firewall rejects it",
  L6TOUT: "TLS did not complete in time",
  L6RSP: "TLS failed: the port does not speak TLS, or its listener does not expect the PROXY header",
  L7TOUT: "the health path did not answer in time",
  L7RSP: "the health path's answer was not HTTP",
  L7STS: "the health path answered with the wrong status",
};

interface CurlResult {
  readonly code: number;
  readonly error?: string;
  readonly expires?: Date;
  readonly issuer?: string;
  readonly subject?: string;
  readonly headers: ReadonlyMap<string, string>;
}

/** curl -v's account of a TLS request: the status, the error, the certificate, the response headers. */
export function readCurl(text: string): CurlResult {
  const headers = new Map<string, string>();
  for (const line of text.split("\n")) {
    const m = /^([A-Za-z0-9-]+): (.*?)\r?$/.exec(line);
    if (m) headers.set(m[1]!.toLowerCase(), m[2]!);
  }
  const field = (re: RegExp) => re.exec(text)?.[1]?.trim();
  const expire = field(/^\*\s+expire date: (.+)$/m);
  const code = Number(field(/^HTTPCODE=(\d+)/m) ?? "0");
  const error = field(/^curl: \(\d+\) (.+)$/m) ?? field(/^\* (OpenSSL SSL_connect: .+|.*(?:wrong version number|unexpected eof|Connection reset by peer).*)$/m);
  return {
    code,
    ...(error !== undefined ? { error } : {}),
    ...(expire !== undefined && !Number.isNaN(Date.parse(expire)) ? { expires: new Date(Date.parse(expire)) } : {}),
    ...(field(/^\*\s+issuer: (.+)$/m) !== undefined ? { issuer: field(/^\*\s+issuer: (.+)$/m)! } : {}),
    ...(field(/^\*\s+subject: (.+)$/m) !== undefined ? { subject: field(/^\*\s+subject: (.+)$/m)! } : {}),
    headers,
  };
}

interface Listener {
  readonly address: string;
  readonly port: number;
  readonly processes: readonly string[];
}

/** `ss -Hltnp`: what listens where, and which processes. */
export function readListeners(text: string): Listener[] {
  const out: Listener[] = [];
  for (const line of text.split("\n")) {
    const cols = line.trim().split(/\s+/);
    const local = cols[3];
    if (cols[0] !== "LISTEN" || local === undefined) continue;
    const cut = local.lastIndexOf(":");
    const processes = [...line.matchAll(/\("([^"]+)",pid=/g)].map((m) => m[1]!);
    out.push({ address: local.slice(0, cut), port: Number(local.slice(cut + 1)), processes });
  }
  return out;
}

/** Whether an IPv4 address is inside a CIDR (or equal to a plain address). */
export function ipv4In(ip: string, cidr: string): boolean {
  const [base, bitsText] = cidr.split("/");
  const toInt = (a: string) => a.split(".").reduce((n, o) => (n << 8) + Number(o), 0) >>> 0;
  if (!/^\d+\.\d+\.\d+\.\d+$/.test(ip) || !/^\d+\.\d+\.\d+\.\d+$/.test(base ?? "")) return false;
  const bits = bitsText === undefined ? 32 : Number(bitsText);
  const mask = bits === 0 ? 0 : (~0 << (32 - bits)) >>> 0;
  return (toInt(ip) & mask) === (toInt(base!) & mask);
}

/** The server block of `hostname` in nginx's site files. */
function siteBlock(sites: string, hostname: string): string | undefined {
  const blocks = sites.split(/^server \{$/m);
  return blocks.find((b) => new RegExp(`^\\s*server_name\\s+([^;]*\\s)?${hostname.replace(/\./g, "\\.")}(\\s[^;]*)?;`, "m").test(b));
}

/** An nftables rule line's match on destination port `port`, alone or in a set. */
const nftPort = (port: number): RegExp => new RegExp(`dport (${port}\\b|\\{[^}]*\\b${port}\\b[^}]*\\})`);

/** Whether a rule's source match can match `lbIp`: no source match, or one naming it (or a CIDR around it). */
function sourceMayBe(line: string, lbIp: string, v: "nft" | "iptables"): boolean {
  if (v === "nft") {
    if (/saddr !=/.test(line)) return false;
    const m = /ip saddr (\{[^}]*\}|\S+)/.exec(line);
    if (!m) return true;
    return m[1]!.replace(/[{}]/g, " ").split(/[\s,]+/).filter((x) => x !== "").some((x) => ipv4In(lbIp, x));
  }
  if (/! -s /.test(line)) return false;
  const m = /-s (\S+)/.exec(line);
  return !m || m[1]!.split(",").some((x) => ipv4In(lbIp, x));
}

/**
 * nftables and iptables rules that drop or reject the LB's traffic to `port`, and input chains
 * whose policy drops (what nothing in them accepts): the suspects when the LB's connect times out.
 */
function dropsFor(nft: string, iptables: string, port: number, lbIp: string): string[] {
  const found: string[] = [];
  let table = "";
  for (const raw of nft.split("\n")) {
    const line = raw.trim();
    const t = /^table (\S+ \S+) \{/.exec(line);
    if (t) table = t[1]!;
    const portMatch = nftPort(port).test(line);
    if (portMatch && /\b(drop|reject)\b/.test(line) && sourceMayBe(line, lbIp, "nft")) found.push(`nftables ${table}: ${line}`);
    if (/hook (input|prerouting) /.test(line) && /policy drop/.test(line) && table !== "inet ingress") found.push(`nftables ${table}: a chain "${line}" drops what no rule of it accepts`);
  }
  for (const raw of iptables.split("\n")) {
    const line = raw.trim();
    if (new RegExp(`--dport ${port}\\b`).test(line) && /-j (DROP|REJECT)/.test(line) && sourceMayBe(line, lbIp, "iptables")) found.push(`iptables: ${line}`);
    if (/^:INPUT DROP/.test(line)) found.push("iptables: the INPUT chain's policy is DROP");
  }
  return found;
}

/** DNAT of `port` to somewhere else (podman -p, docker -p): a hop the kernel forwards. */
function dnatFor(nft: string, iptables: string, port: number): string[] {
  const found: string[] = [];
  for (const raw of nft.split("\n")) {
    const line = raw.trim();
    if (/\bdnat\b/.test(line) && nftPort(port).test(line)) found.push(`nftables: ${line}`);
  }
  for (const raw of iptables.split("\n")) {
    const line = raw.trim();
    if (/-j DNAT/.test(line) && new RegExp(`--dport ${port}\\b`).test(line)) found.push(`iptables: ${line}`);
  }
  return found;
}

const tcpOutcome = (raw: string | undefined): { outcome: "ok" | "timeout" | "refused" | "error"; text: string } => {
  const [rc, ...rest] = (raw ?? "").split(" ");
  const text = rest.join(" ").replace(/^bash: (line \d+: )?/, "").trim();
  if (rc === "0") return { outcome: "ok", text: "connected" };
  if (rc === "124") return { outcome: "timeout", text: "no answer within 4 s" };
  if (/refused/i.test(text)) return { outcome: "refused", text };
  return { outcome: "error", text: text || `exit ${rc}` };
};

export function diagnoseRoute(route: RouteFacts, outside: OutsideFacts, lb: LbFacts, server: ServerFacts): RouteReport {
  const hops: Hop[] = [];
  const add = (hop: string, status: HopStatus, detail: string, fix?: string) => hops.push({ hop, status, detail, ...(fix !== undefined ? { fix } : {}) });
  const target = `${route.address}:${route.port}`;

  // DNS, from where the doctor runs.
  if (outside.dns.addresses === undefined && outside.dns.error === undefined) add("dns", "skip", "not asked (no DNS here: a local cloud)");
  else if (outside.dns.error !== undefined) add("dns", "fail", `${route.hostname}: ${outside.dns.error}`, `create the A and AAAA records of pulumi stack output dnsRecordsToCreate (${route.hostname} -> ${outside.lbIpv4})`);
  else if (!outside.dns.addresses!.includes(outside.lbIpv4)) add("dns", "fail", `${route.hostname} resolves to ${outside.dns.addresses!.join(", ") || "nothing"}, not the LB (${outside.lbIpv4})`, `point ${route.hostname}'s A record at ${outside.lbIpv4} (dnsRecordsToCreate)`);
  else add("dns", outside.dns.addresses!.length > 1 ? "warn" : "ok", `${route.hostname} -> ${outside.dns.addresses!.join(", ")}`, outside.dns.addresses!.length > 1 ? "remove the records that do not point at the LB" : undefined);

  const v6 = outside.dns6?.addresses;
  if (v6 !== undefined && v6.length > 0 && outside.lbIpv6 !== undefined && !v6.includes(outside.lbIpv6)) {
    add("dns (AAAA)", "fail", `${route.hostname} has AAAA ${v6.join(", ")}, not the LB's ${outside.lbIpv6}: IPv6 clients go elsewhere`, `point ${route.hostname}'s AAAA record at ${outside.lbIpv6} (dnsRecordsToCreate), or remove it`);
  } else if (v6 !== undefined) add("dns (AAAA)", v6.length > 0 ? "ok" : "warn", v6.length > 0 ? `${route.hostname} -> ${v6.join(", ")}` : `no AAAA record: IPv6 clients cannot reach ${route.hostname}`, v6.length > 0 ? undefined : `add ${route.hostname} AAAA ${outside.lbIpv6 ?? "<the LB's IPv6>"} (dnsRecordsToCreate)`);

  // The LB's listeners, from outside, and its engine.
  const unitState = lb.probe?.get("unit");
  const engineDown = unitState !== undefined && unitState !== "active";
  if (outside.lb443 === "ok") add("lb listens", "ok", `${outside.lbIpv4}:443 connected; :80 ${outside.lb80}`);
  else add("lb listens", "fail", `${outside.lbIpv4}:443 ${outside.lb443}${engineDown ? `; ${lb.unit}.service is ${unitState}` : ""}`, engineDown ? `systemctl start ${lb.unit}.service on the LB; journalctl -u ${lb.unit}.service says why it stopped` : `the LB's Hetzner firewall or its nftables (table inet ingress) must accept 443 from the internet; the engine must listen (ss -ltn on the LB)`);

  if (lb.unreachable !== undefined) {
    // Not knowing is not "healthy": every hop from the LB on is unverified.
    add("engine view", "fail", `the LB could not be probed: ${lb.unreachable}`, "the doctor needs SSH to the LB with the owning stack's deploy key, from an address in ssh.adminCidrs; name the owning stack too (--stack <owner>)");
  } else if (engineDown) {
    add("engine view", "fail", `${lb.unit}.service is ${unitState}: nothing routes`, `systemctl start ${lb.unit}.service; journalctl -u ${lb.unit}.service`);
  } else if (lb.view === undefined && lb.viewError !== undefined) {
    add("engine view", "warn", `not read: ${lb.viewError}`, "the hops below still test the path the engine's check takes");
  } else if (lb.view === undefined) {
    add("engine view", "warn", `no row for ${route.backend}/${route.server} on the stats page`, "the engine may be reloading; if it stays, the LB's release lacks this route: pulumi up the stack that owns it");
  } else {
    const v = lb.view;
    const up = v.status.startsWith("UP");
    const meaning = CHECK_MEANING[v.checkStatus];
    const said = `${v.status}, last check ${v.checkStatus}${v.checkCode !== undefined ? `/${v.checkCode}` : ""} "${v.checkDescription}"${v.lastCheck ? `: ${v.lastCheck}` : ""}`;
    add("engine view", up ? "ok" : "fail", meaning && !up ? `${said} (${meaning})` : said, up ? undefined : "see the hops below: the first that fails is where the check fails too");
  }

  const probe = lb.probe;
  const srv = server.probe;
  const listeners = srv ? readListeners(fromBase64(srv.get("listen"))) : [];
  const onPort = listeners.filter((l) => l.port === route.port);
  const nft = srv ? fromBase64(srv.get("nft")) : "";
  const ipt = srv ? fromBase64(srv.get("iptables")) : "";
  const sites = srv ? fromBase64(srv.get("sites")) : "";
  const block = siteBlock(sites, route.hostname);
  const dnatHere = dnatFor(nft, ipt, route.port);

  if (probe === undefined) {
    add("tcp LB -> server", "skip", "LB not probed");
  } else {
    const tcp = tcpOutcome(probe.get(`tcp.${lb.index}`));
    if (tcp.outcome === "ok") add("tcp LB -> server", "ok", `${target} connected`);
    else if (tcp.outcome === "timeout") {
      const dnat = dnatHere;
      const drops = dropsFor(nft, ipt, route.port, route.lbPrivateIp);
      const forwarding = srv?.get("ip_forward");
      if (dnat.length > 0 && forwarding === "0") {
        add("tcp LB -> server", "fail", `${target} timeout (L4TOUT): port ${route.port} is DNATed (${dnat[0]}) and net.ipv4.ip_forward is 0 on ${route.server}, so the kernel drops every forwarded packet`, "run nginx with host networking, as the stack renders it (Network=host in nginx.container: no DNAT hop), or set net.ipv4.ip_forward=1 and let the forward chain accept it");
      } else if (drops.length > 0) {
        add("tcp LB -> server", "fail", `${target} timeout (L4TOUT): on ${route.server}, ${drops.join("; ")}`, `remove that rule, or accept tcp dport ${route.port} from the LB (${route.lbPrivateIp}) before it; the stack's own table inet ingress already does`);
      } else {
        add("tcp LB -> server", "fail", `${target} timeout (L4TOUT)${srv ? "; nothing on the server drops it" : ""}`, `check the Hetzner Cloud firewall of ${route.server} and its private network route; then nft list ruleset on ${route.server}`);
      }
    } else if (tcp.outcome === "refused" && dropsFor(nft, ipt, route.port, route.lbPrivateIp).some((d) => /reject|REJECT/.test(d))) {
      add("tcp LB -> server", "fail", `${target} refused (L4CON): on ${route.server}, ${dropsFor(nft, ipt, route.port, route.lbPrivateIp).filter((d) => /reject|REJECT/.test(d)).join("; ")}`, `remove that rule, or accept tcp dport ${route.port} from the LB (${route.lbPrivateIp}) before it`);
    } else if (tcp.outcome === "refused") {
      const nginx = srv?.get("nginx");
      add("tcp LB -> server", "fail", `${target} refused (L4CON): nothing listens on port ${route.port} of ${route.server}${nginx ? `; nginx.service is ${nginx}` : ""}`, `systemctl start nginx.service on ${route.server}; journalctl -u nginx.service says why it stopped`);
    } else {
      add("tcp LB -> server", "fail", `${target} ${tcp.text} (L4CON)`, `the LB has no route to ${route.address}: is it attached to ${route.server}'s private network? (pulumi up of the stack)`);
    }
    const tcpOk = tcp.outcome === "ok";
    const withProxy = readCurl(fromBase64(probe.get(`proxy.${lb.index}`)));
    const withoutProxy = readCurl(fromBase64(probe.get(`plain.${lb.index}`)));
    if (!tcpOk) {
      add("PROXY header", "skip", "no connection");
      add("TLS (SNI)", "skip", "no connection");
      add("health path", "skip", "no connection");
    } else {
      const tlsWithProxy = withProxy.code > 0 || withProxy.expires !== undefined;
      const tlsWithout = withoutProxy.code > 0 || withoutProxy.expires !== undefined;
      const listenLine = block ? /^\s*listen\s+[^;]*;/m.exec(block)?.[0]?.trim() : undefined;
      if (!tlsWithProxy && tlsWithout) {
        add("PROXY header", "fail", `TLS works without the PROXY header and fails after it (${withProxy.error ?? "no TLS"}): the listener on port ${route.port} does not expect PROXY${listenLine ? ` ("${listenLine}")` : ""} (L6RSP)`, `add proxy_protocol to nginx's listen (listen ${route.port} ssl proxy_protocol;), as the stack renders it: pulumi up redeploys the site file`);
      } else if (tlsWithProxy) {
        add("PROXY header", "ok", "accepted before TLS");
      } else {
        add("PROXY header", "warn", `TLS fails with and without it: ${withProxy.error ?? "no answer"}`);
      }
      if (!tlsWithProxy) {
        add("TLS (SNI)", "fail", `TLS with SNI ${route.hostname}: ${withProxy.error ?? "failed"} (L6RSP)`, `nginx -t on ${route.server} and its error log: a certificate it cannot load, or no ssl on the listen line`);
        add("health path", "skip", "no TLS");
      } else {
        const names = withProxy.headers.get("x-ingress-certificate");
        const cert = `${withProxy.subject ?? "?"}, issuer ${withProxy.issuer ?? "?"}${withProxy.expires ? `, expires ${withProxy.expires.toISOString().slice(0, 10)}` : ""}${names ? ` (${names})` : ""}`;
        const left = withProxy.expires ? (withProxy.expires.getTime() / 1000 - outside.nowS) / 86400 : undefined;
        if (left !== undefined && left < 0) {
          add("TLS (SNI)", "fail", `the certificate served for ${route.hostname} expired ${Math.floor(-left)} days ago: ${cert}`, `renew it: with tls.source acme, journalctl -u acme.service on ${route.server} says why it did not (docs/config.md, "Run it now"); with host, certbot renew; with provided, set a new one and pulumi up`);
        } else if (left !== undefined && left < CERTIFICATE_WARNING_DAYS) {
          add("TLS (SNI)", "warn", `expires in ${Math.floor(left)} days: ${cert}`, `it should have been renewed by now: journalctl -u acme.service on ${route.server}`);
        } else add("TLS (SNI)", "ok", cert);
        if (withProxy.code === 200) add("health path", "ok", `GET ${route.healthPath} -> 200`);
        else add("health path", "fail", `GET ${route.healthPath} -> ${withProxy.code || withProxy.error || "no answer"} (L7STS)`, `the site's nginx must answer ${route.healthPath} itself (location = ${route.healthPath} in its site file, as rendered)`);
      }
    }
  }

  // On the server.
  if (server.unreachable !== undefined || srv === undefined) {
    add("server", "skip", `${route.server} not probed: ${server.unreachable ?? "no probe"}`);
    return finish(route, target, hops);
  }
  if (onPort.length === 0 && dnatHere.length > 0) add("server listener", "warn", `no host process listens on port ${route.port}: it is DNATed to a container (${dnatHere[0]})`, "run nginx with host networking (Network=host), as the stack renders it");
  else if (onPort.length === 0) add("server listener", "fail", `nothing listens on port ${route.port} (nginx.service is ${srv.get("nginx") ?? "?"})`, `systemctl start nginx.service; journalctl -u nginx.service`);
  else {
    const procs = [...new Set(onPort.flatMap((l) => l.processes))];
    const hostProcess = procs.includes("nginx");
    // rootless podman's port forwarders accept in userspace and connect onwards from their own
    // address: nginx then sees that address, never the LB's, and its PROXY trust does not match.
    const userspace = procs.filter((p) => /^(rootlessport|pasta|slirp4netns|docker-proxy)/.test(p));
    if (userspace.length > 0) add("server listener", "fail", `port ${route.port} is held by ${userspace.join(", ")}, a userspace port forwarder: nginx sees its address, not the LB's`, "run nginx with host networking (Network=host), as the stack renders it");
    else add("server listener", hostProcess ? "ok" : "warn", `port ${route.port}: ${procs.join(", ") || "a process ss cannot name"} on ${onPort.map((l) => l.address).join(", ")}${hostProcess ? " (a host process: no DNAT hop)" : " (not nginx itself: a container port published through DNAT?)"}`);
  }
  const dnat = dnatHere;
  const fwd = srv.get("ip_forward");
  if (dnat.length > 0) add("forwarding", fwd === "1" ? "warn" : "fail", `port ${route.port} is DNATed (${dnat[0]}); net.ipv4.ip_forward=${fwd}`, "run the container with host networking (Network=host), as the stack renders it");
  else add("forwarding", "ok", `no DNAT of port ${route.port}; net.ipv4.ip_forward=${fwd} (not needed)`);
  const drops = dropsFor(nft, ipt, route.port, route.lbPrivateIp);
  const portRe = nftPort(route.port);
  const ours = route.lbPrivateIp !== "" && nft.split("\n").some((l) => /\baccept\b/.test(l) && portRe.test(l) && new RegExp(`\\b${route.lbPrivateIp.replace(/\./g, "\\.")}\\b`).test(l));
  const lbConnected = probe !== undefined && tcpOutcome(probe.get(`tcp.${lb.index}`)).outcome === "ok";
  if (drops.length > 0) add("server firewall", lbConnected ? "warn" : "fail", `${drops.join("; ")}${lbConnected ? " (the LB's connect got through: an accept comes first)" : ""}`, `remove it, or accept tcp dport ${route.port} from ${route.lbPrivateIp} before it`);
  else if (!/table inet ingress/.test(nft)) add("server firewall", "warn", "the stack's table inet ingress is not loaded", "pulumi up (apply.sh loads it), or nft -f /srv/ingress/current/nftables/ingress.nft");
  else add("server firewall", ours ? "ok" : "warn", ours ? `table inet ingress accepts the LB (${route.lbPrivateIp})` : `no rule names the LB's address ${route.lbPrivateIp}`);
  const strict = (srv.get("rp_filter") ?? "").split(" ").filter((kv) => kv.endsWith("=1")).map((kv) => kv.split("=")[0]);
  add("rp_filter", strict.length > 0 ? "warn" : "ok", strict.length > 0 ? `strict reverse-path filtering on ${strict.join(", ")}: replies must leave by the interface the LB's packets came in on` : "loose or off");
  if (block === undefined) add("real client address", "fail", `no server block for ${route.hostname} in the live release's site files`, "pulumi up redeploys it");
  else {
    const trusted = [...block.matchAll(/^\s*set_real_ip_from\s+([^;\s]+);/gm)].map((m) => m[1]!);
    const listensProxy = new RegExp(`^\\s*listen\\s+(\\S+:)?${route.port}\\s[^;]*\\bproxy_protocol\\b`, "m").test(block);
    if (!trusted.some((c) => ipv4In(route.lbPrivateIp, c))) {
      add("real client address", "fail", `nginx trusts PROXY headers from ${trusted.join(", ") || "no address"}, not from the LB (${route.lbPrivateIp}): it logs the LB as every client`, `set_real_ip_from ${route.lbPrivateIp}; in the site's server block, as the stack renders it (pulumi up redeploys the site file)`);
    } else if (!listensProxy) {
      add("real client address", "fail", `the listen line for port ${route.port} has no proxy_protocol`, `listen ${route.port} ssl proxy_protocol;`);
    } else add("real client address", "ok", `set_real_ip_from covers ${route.lbPrivateIp}; real_ip_header proxy_protocol`);
  }
  const clock = Number(srv.get("clock"));
  const skew = Number.isFinite(clock) ? clock - (server.probedAtS ?? outside.nowS) : NaN;
  if (!Number.isFinite(skew)) add("clock", "warn", "the server's clock could not be read");
  else if (Math.abs(skew) > 60) add("clock", "fail", `${route.server}'s clock is ${skew} s off`, "enable time sync (systemd-timesyncd or chrony): TLS and ACME need the right time");
  else add("clock", Math.abs(skew) > 5 ? "warn" : "ok", `${skew} s from the doctor's clock`);
  return finish(route, target, hops);
}

function finish(route: RouteFacts, target: string, hops: Hop[]): RouteReport {
  return { hostname: route.hostname, stack: route.stack, backend: route.backend, server: route.server, target, hops, broken: hops.some((h) => h.status === "fail") };
}
