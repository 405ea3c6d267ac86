/**
 * The one reader of the project's Pulumi files: the project file (`Pulumi.yaml`), its stacks, and
 * a stack file's config. Reads files only; says what is wrong with a file instead of throwing.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";

/** The characters of a Pulumi stack name. */
export const STACK_NAME = /^[A-Za-z0-9_.-]+$/;

/**
 * The project file in `projectDir`, as the Pulumi CLI finds it: the first of `Pulumi.json`,
 * `Pulumi.yaml`, `Pulumi.yml` that exists (`findProjectInDir` over `encoding.Exts`, in
 * sdk/go/common/workspace/paths.go and sdk/go/common/encoding/marshal.go); `Pulumi.yaml` when
 * there is none, so that a problem names the file expected.
 */
function projectFile(projectDir: string): string {
    const found = [".json", ".yaml", ".yml"]
        .map((ext) => path.join(projectDir, `Pulumi${ext}`))
        .find((file) => fs.statSync(file, { throwIfNoEntry: false })?.isFile());
    return found ?? path.join(projectDir, "Pulumi.yaml");
}

/**
 * A stack's file name, `Pulumi.<stack>.yaml`. The CLI gives a stack file the extension of the
 * project file (`ProjectStackPath` in sdk/go/common/workspace/paths.go: `Pulumi.<stack>` plus
 * `filepath.Ext(projPath)`), so next to a `Pulumi.yaml` a `Pulumi.dev.yml` or `Pulumi.dev.json`
 * is no stack file. (A project's `stackConfigDir`, which moves the stack files, is not read: this
 * project sets none.)
 */
export function stackFileName(projectDir: string, stack: string): string {
    return `Pulumi.${stack}${path.extname(projectFile(projectDir))}`;
}

/** The project's stacks, sorted: each `Pulumi.<stack>.yaml` next to `Pulumi.yaml`. */
export function listStacks(projectDir: string): string[] {
    const ext = path.extname(projectFile(projectDir));
    return fs
        .readdirSync(projectDir)
        .filter((f) => f.startsWith("Pulumi.") && f.endsWith(ext))
        .map((f) => f.slice("Pulumi.".length, -ext.length))
        .filter((s) => STACK_NAME.test(s))
        .sort();
}

function readYaml(file: string): { doc: unknown } | { problem: string } {
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch (e) {
        return { problem: `cannot read it (${(e as Error).message})` };
    }
    try {
        return { doc: YAML.parse(text) as unknown };
    } catch (e) {
        return { problem: `it is not valid YAML (${(e as Error).message.split("\n")[0]})` };
    }
}

/** The project's name (`name:` in `Pulumi.yaml`), or what is wrong, ending with its fix. */
export function readProjectName(projectDir: string): string | { problem: string } {
    const file = path.basename(projectFile(projectDir));
    const read = readYaml(path.join(projectDir, file));
    if ("problem" in read) {
        return {
            problem: `${file} in ${projectDir}: ${read.problem}. Fix: run the command in the project.`,
        };
    }
    const name = (read.doc as { name?: unknown } | null)?.name;
    if (typeof name !== "string" || name === "") {
        return { problem: `${file} in ${projectDir} has no name. Fix: set name: in ${file}.` };
    }
    return name;
}

/**
 * The `config:` of a stack's file (empty when it sets none), or what is wrong with the file, as a
 * clause without its file name.
 */
export function readStackConfig(
    projectDir: string,
    stack: string,
): { config: Record<string, unknown> } | { problem: string } {
    const read = readYaml(path.join(projectDir, stackFileName(projectDir, stack)));
    if ("problem" in read) return read;
    const config = (read.doc as { config?: unknown } | null)?.config ?? {};
    if (typeof config !== "object" || config === null) {
        return { problem: `"config" is not a mapping` };
    }
    return { config: config as Record<string, unknown> };
}
