/** Backend configs for nginx and haproxy, run with lab/daemons.ts (relative paths land in the daemon dir). */

/**
 * The `http {}` contents for `sandboxNginxMain`: nginx like the user's demo server,
 * `listen ... ssl proxy_protocol`, real_ip from the proxy; access.log in the daemon dir.
 */
export function nginxHttp(opts: { listen: string[]; trusted: string[]; cert: string; key: string; logFormat?: string }): string {
  return `  log_format pp '${opts.logFormat ?? "$proxy_protocol_addr $proxy_protocol_port $remote_addr $ssl_server_name"}';
  server {
${opts.listen.map((l) => `    listen ${l} ssl proxy_protocol;`).join("\n")}
    access_log access.log pp;
    ssl_protocols TLSv1.2 TLSv1.3; # 1.22's default leaves out TLSv1.3
    ssl_certificate ${opts.cert};
    ssl_certificate_key ${opts.key};
${opts.trusted.map((t) => `    set_real_ip_from ${t};`).join("\n")}
    real_ip_header proxy_protocol;
    location / { return 200 "real client $remote_addr via $proxy_protocol_addr\\n"; }
  }
`;
}

/** HAProxy 2.6 as a strict receiver of our header: accept-proxy, logs what it parsed, forwards to nginx. */
export function haproxyConfig(opts: { bind: string[]; forwardTo: string }): string {
  return `global
  log stdout format raw local0
defaults
  mode tcp
  log global
  timeout connect 2s
  timeout client 5s
  timeout server 5s
frontend fe
${opts.bind.map((b) => `  bind ${b} accept-proxy`).join("\n")}
  log-format "HAPROXY ci=%ci cp=%cp authority=%[fc_pp_authority] ts=%ts"
  default_backend be
backend be
  server nginx ${opts.forwardTo} send-proxy-v2
`;
}

/**
 * A TLS backend in one Node process (`node -e SCRIPT HOST PORT CERT KEY`) that requires a
 * PROXY v2 header, terminates TLS behind it, and answers any HTTP request with the header it
 * read as JSON: {version, command, family, src, dst}. Written against the spec, not
 * proxy/codec, so it checks our encoder independently. Addresses are printed uncompressed.
 */
export const PP2_TLS_BACKEND_SCRIPT = String.raw`
const net = require("net"), tls = require("tls"), fs = require("fs"), { Duplex } = require("stream");
const [host, port, cert, key] = process.argv.slice(1);
const ctx = tls.createSecureContext({ cert: fs.readFileSync(cert), key: fs.readFileSync(key) });
const SIG = Buffer.from("0d0a0d0a000d0a515549540a", "hex");
function parse(b) {
  if (!b.subarray(0, 12).equals(SIG)) return { error: "no PROXY v2 signature" };
  const h = { version: b[12] >> 4, command: (b[12] & 15) === 1 ? "PROXY" : (b[12] & 15) === 0 ? "LOCAL" : "?" };
  const v6 = (o) => Array.from({ length: 8 }, (_, i) => b.readUInt16BE(o + 2 * i).toString(16)).join(":");
  if (b[13] === 0x11) Object.assign(h, { family: "TCP4", src: [...b.subarray(16, 20)].join(".") + ":" + b.readUInt16BE(24), dst: [...b.subarray(20, 24)].join(".") + ":" + b.readUInt16BE(26) });
  else if (b[13] === 0x21) Object.assign(h, { family: "TCP6", src: "[" + v6(16) + "]:" + b.readUInt16BE(48), dst: "[" + v6(32) + "]:" + b.readUInt16BE(50) });
  else h.family = b[13];
  return h;
}
net.createServer((sock) => {
  let buf = Buffer.alloc(0);
  sock.on("error", () => {});
  const onData = (d) => {
    buf = Buffer.concat([buf, d]);
    if (buf.length < 16) return;
    const len = buf.subarray(0, 12).equals(SIG) ? 16 + buf.readUInt16BE(14) : 16;
    if (buf.length < len) return;
    sock.removeListener("data", onData);
    const header = parse(buf);
    // The rest of the stream (the ClientHello) goes to TLS through a JS duplex, so no byte already read is lost.
    const inner = new Duplex({
      read() { sock.resume(); },
      write(chunk, _e, cb) { sock.write(chunk, cb); },
      final(cb) { sock.end(); cb(); },
      destroy(e, cb) { sock.destroy(); cb(e); },
    });
    inner.push(buf.subarray(len));
    sock.on("data", (c) => { if (!inner.push(c)) sock.pause(); });
    sock.on("end", () => inner.push(null));
    const t = new tls.TLSSocket(inner, { isServer: true, secureContext: ctx });
    t.on("error", () => sock.destroy());
    let request = "";
    t.on("data", (c) => {
      request += c;
      if (request.includes("\r\n\r\n")) t.end("HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nConnection: close\r\n\r\n" + JSON.stringify(header) + "\n");
    });
  };
  sock.on("data", onData);
}).listen(Number(port), host, () => process.stdout.write("listening\n"));
`;
