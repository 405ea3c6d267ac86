/**
 * This project's rules for its GitHub Actions workflows, on their parsed YAML: what actionlint
 * cannot know (which jobs may hold which token permissions, how stacks are deployed and
 * previewed). Shared by the test suite and by scripts/check-workflows.ts (`npm run
 * check:workflows`), which also runs actionlint.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";

/** What the rules need to know about the project. */
export interface WorkflowContext {
    /** Stacks that publish to AWS: every `Pulumi.<stack>.yaml` except `registry: local` ones. */
    readonly awsStacks: readonly string[];
    /** Stacks with `promoteFrom` (target -> source), among the AWS stacks. */
    readonly promotions: Readonly<Record<string, string>>;
    /** The scripts in package.json, which `npm run <script>` steps may call. */
    readonly npmScripts: readonly string[];
    /** The `@pulumi/pulumi` version the program is pinned to: the CLI the workflows install. */
    readonly pulumiVersion: string;
}

export interface WorkflowFile {
    /** The file name, for messages (`ci.yml`). */
    readonly file: string;
    /** The parsed YAML. */
    readonly doc: unknown;
}

/** The policy pack directory every preview and update runs with. */
export const POLICY_PACK = "policy";
/** The concurrency group of every job that changes stack `<stack>`, in every workflow. */
export const stackGroup = (stack: string): string => `pulumi-stack-${stack}`;
/** The only token permissions a job may ask for, each for one reason (see jobProblems). */
const ALLOWED_PERMISSIONS: Readonly<Record<string, string>> = {
    contents: "read",
    "id-token": "write",
    "pull-requests": "write",
};
/** Names of long-lived AWS credentials, which no workflow may reference. */
const AWS_KEY_NAMES =
    /AWS_(ACCESS_KEY_ID|SECRET_ACCESS_KEY|SESSION_TOKEN)|aws-(access-key-id|secret-access-key|session-token)/;
/** Pulumi commands that change a stack. */
const CHANGING_COMMANDS = new Set(["up", "update", "destroy", "refresh"]);

type Mapping = Record<string, unknown>;

function isMapping(v: unknown): v is Mapping {
    return typeof v === "object" && v !== null && !Array.isArray(v);
}

function mapping(v: unknown): Mapping {
    return isMapping(v) ? v : {};
}

/**
 * What the rules need from the project in `projectDir`: its AWS stacks and promotions (from its
 * `Pulumi.<stack>.yaml` files), its npm scripts and its `@pulumi/pulumi` version (package.json).
 */
export function loadWorkflowContext(projectDir: string): WorkflowContext {
    const awsStacks: string[] = [];
    const promotions: Record<string, string> = {};
    for (const file of fs.readdirSync(projectDir).sort()) {
        const m = /^Pulumi\.([^.]+)\.yaml$/.exec(file);
        if (!m) continue;
        const config = mapping(
            mapping(YAML.parse(fs.readFileSync(path.join(projectDir, file), "utf8"))).config,
        );
        if (config["model-registry:registry"] === "local") continue;
        awsStacks.push(m[1]);
        const from = config["model-registry:promoteFrom"];
        if (typeof from === "string" && from !== "") promotions[m[1]] = from;
    }
    const pkg = JSON.parse(fs.readFileSync(path.join(projectDir, "package.json"), "utf8")) as {
        scripts?: Record<string, string>;
        dependencies?: Record<string, string>;
    };
    return {
        awsStacks,
        promotions,
        npmScripts: Object.keys(pkg.scripts ?? {}),
        pulumiVersion: pkg.dependencies?.["@pulumi/pulumi"] ?? "",
    };
}

/** The events a workflow runs on (`on:` as a string, a list or a mapping). */
export function triggersOf(doc: unknown): string[] {
    const on = mapping(doc).on;
    if (typeof on === "string") return [on];
    if (Array.isArray(on)) return on.map(String);
    return Object.keys(mapping(on));
}

