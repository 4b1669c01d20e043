/**
 * The layers of the hub, checked on the source: each file may import only from its own layer and the ones
 * below it. Top to bottom: the Worker entries, the app that composes every route (`src/app.ts`), the
 * routes, the HTTP building blocks they share (`src/http/`), the domain folders, and the leaves (errors,
 * database, small libraries). Durable Objects sit beside the HTTP layer: they use the domain, never the
 * API. Tests are not checked: a test may drive the whole app.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const root = resolve(__dirname, "../..");

type Layer = "entry" | "app" | "routes" | "http" | "durable-objects" | "domain" | "leaf";

const DOMAIN_FOLDERS = [
  "auth",
  "authz",
  "tenancy",
  "catalog",
  "runtime",
  "git",
  "mail",
  "assets",
  "agent-state",
  "secrets",
];

const layerOf = (file: string): Layer | null => {
  if (file === "src/index.ts" || file === "src/instances-worker.ts") return "entry";
  if (file === "src/app.ts") return "app";
  if (file.startsWith("src/routes/")) return "routes";
  if (file.startsWith("src/http/")) return "http";
  if (file.startsWith("durable-objects/")) return "durable-objects";
  if (DOMAIN_FOLDERS.some((folder) => file.startsWith(`src/${folder}/`))) return "domain";
  if (file === "src/errors.ts" || file.startsWith("src/db/") || file.startsWith("src/lib/")) return "leaf";
  return null;
};

/** What each layer may import (besides packages). */
const allowed: Record<Layer, readonly Layer[]> = {
  entry: ["entry", "app", "routes", "http", "durable-objects", "domain", "leaf"],
  app: ["app", "routes", "http", "domain", "leaf"],
  routes: ["routes", "http", "domain", "leaf"],
  http: ["http", "domain", "leaf"],
  "durable-objects": ["durable-objects", "domain", "leaf"],
  domain: ["domain", "leaf"],
  leaf: ["leaf"],
};

function sourceFiles(dir: string): string[] {
  const out: string[] = [];
  for (const name of readdirSync(join(root, dir))) {
    const path = `${dir}/${name}`;
    if (statSync(join(root, path)).isDirectory()) out.push(...sourceFiles(path));
    else if (name.endsWith(".ts") && !name.endsWith(".d.ts")) out.push(path);
  }
  return out;
}

const isTest = (file: string) => file.endsWith(".test.ts");
const files = [...sourceFiles("src"), ...sourceFiles("durable-objects")].filter((f) => !isTest(f));

function importsOf(file: string): string[] {
  return ts.preProcessFile(readFileSync(join(root, file), "utf8"), true, true).importedFiles.map((i) => i.fileName);
}

/** A relative import resolved to a repository path (the file itself, or the folder's index). */
function resolveImport(from: string, specifier: string): string {
  const base = relative(root, resolve(root, dirname(from), specifier));
  for (const candidate of [base, `${base}.ts`, `${base}/index.ts`]) {
    try {
      if (statSync(join(root, candidate)).isFile()) return candidate;
    } catch {}
  }
  return base;
}

/** The imports of one file that break the layering, as `file → target (layer may not import layer)`. */
function violationsOf(file: string, specifiers: readonly string[]): string[] {
  const layer = layerOf(file);
  if (!layer) return [`${file} belongs to no layer`];
  const violations: string[] = [];
  for (const specifier of specifiers) {
    if (!specifier.startsWith(".")) continue;
    const target = resolveImport(file, specifier);
    const targetLayer = layerOf(target);
    if (targetLayer && !allowed[layer].includes(targetLayer)) {
      violations.push(`${file} → ${target} (${layer} may not import ${targetLayer})`);
    }
  }
  return violations;
}

const layerViolations = (list: readonly string[] = files) => list.flatMap((f) => violationsOf(f, importsOf(f)));

describe("layers", () => {
  it("every source file imports only from its own layer and those below it", () => {
    expect(files.length).toBeGreaterThan(100);
    expect(layerViolations()).toEqual([]);
  });

  it("domain code never imports the HTTP layer, the routes or the app", () => {
    const domain = files.filter((f) => layerOf(f) === "domain");
    expect(domain.length).toBeGreaterThan(50);
    const upward = layerViolations(domain).filter((v) => /may not import (http|routes|app)\)$/.test(v));
    expect(upward).toEqual([]);
  });

  it("routes and the HTTP layer build no database queries: storage is the domain's", () => {
    const http = files.filter((f) => layerOf(f) === "routes" || layerOf(f) === "http" || layerOf(f) === "app");
    const querying = http.filter((f) => importsOf(f).some((s) => s === "drizzle-orm" || s.startsWith("drizzle-orm/")));
    expect(querying).toEqual([]);
  });

  it("keeps Durable Object classes thin shells over runtime modules (about 250 lines at most)", () => {
    const sizes = files
      .filter((f) => layerOf(f) === "durable-objects")
      .map((f) => ({ file: f, lines: readFileSync(join(root, f), "utf8").split("\n").length }));
    expect(sizes.length).toBeGreaterThan(0);
    expect(sizes.filter((s) => s.lines > 260)).toEqual([]);
  });

  it("has no barrel files: only the Worker entries are called index.ts", () => {
    const barrels = [...sourceFiles("src"), ...sourceFiles("durable-objects")].filter(
      (f) => f.endsWith("/index.ts") && f !== "src/index.ts",
    );
    expect(barrels).toEqual([]);
  });

  it("catches an upward import (the check itself: a broken resolver would make the tests above pass)", () => {
    expect(violationsOf("src/catalog/agents.ts", ["../http/router", "../db/client", "drizzle-orm"])).toEqual([
      "src/catalog/agents.ts → src/http/router.ts (domain may not import http)",
    ]);
    expect(violationsOf("src/runtime/launch.ts", ["../routes/instances"])).toEqual([
      "src/runtime/launch.ts → src/routes/instances.ts (domain may not import routes)",
    ]);
    expect(violationsOf("src/lib/ids.ts", ["../catalog/agents"])).toEqual([
      "src/lib/ids.ts → src/catalog/agents.ts (leaf may not import domain)",
    ]);
    expect(violationsOf("durable-objects/instance.ts", ["../src/routes/instances", "../src/runtime/fanout"])).toEqual([
      "durable-objects/instance.ts → src/routes/instances.ts (durable-objects may not import routes)",
    ]);
  });
});
