// What the demo stack reads from prod through its StackReference, as the mocks return it.
export const PROD_REF = "organization/hetzner-ingress/prod";
/** demo's routes key on prod's LB: good for demo's routes only, never root on prod. */
export const PROD_KEY = "-----BEGIN OPENSSH PRIVATE KEY-----\nprod-routes-key-for-demo\n-----END OPENSSH PRIVATE KEY-----\n";
export const PROD_OUTPUTS = {
  lbServerId: "4242",
  lbIpv4: "198.51.100.50",
  lbIpv6: "2001:db8:50::1",
  engine: "haproxy",
  routesKeys: { demo: PROD_KEY, other: "-----BEGIN OPENSSH PRIVATE KEY-----\nnot-demos\n-----END OPENSSH PRIVATE KEY-----\n" },
  lbHostKey: "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIPRODLBHOSTKEY",
  statsUrl: "http://198.51.100.50:8404/stats",
};