interface Step {
    readonly name?: string;
    readonly uses?: string;
    readonly run?: string;
    readonly with: Mapping;
    readonly env: Mapping;
}

function stepsOf(job: Mapping): Step[] {
    const steps = Array.isArray(job.steps) ? job.steps : [];
    return steps.map((s) => {
        const step = mapping(s);
        return {
            name: typeof step.name === "string" ? step.name : undefined,
            uses: typeof step.uses === "string" ? step.uses : undefined,
            run: typeof step.run === "string" ? step.run : undefined,
            with: mapping(step.with),
            env: mapping(step.env),
        };
    });
}

const actionOf = (step: Step): string | undefined => step.uses?.split("@")[0];

/** The stacks one job previews or changes, as the workflow writes them (`dev`, `${{ ... }}`). */
interface StackUse {
    readonly kind: "preview" | "change";
    /** The stack as written, possibly an expression. */
    readonly stack: string;
    /** The literal stack names it can be (a matrix expands to its values). */
    readonly names: readonly string[];
}

function stackNames(written: string, job: Mapping): string[] {
    const m = /^\$\{\{\s*matrix\.([\w-]+)\s*\}\}$/.exec(written);
    if (!m) return /^[\w.-]+$/.test(written) ? [written] : [];
    const values = mapping(mapping(job.strategy).matrix)[m[1]];
    return Array.isArray(values) ? values.map(String) : [];
}

/** `npm run release -- <version> [--to <stack>] [--preview]` in a run script, if any. */
function releaseTarget(step: Step): { stack: string; preview: boolean } | undefined {
    if (!step.run || !/\bnpm run release\b/.test(step.run)) return undefined;
    const preview = /--preview\b/.test(step.run);
    const to = /--to[\s=]+"?\$\{?(\w+)\}?"?/.exec(step.run);
    if (to) {
        const value = step.env[to[1]];
        return { stack: typeof value === "string" ? value : `$${to[1]}`, preview };
    }
    const literal = /--to[\s=]+"?([\w.-]+)"?/.exec(step.run);
    return { stack: literal ? literal[1] : "dev", preview };
}

function stackUses(job: Mapping): StackUse[] {
    const uses: StackUse[] = [];
    for (const step of stepsOf(job)) {
        const command = step.with.command;
        if (actionOf(step) === "pulumi/actions" && typeof command === "string") {
            const stack = String(step.with["stack-name"] ?? "");
            const kind = CHANGING_COMMANDS.has(command) ? "change" : "preview";
            if (command === "preview" || kind === "change") {
                uses.push({ kind, stack, names: stackNames(stack, job) });
            }
        }
        const release = releaseTarget(step);
        if (release) {
            uses.push({
                kind: release.preview ? "preview" : "change",
                stack: release.stack,
                names: stackNames(release.stack, job),
            });
        }
    }
    return uses;
}

function environmentName(job: Mapping): string | undefined {
    const env = job.environment;
    if (typeof env === "string") return env;
    const name = mapping(env).name;
    return typeof name === "string" ? name : undefined;
}

