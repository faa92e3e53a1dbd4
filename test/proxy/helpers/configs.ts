/** The original setup (reference/original-setup.txt) expressed as a ts-engine config. */
import { ProxyConfigInput } from "../../../contract/proxy-config";

export const originalSetup: ProxyConfigInput = {
  global: { maxconn: 4096 },
  timeouts: { clientMs: 30_000, serverMs: 30_000, tunnelMs: 300_000 },
  listeners: [{ name: "https_ingress", mode: "tls-passthrough", binds: [{ address: "0.0.0.0", port: 443 }, { address: "::", port: 443 }] }],
  routes: [
    { host: "monitoring.fiscalismia.com", backend: "fiscalismia_monitoring" },
    { host: "fiscalismia.com", backend: "fiscalismia_frontend" },
    { host: "backend.fiscalismia.com", backend: "fiscalismia_backend" },
    { host: "demo.fiscalismia.com", backend: "fiscalismia_demo_frontend" },
    { host: "backend.demo.fiscalismia.com", backend: "fiscalismia_demo_backend" },
  ],
  backends: [
    { name: "fiscalismia_monitoring", servers: [{ name: "monitoring01", address: "172.24.0.2", port: 443 }] },
    { name: "fiscalismia_frontend", servers: [{ name: "frontend01", address: "172.24.0.3", port: 443 }] },
    { name: "fiscalismia_backend", servers: [{ name: "backend01", address: "172.24.0.4", port: 443 }] },
    { name: "fiscalismia_demo_frontend", servers: [{ name: "demo_frontend01", address: "172.20.0.2", port: 443 }] },
    { name: "fiscalismia_demo_backend", servers: [{ name: "demo_backend01", address: "172.20.0.2", port: 8443 }] },
  ],
};
