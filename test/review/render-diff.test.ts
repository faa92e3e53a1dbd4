// `npm run render -- --diff <ref>` on a scratch git repository holding this checkout: a route
// added in one commit, a timeout changed in the work tree, then nothing changed. The hosts,
// files and hunks it reports are exactly those, and its bundle hashes are the program's.
import { test } from "node:test";
import assert from "node:assert/strict";
import { execFileSync } from "node:child_process";
import { cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { hostBundleHashes } from "../../components/deploy/host-bundles";
import { programBundles } from "../../components/program/program-files";
import { formatMarkdown, formatText, renderDiff } from "../../scripts/render-diff";
import { readStackConfig, REPO_ROOT } from "../../scripts/stack-files";
import { planStack, validateStackConfig } from "../../topology";

const UPDATE = process.env.UPDATE_GOLDEN === "1";
const GOLDEN = join(REPO_ROOT, "test", "golden", "render-diff", "route-added.md");

function git(repo: string, ...args: string[]): string {
  return execFileSync("git", ["-C", repo, "-c", "user.name=t", "-c", "user.email=t@example.test", ...args], { encoding: "utf8" });
}

test("render --diff names exactly the hosts and lines a change moves, and the program's bundle hashes", { timeout: 120_000 }, () => {
  const repo = mkdtempSync(join(tmpdir(), "render-diff-repo-"));
  try {
    for (const file of git(REPO_ROOT, "ls-files", "--cached", "--others", "--exclude-standard").split("\n").filter((f) => f !== "" && !f.startsWith("test/"))) {
      mkdirSync(dirname(join(repo, file)), { recursive: true });
      cpSync(join(REPO_ROOT, file), join(repo, file));
    }
    symlinkSync(join(REPO_ROOT, "node_modules"), join(repo, "node_modules"));
    writeFileSync(join(repo, ".gitignore"), "node_modules\n");
    git(repo, "init", "-q");
    git(repo, "add", "-A");
    git(repo, "commit", "-q", "-m", "base");
    const prodYaml = join(repo, "Pulumi.prod.yaml");
    const base = readFileSync(prodYaml, "utf8");

    // Commit 2: a route added (a second site on the backend server, on its own port).
    const withRoute = base.replace(
      "  hetzner-ingress:ingress:",
      "    - hostname: api.fiscalismia.com\n      server: backend\n      port: 8443\n      tls:\n        source: acme\n  hetzner-ingress:ingress:",
    );
    assert.notEqual(withRoute, base);
    writeFileSync(prodYaml, withRoute);
    git(repo, "commit", "-q", "-am", "a route");

    const added = renderDiff({ repo, stack: "prod", ref: "HEAD~1" });
    assert.deepEqual(added.map((c) => [c.host, c.files.map((f) => f.path)]), [
      // The acme script gains the name; nginx's unit does not change (a reload, not a restart).
      ["backend", ["/srv/ingress/current/acme/renew.sh", "/srv/ingress/current/apply.plan", "/srv/ingress/current/nftables/ingress.nft", "/srv/ingress/current/nginx/nginx.conf", "/srv/ingress/current/nginx/sites/api.fiscalismia.com.conf", "/srv/ingress/current/tls/host-certs"]],
      ["loadbalancer", ["/srv/ingress/current/attached/policy.json", "/srv/ingress/current/haproxy/routes.d/prod.cfg", "/srv/ingress/current/haproxy/routes.d/prod.map"]],
    ]);
    const patch = (host: string, path: string) => added.find((c) => c.host === host)!.files.find((f) => f.path === path)!.patch;
    assert.match(patch("loadbalancer", "/srv/ingress/current/haproxy/routes.d/prod.map"), /^\+api\.fiscalismia\.com prod_backend_8443$/m);
    assert.match(patch("backend", "/srv/ingress/current/apply.plan"), /^\+probe\t127\.0\.0\.1\t8443\tnginx\tsite$/m);
    // The hashes are the ones the program redeploys on, before and after.
    const plan = (yaml: string) => {
      writeFileSync(join(repo, "tmp.yaml"), yaml);
      const p = planStack(validateStackConfig("prod", readStackConfig(join(repo, "tmp.yaml"))));
      return hostBundleHashes(p, readFileSync(join(REPO_ROOT, "files", "apply.sh"), "utf8"), programBundles(p));
    };
    const [hb, ha] = [plan(base), plan(withRoute)];
    for (const c of added) assert.deepEqual([c.before, c.after], [hb[c.host], ha[c.host]], c.host);
    rmSync(join(repo, "tmp.yaml"));

    // Hashes move with any change to apply.sh or the built scripts; they are checked above.
    const md = formatMarkdown("prod", "HEAD~1", added).replace(/`[0-9a-f]{12}` -> `[0-9a-f]{12}`/g, "`<old>` -> `<new>`");
    if (UPDATE) {
      mkdirSync(dirname(GOLDEN), { recursive: true });
      writeFileSync(GOLDEN, md);
    }
    assert.equal(md, readFileSync(GOLDEN, "utf8"), "test/golden/render-diff/route-added.md differs; run with UPDATE_GOLDEN=1 and review the diff");

    // In the work tree only: a timeout changed. The LB alone, and only its timeout lines.
    writeFileSync(prodYaml, withRoute.replace("      connect: 5s", "      connect: 7s"));
    const timeout = renderDiff({ repo, stack: "prod", ref: "HEAD" });
    assert.deepEqual(timeout.map((c) => c.host), ["loadbalancer"]);
    const lines = timeout[0]!.files.flatMap((f) => f.patch.split("\n").filter((l) => /^[+-](?![+-])/.test(l)));
    // haproxy.cfg's defaults, each of the four backends and its ACME challenge twin, and the
    // policy attached stacks are rendered with.
    assert.deepEqual(lines.filter((l) => l.startsWith("+")).map((l) => `+${l.slice(1).trim()}`).sort(), ['+"connect": 7000,', ...Array<string>(9).fill("+timeout connect 7s")].sort());
    assert.equal(lines.filter((l) => l.startsWith("-")).length, 10);

    // A stack the ref does not have: every host new, none failing the diff.
    cpSync(join(REPO_ROOT, "examples", "Pulumi.standalone-demo.yaml"), join(repo, "Pulumi.fresh.yaml"));
    const fresh = renderDiff({ repo, stack: "fresh", ref: "HEAD", config: "Pulumi.fresh.yaml" });
    assert.deepEqual(fresh.map((c) => [c.host, c.before]), [["lb", undefined], ["web", undefined]]);
    assert.match(formatText("fresh", "HEAD", fresh), /== lb: bundle \(none\) -> [0-9a-f]{12}, new host/);
    rmSync(join(repo, "Pulumi.fresh.yaml"));

    // Nothing changed.
    writeFileSync(prodYaml, withRoute);
    const none = renderDiff({ repo, stack: "prod", ref: "HEAD" });
    assert.deepEqual(none, []);
    assert.equal(formatText("prod", "HEAD", none), "stack prod: no host changes against HEAD\n");
  } finally {
    rmSync(repo, { recursive: true, force: true });
  }
});

test("the Markdown comment shows a change shared by several hosts once, and stays under GitHub's comment limit", () => {
  const shared = { path: "/srv/ingress/current/apply.sh", patch: "--- a/srv/ingress/current/apply.sh\n+++ b/srv/ingress/current/apply.sh\n@@ -1 +1 @@\n-old\n+new\n" };
  const big = (host: string) => ({ host, before: "a".repeat(64), after: "b".repeat(64), files: [shared, { path: `/srv/${host}`, patch: `+${host}${"x".repeat(25_000)}\n` }] });
  const md = formatMarkdown("prod", "main", [big("alpha"), big("beta"), big("gamma")]);
  assert.ok(md.length <= 60_000, String(md.length));
  assert.equal(md.split("+new").length - 1, 1, "apply.sh's change printed once");
  assert.match(md, /# \/srv\/ingress\/current\/apply\.sh: the same change as on alpha/);
  assert.match(md, /Diffs of `gamma` left out: the comment would be too long\. `npm run render -- --stack prod --diff main` prints them\./);
  // The table names every host, shown or not.
  for (const host of ["alpha", "beta", "gamma"]) assert.match(md, new RegExp(`\\| \`${host}\` \\|`));
});
