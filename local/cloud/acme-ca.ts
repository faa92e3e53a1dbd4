// The local cloud's ACME CA: Pebble (Let's Encrypt's test server) with pebble-challtestsrv as
// the world's DNS, in a namespace of its own on the public side. Every name resolves to one
// server's public address (the LB, once it exists), so a validation really travels to the LB's
// port 80 and through it to the web server. PEBBLE_VA_ALWAYS_VALID is never set.
import { spawnSync } from "node:child_process";
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pollUntil, type Netns, type Sandbox } from "../../lab";
import { waitForListening } from "../../lab/daemons";
import type { ManagedProcess } from "../../lab/process";

/** The CA's public address: documentation range, apart from the servers' 198.51.100.100-127. */
export const ACME_CA_IPV4 = "198.51.100.30";
const DIRECTORY_PORT = 14000;
const MANAGEMENT_PORT = 15000;
const DNS_PORT = 8053;
const DNS_MANAGEMENT_PORT = 8055;

export interface AcmeCaInfo {
  readonly directoryUrl: string;
  /** The root of the CA's own HTTPS (what a client of the directory trusts). */
  readonly httpsRootPem: string;
  /** Every root Pebble signed under (a new one at each start of Pebble), PEM, oldest first. */
  readonly issuerRootsPem: string;
  readonly netns: string;
  readonly running: boolean;
  /** The server whose public address every name resolves to, and that address once it exists. */
  readonly resolvesTo: { readonly server: string; readonly ipv4?: string };
}

export interface AcmeCaOptions {
  /** The server every name resolves to (by its Hetzner name); DNS answers once it exists. */
  readonly resolveToServer: string;
  /** Lifetime of the certificates Pebble issues, in seconds. */
  readonly certificateValiditySeconds: number;
}

export class AcmeCa {
  private pebble: ManagedProcess | undefined;
  /** Every issuing root Pebble had (one per start): certificates issued before a restart still chain to theirs. */
  private readonly issuerRoots: string[] = [];
  private resolvedIpv4: string | undefined;

  private constructor(
    readonly ns: Netns,
    private readonly dir: string,
    private readonly options: AcmeCaOptions,
  ) {}

  /** The CA in `ns` (already on the cloud's public side at ACME_CA_IPV4), its DNS and Pebble running. */
  static async create(sb: Sandbox, ns: Netns, options: AcmeCaOptions): Promise<AcmeCa> {
    const dir = await sb.subdir("acme-ca");
    AcmeCa.makeHttpsCertificate(dir);
    writeFileSync(
      join(dir, "pebble.json"),
      JSON.stringify({
        pebble: {
          listenAddress: `0.0.0.0:${DIRECTORY_PORT}`,
          managementListenAddress: `0.0.0.0:${MANAGEMENT_PORT}`,
          certificate: join(dir, "https.crt"),
          privateKey: join(dir, "https.key"),
          // Validations go where Let's Encrypt's go: port 80 of the name's address.
          httpPort: 80,
          tlsPort: 443,
          ocspResponderURL: "",
          externalAccountBindingRequired: false,
          certificateValidityPeriod: options.certificateValiditySeconds,
        },
      }),
    );
    // No challenge servers of its own: only its DNS, answering A queries with one address and no AAAA.
    const dns = await ns.spawn("challtestsrv", [
      "pebble-challtestsrv", "-management", `127.0.0.1:${DNS_MANAGEMENT_PORT}`, "-dns01", `127.0.0.1:${DNS_PORT}`,
      "-http01", "", "-https01", "", "-tlsalpn01", "", "-defaultIPv4", "127.0.0.1", "-defaultIPv6", "",
    ]);
    await waitForListening(ns, [{ port: DNS_MANAGEMENT_PORT }], { process: dns, timeoutMs: 10_000 });
    // The sandbox's teardown stops both processes with the namespace.
    const ca = new AcmeCa(ns, dir, options);
    await ca.start();
    return ca;
  }