/** What is wrong with one job, as sentences; empty when it follows the rules. */
function jobProblems(
    where: string,
    jobId: string,
    job: Mapping,
    ctx: WorkflowContext,
    triggers: string[],
): string[] {
    const problems: string[] = [];
    const at = `${where}: job "${jobId}"`;
    const steps = stepsOf(job);
    const usesAws = steps.some((s) => actionOf(s) === "aws-actions/configure-aws-credentials");
    const commentsOnPr = steps.some(
        (s) => actionOf(s) === "pulumi/actions" && String(s.with["comment-on-pr"]) === "true",
    );

    // Explicit, minimal token permissions.
    const permissions = job.permissions;
    if (!isMapping(permissions)) {
        const written =
            permissions === undefined ? "no permissions" : `permissions: ${String(permissions)}`;
        problems.push(
            `${at} sets ${written}: give each job a "permissions:" mapping with only what it needs (contents: read)`,
        );
    } else {
        for (const [scope, level] of Object.entries(permissions)) {
            if (ALLOWED_PERMISSIONS[scope] !== level) {
                problems.push(
                    `${at} asks for "${scope}: ${String(level)}"; jobs here may ask only for contents: read, id-token: write (AWS jobs) and pull-requests: write (jobs that comment on the pull request)`,
                );
            }
        }
        if (permissions["id-token"] === "write" && !usesAws) {
            problems.push(
                `${at} asks for "id-token: write" but does not assume an AWS role: only AWS jobs get an OIDC token`,
            );
        }
        if (usesAws && permissions["id-token"] !== "write") {
            problems.push(
                `${at} assumes an AWS role without "id-token: write": OIDC needs it (no long-lived keys)`,
            );
        }
        if (permissions["pull-requests"] === "write" && !commentsOnPr) {
            problems.push(
                `${at} asks for "pull-requests: write" but posts no pull request comment`,
            );
        }
        if (commentsOnPr && permissions["pull-requests"] !== "write") {
            problems.push(`${at} comments on the pull request without "pull-requests: write"`);
        }
    }

    for (const [i, step] of steps.entries()) {
        const at2 = `${at}, step ${i + 1}${step.name ? ` (${step.name})` : ""}`;
        const action = actionOf(step);
        if (step.uses !== undefined && !/^[\w.-]+\/[\w.-]+(\/[\w./-]+)?@v\d+$/.test(step.uses)) {
            problems.push(
                `${at2} uses "${step.uses}": pin actions to a major version tag (owner/repo@v4)`,
            );
        }
        if (action === "aws-actions/configure-aws-credentials") {
            const role = String(step.with["role-to-assume"] ?? "");
            if (!/^\$\{\{\s*(vars|secrets)\.[A-Za-z_][\w]*\s*\}\}$/.test(role)) {
                problems.push(
                    `${at2} must assume a role by OIDC: role-to-assume: \${{ vars.<NAME> }} (it is "${role}")`,
                );
            }
        }
        if (action === "actions/setup-node") {
            if (String(step.with["node-version"]) !== "24" || step.with.cache !== "npm") {
                problems.push(
                    `${at2} must set up Node 24 with the npm cache (node-version: 24, cache: npm)`,
                );
            }
        }
        if (action === "pulumi/actions") {
            if (step.with["pulumi-version"] !== ctx.pulumiVersion) {
                problems.push(
                    `${at2} installs Pulumi CLI "${String(step.with["pulumi-version"] ?? "(any 3.x)")}"; pin pulumi-version: ${ctx.pulumiVersion}, the @pulumi/pulumi version in package.json`,
                );
            }
            const command = step.with.command;
            if (
                (command === "preview" || CHANGING_COMMANDS.has(String(command))) &&
                step.with.policyPacks !== POLICY_PACK
            ) {
                problems.push(
                    `${at2} runs pulumi ${String(command)} without the policy pack: policyPacks: ${POLICY_PACK}`,
                );
            }
        }
        const runsPulumi =
            (action === "pulumi/actions" && step.with.command !== undefined) || releaseTarget(step);
        if (runsPulumi && step.env.PULUMI_ACCESS_TOKEN !== "${{ secrets.PULUMI_ACCESS_TOKEN }}") {
            problems.push(
                `${at2} runs Pulumi without env PULUMI_ACCESS_TOKEN: \${{ secrets.PULUMI_ACCESS_TOKEN }}`,
            );
        }
        if (step.run !== undefined) {
            if (step.run.includes("${{")) {
                problems.push(
                    `${at2} has an expression inside its run script: pass values through env (an input could inject shell code)`,
                );
            }
            for (const m of step.run.matchAll(/\bnpm run ([\w:.-]+)/g)) {
                if (!ctx.npmScripts.includes(m[1])) {
                    problems.push(
                        `${at2} runs "npm run ${m[1]}", which package.json does not define`,
                    );
                }
            }
        }
    }

    // A job that changes a stack: never from a pull request, in the stack's environment, one at a time.
    for (const use of stackUses(job).filter((u) => u.kind === "change")) {
        if (triggers.some((t) => t.startsWith("pull_request"))) {
            problems.push(`${at} changes stack ${use.stack} in a workflow that pull requests run`);
        }
        if (environmentName(job) !== use.stack) {
            problems.push(
                `${at} changes stack ${use.stack} outside its environment: set environment: ${use.stack} (its reviewers and its AWS role)`,
            );
        }
        const concurrency = mapping(job.concurrency);
        if (
            concurrency.group !== stackGroup(use.stack) ||
            concurrency["cancel-in-progress"] !== false
        ) {
            problems.push(
                `${at} changes stack ${use.stack} without its concurrency group: concurrency: { group: ${stackGroup(use.stack)}, cancel-in-progress: false }`,
            );
        }
    }
    return problems;
}

