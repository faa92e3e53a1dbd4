// The ingress scenario: prod and demo deployed by the local engine (local/) on the local cloud,
// and the end-to-end checks run against them, for `npm run sandbox` and the e2e suite.
export * from "./engines";
export * from "./ingress-checks";
export * from "./ingress-plan";
export * from "./ingress-sandbox";
export * from "./prerequisites";
export * from "./sandbox-run";
