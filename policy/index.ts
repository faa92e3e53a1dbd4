// The policy pack `pulumi preview --policy-pack policy` loads (policy/PulumiPolicy.yaml).
import { PolicyPack } from "@pulumi/policy";
import { POLICIES } from "./policies";

new PolicyPack("hetzner-ingress", { policies: [...POLICIES] });
