// The validated topology: stack config after every cross-field rule has passed.
import type { AcmeConfig, AttachIngressConfig, NetworkConfig, OwnIngressConfig, ServerConfig, SiteConfig, StackConfig } from "./schema";
import type { ENGINES } from "./schema";

export type Engine = (typeof ENGINES)[number];

export type OwnIngress = Omit<OwnIngressConfig, "engine"> & { readonly engine: Engine };
export type AttachIngress = AttachIngressConfig;
export type Ingress = OwnIngress | AttachIngress;

export interface Topology {
  readonly stack: string;
  readonly location: StackConfig["location"];
  readonly networkZone: StackConfig["networkZone"];
  readonly networks: readonly NetworkConfig[];
  /** Servers that run sites; the LB of an `own` ingress is in `ingress.server`. */
  readonly servers: readonly ServerConfig[];
  /** Sites with normalised hostnames. */
  readonly sites: readonly SiteConfig[];
  readonly ingress: Ingress;
  readonly ssh: StackConfig["ssh"];
  readonly protect: boolean;
  readonly containerImages: StackConfig["containerImages"];
  /** ACME account settings; present when any site has `tls.source: acme` (validated). */
  readonly acme?: AcmeConfig;
}

export type { NetworkConfig, ServerConfig, SiteConfig };
