// Throwaway network namespaces: nothing a test starts can reach or bind anything outside them.
import { exec, mustExec } from "./exec";

let counter = 0;

export class TestNetns {
  private constructor(readonly name: string) {}

  static create(role: string): TestNetns {
    const name = `rtest-hx${process.pid}-${role}-${counter++}`.slice(0, 40);
    mustExec(["ip", "netns", "add", name]);
    const ns = new TestNetns(name);
    ns.ip("link", "set", "lo", "up");
    return ns;
  }

  /** argv prefixed with `ip netns exec <name>`, for spawn or exec. */
  argv(...argv: string[]): string[] {
    return ["ip", "netns", "exec", this.name, ...argv];
  }

  run(...argv: string[]) {
    return exec(this.argv(...argv));
  }

  ip(...args: string[]): void {
    mustExec(["ip", "-n", this.name, ...args]);
  }

  delete(): void {
    exec(["ip", "netns", "del", this.name]);
  }
}

/** A veth pair with one end in each namespace, each end with its address (CIDR form). */
export function link(a: TestNetns, aAddr: string, b: TestNetns, bAddr: string, tag: string): void {
  const ea = `v${tag}a${counter}`;
  const eb = `v${tag}b${counter++}`;
  mustExec(["ip", "link", "add", ea, "netns", a.name, "type", "veth", "peer", "name", eb, "netns", b.name]);
  a.ip("addr", "add", aAddr, "dev", ea);
  b.ip("addr", "add", bAddr, "dev", eb);
  a.ip("link", "set", ea, "up");
  b.ip("link", "set", eb, "up");
}

/** Runs `fn` with a fresh namespace and always deletes it. */
export function withNetns<T>(role: string, fn: (ns: TestNetns) => T): T {
  const ns = TestNetns.create(role);
  try {
    return fn(ns);
  } finally {
    ns.delete();
  }
}
