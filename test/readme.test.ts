/**
 * The README against the project: its configuration table (a key added, renamed or given another
 * default without the README following fails here), its commands, its error examples (exactly what
 * the Pulumi CLI, as modelled from its source, and the program print), its length and contents
 * list, and the links to docs/.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { readConfig } from "../config";
import { ConfigCommands, stackFile } from "./support/program";
import { programConfig } from "./support/pulumiCli";

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

/** The text of every fenced code block. */
const codeBlocks = [...readme.matchAll(/^```[a-z]*\n([\s\S]*?)^```$/gm)].map((m) => m[1]);

/** What the CLI (its model) or the program prints for dev's stack file after `commands`. */
function errorFor(commands: ConfigCommands): string {
    try {
        const cli = programConfig(stackFile("dev", commands), "dev");
        readConfig(cli.config, (k) => cli.secretKeys.includes(k), {
            project: "model-registry",
            stack: "dev",
        });
    } catch (e) {
        return (e as Error).message;
    }
    throw new Error(`no error for ${JSON.stringify(commands)}`);
}

describe("README error examples", () => {
    it.each([
        [
            "the program's, for a misspelt key, a bad name and a bad platform",
            { modelVerison: "1.2.0", repositoryName: "My-Model", platform: "x86_64" },
        ],
        ["the CLI's, for a value of the wrong type", { protect: "no" }],
        ["the CLI's, for a required key that is not set", { modelVersion: null }],
    ] as [string, ConfigCommands][])("show %s exactly, in a code block", (_name, commands) => {
        const message = errorFor(commands);
        expect(message.length).toBeGreaterThan(20);
        expect(codeBlocks.some((block) => block.includes(`error: ${message}\n`))).toBe(true);
    });

    it("are what the program prints, not the CLI's, for the three-problem example", () => {
        // The first example is the program's own message: the CLI lets that stack file through.
        const stack = stackFile("dev", {
            modelVerison: "1.2.0",
            repositoryName: "My-Model",
            platform: "x86_64",
        });
        const cli = programConfig(stack, "dev");
        expect(() =>
            readConfig(cli.config, (k) => cli.secretKeys.includes(k), {
                project: "model-registry",
                stack: "dev",
            }),
        ).toThrow(/^Invalid configuration for stack "dev" \(3 problems\)/);
    });
});

/** GitHub's anchor for a heading: lower case, punctuation dropped, spaces as hyphens. */
function anchorOf(heading: string): string {
    return heading
        .trim()
        .toLowerCase()
        .replace(/[^\p{L}\p{N}\s_-]/gu, "")
        .replace(/\s/g, "-");
}

/** The anchors of a Markdown text's headings, outside code blocks. */
function anchors(text: string): Set<string> {
    const prose = text.replace(/^```[\s\S]*?^```$/gm, "");
    return new Set([...prose.matchAll(/^#{1,6} (.+)$/gm)].map((m) => anchorOf(m[1])));
}

describe("README layout", () => {
    it("has at most 350 lines", () => {
        expect(readme.split("\n").length - (readme.endsWith("\n") ? 1 : 0)).toBeLessThanOrEqual(
            350,
        );
    });

    it("opens with a contents list that links every section", () => {
        const contents = /^\*\*Contents:\*\*([\s\S]*?)\n\n/m.exec(readme)?.[1] ?? "";
        const listed = [...contents.matchAll(/\]\(#([^)]+)\)/g)].map((m) => m[1]);
        const sections = [...readme.replace(/^```[\s\S]*?^```$/gm, "").matchAll(/^## (.+)$/gm)];
        expect(listed).toEqual(sections.map((m) => anchorOf(m[1])));
        expect(readme.indexOf("**Contents:**")).toBeLessThan(readme.indexOf("\n## "));
    });

    it("links only to headings and files that exist", () => {
        const own = anchors(readme);
        for (const [, target] of readme.matchAll(/\]\(([^)\s]+)\)/g)) {
            if (/^https?:/.test(target)) continue;
            const [file, anchor] = target.split("#");
            if (file === "") {
                expect(own).toContain(anchor);
                continue;
            }
            expect(fs.existsSync(file)).toBe(true);
            if (anchor) expect(anchors(fs.readFileSync(file, "utf8"))).toContain(anchor);
        }
    });

    it("computes anchors as GitHub does", () => {
        expect(anchors(readme)).toContain("security-who-may-do-what");
        expect(anchors(readme)).not.toContain("aws-permissions");
        expect(anchorOf("Promotion and `npm run release`")).toBe("promotion-and-npm-run-release");
        expect(anchorOf("CI/CD set-up")).toBe("cicd-set-up");
    });
});

describe("docs/", () => {
    const docs = fs.readdirSync("docs").filter((f) => f.endsWith(".md"));

    it.each(docs)(
        "%s starts with one line saying what lives there, and is linked from the README",
        (file) => {
            const [first, second] = fs.readFileSync(path.join("docs", file), "utf8").split("\n");
            expect(first).toMatch(/^[A-Z`].*\.$/);
            expect(second).toBe("");
            expect(readme).toContain(`](docs/${file})`);
        },
    );

    it.each(docs)("%s links only to headings and files that exist", (file) => {
        const text = fs.readFileSync(path.join("docs", file), "utf8");
        const own = anchors(text);
        for (const [, target] of text.matchAll(/\]\(([^)\s]+)\)/g)) {
            if (/^https?:/.test(target)) continue;
            const [name, anchor] = target.split("#");
            if (name === "") {
                expect(own).toContain(anchor);
                continue;
            }
            const resolved = path.join("docs", name);
            expect(fs.existsSync(resolved)).toBe(true);
            if (anchor) expect(anchors(fs.readFileSync(resolved, "utf8"))).toContain(anchor);
        }
    });
});

describe("README set-up", () => {
    it("runs the tests with the command CI runs", () => {
        const ci = YAML.parse(fs.readFileSync(".github/workflows/ci.yml", "utf8")) as {
            jobs: { test: { steps: { run?: string }[] } };
        };
        const runs = ci.jobs.test.steps.flatMap((s) => (s.run ? [s.run] : []));
        expect(runs).toEqual(["bash .ci/run"]);
        const section = readme.split(/^### Run the tests$/m)[1]?.split(/^#/m)[0] ?? "";
        expect(section).toContain("Two commands:");
        expect(section).toMatch(/^bash \.ci\/run +# everything, as CI runs it/m);
        expect(section).toMatch(/^npm ci && npm run test:unit +#/m);
    });

    it("never puts the registry password on a command line", () => {
        const set = [...readme.matchAll(/pulumi config set --secret registryPassword([^`\n]*)/g)];
        expect(set.length).toBeGreaterThan(0);
        for (const m of set) expect(m[1]).not.toMatch(/^ +[^(\s]/);
        expect(readme).toContain("--password-stdin");
    });

    it("names the IAM files that exist", () => {
        const named = [...readme.matchAll(/iam\/[\w.-]+\.json/g)].map((m) => m[0]);
        expect(named.length).toBeGreaterThan(0);
        for (const file of named) expect(fs.existsSync(file)).toBe(true);
        expect(readme).not.toMatch(/deployer-ecr-(public|private)\.json/);
    });
});
