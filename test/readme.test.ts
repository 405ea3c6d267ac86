/**
 * The README's configuration table and commands against the project: a key added, renamed or
 * given another default without the README following fails here.
 */
import * as fs from "fs";
import * as YAML from "yaml";

const readme = fs.readFileSync("README.md", "utf8");
const project = YAML.parse(fs.readFileSync("Pulumi.yaml", "utf8")) as {
    config: Record<string, { type: string; default?: unknown; secret?: boolean }>;
};
const scripts = (
    JSON.parse(fs.readFileSync("package.json", "utf8")) as {
        scripts: Record<string, string>;
    }
).scripts;

/** Rows of the table under "## Configuration": key -> default cell. */
function configTable(text: string): Map<string, string> {
    const section = text.split(/^## Configuration$/m)[1]?.split(/^## /m)[0] ?? "";
    const rows = new Map<string, string>();
    for (const line of section.split("\n")) {
        const m = /^\| `([A-Za-z]+)` \| ([^|]*) \|/.exec(line);
        if (m) rows.set(m[1], m[2].trim());
    }
    return rows;
}

describe("README configuration table", () => {
    const rows = configTable(readme);

    it("has one row per key Pulumi.yaml declares, and no other", () => {
        expect([...rows.keys()].sort()).toEqual(Object.keys(project.config).sort());
    });

    it.each(Object.keys(project.config))("shows the declared default of %s", (key) => {
        const declared = project.config[key];
        const cell = rows.get(key) ?? "";
        if (declared.default === undefined) {
            expect(cell).toMatch(declared.secret ? /secret/ : /required/);
        } else if (typeof declared.default !== "object" && declared.default !== "") {
            expect(cell).toContain(`\`${String(declared.default)}\``);
        } else if (Array.isArray(declared.default) && declared.default.length > 0) {
            expect(cell).toContain(`\`${JSON.stringify(declared.default)}\``);
        } else {
            // An empty default is described (empty, derived, none), never shown as a value.
            expect(cell).not.toBe("");
        }
    });

    it("catches a row that goes missing or a default that changes", () => {
        const broken = readme
            .replace(/^\| `kmsKey` \|.*\n/m, "")
            .replace("| `localRegistryPort` | `5000` |", "| `localRegistryPort` | `5001` |");
        const rowsBroken = configTable(broken);
        expect(rowsBroken.has("kmsKey")).toBe(false);
        expect(rowsBroken.get("localRegistryPort")).not.toContain("`5000`");
    });
});

describe("README commands", () => {
    it("name only npm scripts that exist", () => {
        const named = [...readme.matchAll(/npm run ([a-z]+(?::[a-z]+)*)/g)].map((m) => m[1]);
        expect(named.length).toBeGreaterThan(3);
        for (const name of new Set(named)) expect(Object.keys(scripts)).toContain(name);
    });

    it("select stacks that have a stack file", () => {
        const selected = [...readme.matchAll(/pulumi stack select (?:--create )?([a-z-]+)/g)].map(
            (m) => m[1],
        );
        expect(selected).toEqual(expect.arrayContaining(["local", "dev"]));
        for (const stack of new Set(selected)) {
            expect(fs.existsSync(`Pulumi.${stack}.yaml`)).toBe(true);
        }
    });

    it("start the local quick start on the local target, with no AWS settings", () => {
        const local = YAML.parse(fs.readFileSync("Pulumi.local.yaml", "utf8")) as {
            config: Record<string, unknown>;
        };
        expect(local.config["model-registry:registry"]).toBe("local");
        expect(Object.keys(local.config).filter((k) => k.startsWith("aws:"))).toEqual([]);
    });
});