  /** A root and a certificate for the CA's address, made now; nothing from the repo. */
  private static makeHttpsCertificate(dir: string): void {
    const ext = join(dir, "https.ext");
    writeFileSync(ext, `subjectAltName=IP:${ACME_CA_IPV4}\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`);
    const steps: string[][] = [
      ["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "7", "-subj", "/CN=sandbox ACME CA HTTPS root", "-keyout", join(dir, "https-root.key"), "-out", join(dir, "https-root.crt")],
      ["req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-subj", `/CN=${ACME_CA_IPV4}`, "-keyout", join(dir, "https.key"), "-out", join(dir, "https.csr")],
      ["x509", "-req", "-in", join(dir, "https.csr"), "-CA", join(dir, "https-root.crt"), "-CAkey", join(dir, "https-root.key"), "-CAcreateserial", "-days", "7", "-extfile", ext, "-out", join(dir, "https.crt")],
    ];
    for (const argv of steps) {
      const r = spawnSync("openssl", argv, { encoding: "utf8" });
      if (r.status !== 0) throw new Error(`acme CA: openssl ${argv[0]} failed: ${r.stderr}`);
    }
  }

  private refusing = false;

  /** Pebble runs and its directory takes connections. */
  get running(): boolean {
    return (this.pebble?.running ?? false) && !this.refusing;
  }

  /** Starts Pebble (idempotent); a new start has a new issuing root, as Pebble makes one each time. */
  async start(): Promise<void> {
    if (this.pebble?.running) return;
    // No random validation delay; every nonce accepted: a client's retry is not what is tested.
    // No authorization reused: every order, renewals too, is validated through the LB anew.
    const env: NodeJS.ProcessEnv = { ...process.env, PEBBLE_VA_NOSLEEP: "1", PEBBLE_WFE_NONCEREJECT: "0", PEBBLE_AUTHZREUSE: "0" };
    delete env["PEBBLE_VA_ALWAYS_VALID"];
    const pebble = await this.ns.spawn("pebble", ["pebble", "-config", join(this.dir, "pebble.json"), "-dnsserver", `127.0.0.1:${DNS_PORT}`], { env });
    await waitForListening(this.ns, [{ port: DIRECTORY_PORT }, { port: MANAGEMENT_PORT }], { process: pebble, timeoutMs: 15_000 });
    this.pebble = pebble;
    const root = await pollUntil(
      "Pebble's issuing root",
      async () => {
        const r = await this.ns.exec(["curl", "-sS", "--fail", "--cacert", join(this.dir, "https-root.crt"), `https://${ACME_CA_IPV4}:${MANAGEMENT_PORT}/roots/0`], { allowFailure: true });
        return r.code === 0 && r.stdout.includes("BEGIN CERTIFICATE") ? r.stdout : undefined;
      },
      { timeoutMs: 10_000, intervalMs: 100 },
    );
    this.issuerRoots.push(root.trim() + "\n");
  }

  /**
   * The CA goes down: its directory refuses every connection (a reset, as from a stopped
   * server). Pebble itself keeps running, because it keeps its accounts in memory only: a real
   * restart would forget every account, which Let's Encrypt never does.
   */
  async down(): Promise<void> {
    await this.ns.nft(`table inet acme_ca_down {\n  chain input {\n    type filter hook input priority 0;\n    tcp dport { ${DIRECTORY_PORT}, ${MANAGEMENT_PORT} } reject with tcp reset\n  }\n}\n`);
    this.refusing = true;
  }

  /** Back up after `down`. */
  async up(): Promise<void> {
    if (!this.refusing) return;
    await this.ns.exec(["nft", "delete", "table", "inet", "acme_ca_down"]);
    this.refusing = false;
  }

  /** Called by the cloud for every server it creates: the one named in the options becomes every name's address. */
  async serverCreated(name: string, ipv4: string): Promise<void> {
    if (name !== this.options.resolveToServer) return;
    await this.resolveTo(ipv4);
    this.resolvedIpv4 = ipv4;
  }

  /** Points every name at `ipv4` (a check may aim it elsewhere to make validations fail). */
  async resolveTo(ipv4: string): Promise<void> {
    const body = JSON.stringify({ ip: ipv4 });
    await this.ns.exec(["curl", "-sS", "--fail", "-X", "POST", "-d", body, `http://127.0.0.1:${DNS_MANAGEMENT_PORT}/set-default-ipv4`]);
  }

  info(): AcmeCaInfo {
    return {
      directoryUrl: `https://${ACME_CA_IPV4}:${DIRECTORY_PORT}/dir`,
      httpsRootPem: readFileSync(join(this.dir, "https-root.crt"), "utf8"),
      issuerRootsPem: this.issuerRoots.join(""),
      netns: this.ns.name,
      running: this.running,
      resolvesTo: this.resolvedIpv4 === undefined ? { server: this.options.resolveToServer } : { server: this.options.resolveToServer, ipv4: this.resolvedIpv4 },
    };
  }
}
