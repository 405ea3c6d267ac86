/**
 * The import graph: one folder per concern, each importing only from the layers below it (the
 * list in docs/internals.md, "Project layout"). The registry protocol knows nothing of the
 * project; the program's own code never imports the tests, the bench or the scripts.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

/** What each part of the project may import of the project (besides itself). */
const MAY_IMPORT: Record<string, readonly string[]> = {
    "lib/oci": [],
    "lib/validation": [],
    "lib/stackFiles": [],
    "lib/publication": ["lib/oci", "lib/validation"],
    config: ["lib/oci", "lib/validation", "lib/publication", "lib/stackFiles"],
    "lib/release": ["lib/validation", "lib/publication", "lib/stackFiles"],
    components: ["lib/oci", "lib/validation", "lib/publication"],
    policy: ["lib/validation"],
    program: ["config", "components", "lib/publication"],
    index: ["config", "program"],
    scripts: ["lib/release"],
    bench: ["components", "lib/oci", "lib/publication", "test"],
};

/** The part a project file belongs to: `lib/<name>`, or its top-level folder or file. */
function partOf(file: string): string {
    const parts = file.replace(/\.ts$/, "").split("/");
    return parts[0] === "lib" ? `lib/${parts[1]}` : parts[0];
}

const sources = execFileSync("git", ["ls-files", "*.ts"], { encoding: "utf8" })
    .split("\n")
    .filter((f) => f !== "" && !f.startsWith("test/") && fs.existsSync(f));

/** Every import of a project file, as `importer part -> imported part`. */
function imports(): string[] {
    const found: string[] = [];
    for (const file of sources) {
        const text = fs.readFileSync(file, "utf8");
        for (const m of text.matchAll(/(?:from|import\(|require\()\s*"(\.\.?\/[^"]*)"/g)) {
            const target = path.relative(".", path.resolve(path.dirname(file), m[1]));
            if (partOf(target) !== partOf(file)) found.push(`${partOf(file)} -> ${partOf(target)}`);
        }
    }
    return [...new Set(found)].sort();
}

describe("the import graph", () => {
    it("has each part import only the parts below it", () => {
        const edges = imports();
        expect(edges.length).toBeGreaterThan(10);
        const upward = edges.filter((edge) => {
            const [from, to] = edge.split(" -> ");
            return !(MAY_IMPORT[from] ?? []).includes(to);
        });
        expect(upward).toEqual([]);
    });

    it("knows every part of the project", () => {
        const parts = new Set(sources.map(partOf));
        expect([...parts].filter((p) => !(p in MAY_IMPORT))).toEqual([]);
    });
});
