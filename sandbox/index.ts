// The ingress scenario: prod and demo as the sandbox deploys them on the namespace lab (lab/),
// for `npm run sandbox` and the end-to-end tests.
export * from "./engines";
export * from "./host-root";
export * from "./ingress-checks";
export * from "./ingress-plan";
export * from "./ingress-sandbox";
export * from "./mount-points";
export * from "./prerequisites";
