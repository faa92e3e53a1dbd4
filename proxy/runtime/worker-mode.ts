/**
 * How workers share the listening ports. Node >= 22.12 can set SO_REUSEPORT
 * (`reusePort`), so every worker thread binds its own socket and the kernel
 * spreads connections; threads also share the rate tables' memory (see
 * docs/proxy.md). Older Node falls back to node:cluster processes, where the
 * primary accepts and hands connections round-robin.
 */
export type WorkerMode = "single" | "threads" | "cluster";

export function supportsReusePort(version: string = process.versions.node, platform: string = process.platform): boolean {
  const [major, minor] = version.split(".").map(Number) as [number, number];
  const new_enough = major > 22 || (major === 22 && minor >= 12);
  return new_enough && (platform === "linux" || platform === "freebsd");
}

export function chooseWorkerMode(count: number, reusePort: boolean = supportsReusePort()): WorkerMode {
  if (count <= 1) return "single";
  return reusePort ? "threads" : "cluster";
}
