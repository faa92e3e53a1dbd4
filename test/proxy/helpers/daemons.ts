/** Throwaway cert and configs for nginx and haproxy, all inside a temp dir. */
import { execFileSync } from "node:child_process";
import { mkdirSync, writeFileSync } from "node:fs";
import path from "node:path";

export function makeCert(dir: string, names: string[]): { cert: string; key: string } {
  const cert = path.join(dir, "cert.pem");
  const key = path.join(dir, "key.pem");
  execFileSync("openssl", [
    "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes", "-days", "1",
    "-subj", `/CN=${names[0]}`, "-addext", `subjectAltName=${names.map((n) => `DNS:${n}`).join(",")}`,
    "-keyout", key, "-out", cert,
  ], { stdio: "ignore" });
  return { cert, key };
}

/** nginx like the user's demo server: `listen ... ssl proxy_protocol`, real_ip from the proxy. */
export function nginxConfig(dir: string, opts: { listen: string[]; trusted: string[]; cert: string; key: string }): string {
  const temp = path.join(dir, "nginx-temp");
  mkdirSync(temp, { recursive: true });
  const file = path.join(dir, "nginx.conf");
  writeFileSync(
    file,
    `worker_processes 1;
user root;
pid ${dir}/nginx.pid;
error_log ${dir}/nginx-error.log warn;
events { worker_connections 256; }
http {
  client_body_temp_path ${temp}/body; proxy_temp_path ${temp}/proxy; fastcgi_temp_path ${temp}/fastcgi;
  uwsgi_temp_path ${temp}/uwsgi; scgi_temp_path ${temp}/scgi;
  log_format pp '$proxy_protocol_addr $proxy_protocol_port $remote_addr $ssl_server_name';
  access_log ${dir}/access.log pp;
  server {
${opts.listen.map((l) => `    listen ${l} ssl proxy_protocol;`).join("\n")}
    ssl_protocols TLSv1.2 TLSv1.3; # 1.22's default leaves out TLSv1.3
    ssl_certificate ${opts.cert};
    ssl_certificate_key ${opts.key};
${opts.trusted.map((t) => `    set_real_ip_from ${t};`).join("\n")}
    real_ip_header proxy_protocol;
    location / { return 200 "real client $remote_addr via $proxy_protocol_addr\\n"; }
  }
}
`,
  );
  return file;
}

/** HAProxy 2.6 as a strict receiver of our header: accept-proxy, logs what it parsed, forwards to nginx. */
export function haproxyConfig(dir: string, opts: { bind: string[]; forwardTo: string }): string {
  const file = path.join(dir, "haproxy.cfg");
  writeFileSync(
    file,
    `global
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
`,
  );
  return file;
}