/** What is wrong with one workflow's parsed YAML, as sentences; empty when it is fine. */
export function workflowProblems(file: string, doc: unknown, ctx: WorkflowContext): string[] {
    if (!isMapping(doc)) return [`${file}: expected a workflow mapping`];
    const problems: string[] = [];
    const permissions = doc.permissions;
    if (!isMapping(permissions) || Object.keys(permissions).length > 0) {
        problems.push(
            `${file}: set "permissions: {}" at the top, so no job gets the default token permissions`,
        );
    }
    const text = JSON.stringify(doc);
    const key = AWS_KEY_NAMES.exec(text);
    if (key) {
        problems.push(
            `${file}: references long-lived AWS credentials (${key[0]}); assume a role by OIDC instead`,
        );
    }
    const triggers = triggersOf(doc);
    for (const [jobId, job] of Object.entries(mapping(doc.jobs))) {
        problems.push(...jobProblems(file, jobId, mapping(job), ctx, triggers));
    }
    return problems;
}

/** What is wrong with the set of workflows as a whole: previews, dev updates, promotions. */
export function workflowSetProblems(
    files: readonly WorkflowFile[],
    ctx: WorkflowContext,
): string[] {
    const problems: string[] = [];
    const previewed = new Set<string>();
    let devOnPush = false;
    const promotionTargets = new Set<string>();
    for (const { doc } of files) {
        const triggers = triggersOf(doc);
        const on = mapping(mapping(doc).on);
        const pushBranches = mapping(on.push).branches;
        const onPushToMain = Array.isArray(pushBranches) && pushBranches.includes("main");
        const inputs = mapping(mapping(on.workflow_dispatch).inputs);
        for (const job of Object.values(mapping(mapping(doc).jobs))) {
            for (const use of stackUses(mapping(job))) {
                if (use.kind === "preview" && triggers.includes("pull_request")) {
                    use.names.forEach((n) => previewed.add(n));
                }
                if (use.kind === "change" && use.stack === "dev" && onPushToMain) devOnPush = true;
                const m = /^\$\{\{\s*inputs\.([\w-]+)\s*\}\}$/.exec(use.stack);
                if (use.kind === "change" && m) {
                    const options = mapping(inputs[m[1]]).options;
                    if (Array.isArray(options))
                        options.forEach((o) => promotionTargets.add(String(o)));
                }
            }
        }
    }
    const want = [...ctx.awsStacks].sort();
    const got = [...previewed].sort();
    if (want.join() !== got.join()) {
        problems.push(
            `pull requests preview stacks [${got.join(", ")}]; they must preview every AWS stack file: [${want.join(", ")}]`,
        );
    }
    if (!devOnPush) problems.push("no job runs pulumi up of dev on a push to main");
    const promoting = Object.keys(ctx.promotions).sort();
    const targets = [...promotionTargets].sort();
    if (promoting.join() !== targets.join()) {
        problems.push(
            `the promotion workflow offers targets [${targets.join(", ")}]; the stacks that promote are [${promoting.join(", ")}]`,
        );
    }
    return problems;
}
