// A small valid stack config to mutate in tests, in the raw shape of Pulumi.<stack>.yaml.
export function validConfig(): Record<string, unknown> & { [k: string]: any } {
  return {
    location: "fsn1",
    networkZone: "eu-central",
    ssh: { adminCidrs: ["198.51.100.7/32"] },
    networks: [{ name: "prod", ipRange: "172.24.0.0/16", subnets: [{ ipRange: "172.24.0.0/24" }, { ipRange: "172.24.1.0/24" }] }],
    servers: [
      { name: "frontend", serverType: "cx23", image: "debian-13", networks: { prod: "172.24.0.3" } },
      { name: "backend", serverType: "cx23", image: "debian-13", networks: { prod: "172.24.0.4" } },
    ],
    sites: [
      { hostname: "fiscalismia.com", server: "frontend", port: 443, tls: { source: "self-signed" } },
      { hostname: "backend.fiscalismia.com", server: "backend", port: 443, tls: { source: "self-signed" } },
    ],
    ingress: {
      mode: "own",
      engine: "haproxy",
      server: { name: "loadbalancer", serverType: "cx23", image: "debian-13", networks: { prod: "172.24.1.3" } },
      stats: { enabled: true, passwordSecret: "statsPassword", allowedCidrs: ["198.51.100.7/32"] },
    },
  };
}
