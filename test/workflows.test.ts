/**
 * The GitHub Actions workflows, which cannot run here: the checker (actionlint, then the
 * project's security rules, scripts/check-workflows.ts) passes them, and each rule refuses the
 * mistake it is for.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { PREVIEW_STACKS, checkWorkflows, workflowProblems } from "../scripts/check-workflows";

const WORKFLOWS = path.join(__dirname, "..", ".github", "workflows");
const SOURCES: Record<string, string> = Object.fromEntries(
    fs.readdirSync(WORKFLOWS).map((f) => [f, fs.readFileSync(path.join(WORKFLOWS, f), "utf8")]),
);
const parsed = (file: string): any => YAML.parse(SOURCES[file]);
const steps = (job: any, action: string): any[] =>
    job.steps.filter((s: any) => String(s.uses).startsWith(`${action}@`));

describe("the workflow checker", () => {
    jest.setTimeout(60_000);

    it("passes the project's workflows: actionlint and the project's rules", async () => {
        expect(Object.keys(SOURCES).sort()).toEqual(["ci.yml", "deploy-dev.yml", "promote.yml"]);
        expect(await checkWorkflows(SOURCES)).toEqual([]);
    });

    it("runs actionlint: an unknown key and a job that needs a missing job", async () => {
        const ci = SOURCES["ci.yml"]
            .replace("    timeout-minutes: 15\n", "    timeout: 15\n")
            .replace("  test:\n", "  test:\n    needs: [build]\n");
        const problems = await checkWorkflows({ "ci.yml": ci });
        expect(problems).toEqual([
            expect.stringMatching(/^ci\.yml:\d+:\d+: unexpected key "timeout" for "job" section/),
            expect.stringMatching(/^ci\.yml:\d+:\d+: job "test" needs job "build" which does not/),
        ]);
    });

    it("refuses YAML that does not parse, and no workflows at all", async () => {
        const broken = "on: push\njobs:\n  a:\n    runs-on: x\n   steps: []\n";
        expect(await checkWorkflows({ "x.yml": broken })).toEqual([
            expect.stringMatching(/^x\.yml:\d+:\d+: could not parse as YAML/),
        ]);
        expect(await checkWorkflows({})).toEqual(["no workflow files to check"]);
    });
});

describe("the workflows", () => {
    it("pin every action by a full commit SHA, with its release in a comment", () => {
        const uses = Object.values(SOURCES).flatMap((s) => [...s.matchAll(/uses: (.*)/g)]);
        expect(uses.length).toBeGreaterThan(10);
        for (const [, use] of uses) expect(use).toMatch(/^[\w-]+\/[\w-]+@[0-9a-f]{40} # v\d+\.\d+/);
    });

    it("install the Pulumi CLI of the @pulumi/pulumi version in package.json", () => {
        const pkg = JSON.parse(fs.readFileSync("package.json", "utf8"));
        const jobs = Object.keys(SOURCES).flatMap((f) => Object.values(parsed(f).jobs));
        const pulumi = jobs.flatMap((j) => steps(j, "pulumi/actions"));
        expect(pulumi).toHaveLength(4);
        for (const s of pulumi)
            expect(s.with["pulumi-version"]).toBe(pkg.dependencies["@pulumi/pulumi"]);
    });

    it("run the local end to end on every pull request, without secrets", () => {
        const ci = parsed("ci.yml");
        expect(ci.on).toEqual({ pull_request: null });
        const job = ci.jobs["e2e-local"];
        expect(job["runs-on"]).toBe("ubuntu-latest");
        expect(job.permissions).toEqual({ contents: "read" });
        expect(JSON.stringify(job)).not.toMatch(/secrets|environment|id-token/);
        expect(job.if).toBeUndefined();
        expect(steps(job, "actions/setup-node")[0].with).toEqual({
            "node-version": 24,
            cache: "npm",
        });
        expect(steps(job, "pulumi/actions")[0].with).toEqual({ "pulumi-version": "3.276.0" });
        expect(job.steps.at(-1)).toEqual({ run: "bash scripts/e2e-local.sh" });
    });

    it("preview dev and staging on pull requests with the preview token only; never prod", () => {
        const preview = parsed("ci.yml").jobs.preview;
        expect(preview.strategy.matrix.stack).toEqual(PREVIEW_STACKS);
        expect(PREVIEW_STACKS).not.toContain("prod");
        expect(steps(preview, "pulumi/actions")[0].env).toEqual({
            PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_PREVIEW_TOKEN }}",
        });
        expect(SOURCES["ci.yml"]).not.toContain("secrets.PULUMI_ACCESS_TOKEN");
    });

    it("hold the update token only in the stack's environment, from main", () => {
        const up = parsed("deploy-dev.yml");
        expect(up.on).toEqual({ push: { branches: ["main"] } });
        expect(up.jobs["up-dev"].environment).toBe("dev");
        const promote = parsed("promote.yml").jobs.promote;
        expect(promote.environment).toBe("${{ inputs.target }}");
        expect(promote.if).toBe("github.ref == 'refs/heads/main'");
        for (const s of Object.values(SOURCES)
            .join()
            .matchAll(/secrets\.(\w+)/g)) {
            expect(["PULUMI_ACCESS_TOKEN", "PULUMI_PREVIEW_TOKEN"]).toContain(s[1]);
        }
    });
});

const jobOf = (w: any, file: string, id: string) => w[file].jobs[id];
const stepOf = (w: any, file: string, id: string, action: string) =>
    steps(jobOf(w, file, id), action)[0];

/** One broken thing per case, and the problem the project's rules must report for it. */
const BROKEN: [string, (w: any) => void, string][] = [
    [
        "a workflow run by pull_request_target",
        (w) => (w["ci.yml"].on = { pull_request_target: null }),
        "ci.yml: runs on pull_request_target",
    ],
    [
        "a workflow run by workflow_run",
        (w) => (w["deploy-dev.yml"].on.workflow_run = { workflows: ["ci"] }),
        "deploy-dev.yml: runs on workflow_run",
    ],
    [
        "checking out the pull request's head in a job with secrets",
        (w) => {
            w["deploy-dev.yml"].on = { push: null };
            stepOf(w, "deploy-dev.yml", "up-dev", "actions/checkout").with.ref =
                "${{ github.event.pull_request.head.sha }}";
        },
        'deploy-dev.yml: job "up-dev", step 1 checks out pull-request code in a job with credentials',
    ],
    [
        "an action pinned to a tag",
        (w) => (jobOf(w, "ci.yml", "lint").steps[0].uses = "actions/checkout@v4"),
        'ci.yml: job "lint", step 1 uses "actions/checkout@v4": pin the action by its full commit SHA',
    ],
    [
        "a reusable workflow called by branch",
        (w) => (w["ci.yml"].jobs.x = { uses: "o/r/.github/workflows/x.yml@main", permissions: {} }),
        'ci.yml: job "x" uses "o/r/.github/workflows/x.yml@main": pin the action',
    ],
    [
        "the update token in a pull-request workflow",
        (w) =>
            (stepOf(w, "ci.yml", "preview", "pulumi/actions").env.PULUMI_ACCESS_TOKEN =
                "${{ secrets.PULUMI_ACCESS_TOKEN }}"),
        'ci.yml: job "preview" uses PULUMI_ACCESS_TOKEN, which can update stacks, outside a protected environment',
    ],
    [
        "the update token outside an environment",
        (w) => delete jobOf(w, "deploy-dev.yml", "up-dev").environment,
        'deploy-dev.yml: job "up-dev" uses PULUMI_ACCESS_TOKEN, which can update stacks, outside',
    ],
    [
        "any other secret given to pull-request code",
        (w) => (jobOf(w, "ci.yml", "test").env = { KEY: "${{ secrets.NPM_TOKEN }}" }),
        'ci.yml: job "test" gives pull-request code the secret NPM_TOKEN',
    ],
    [
        "all secrets passed to a called workflow from a pull request",
        (w) => (w["ci.yml"].jobs.x = { uses: "./.github/workflows/x.yml", secrets: "inherit" }),
        'ci.yml: job "x" passes secrets to a called workflow',
    ],
    [
        "a stack update that pull requests run",
        (w) => (w["ci.yml"].jobs.up = structuredClone(jobOf(w, "deploy-dev.yml", "up-dev"))),
        'ci.yml: job "up", step 5 changes a stack outside a protected environment',
    ],
    [
        "a promotion outside an environment",
        (w) => delete jobOf(w, "promote.yml", "promote").environment,
        'promote.yml: job "promote", step 6 changes a stack outside a protected environment',
    ],
    [
        "a preview of prod from a pull request",
        (w) => jobOf(w, "ci.yml", "preview").strategy.matrix.stack.push("prod"),
        'ci.yml: job "preview", step 5 previews prod from a pull request',
    ],
    [
        "a preview without the policy pack",
        (w) => delete stepOf(w, "ci.yml", "preview", "pulumi/actions").with.policyPacks,
        'ci.yml: job "preview", step 5 runs pulumi preview without policyPacks: policy',
    ],
    [
        "a workflow without top-level permissions: {}",
        (w) => (w["ci.yml"].permissions = "write-all"),
        'ci.yml: set "permissions: {}" at the top',
    ],
    [
        "a job without its own permissions",
        (w) => delete jobOf(w, "ci.yml", "lint").permissions,
        'ci.yml: job "lint" needs its own "permissions:" mapping',
    ],
    [
        "contents: write",
        (w) => (jobOf(w, "promote.yml", "promote").permissions.contents = "write"),
        'promote.yml: job "promote" may not ask for "contents: write"',
    ],
    [
        "id-token: write in a job without AWS",
        (w) => (jobOf(w, "ci.yml", "e2e-local").permissions["id-token"] = "write"),
        'ci.yml: job "e2e-local" asks for "id-token: write" but assumes no AWS role',
    ],
    [
        "pull-requests: write in a job that posts no comment",
        (w) => (jobOf(w, "deploy-dev.yml", "up-dev").permissions["pull-requests"] = "write"),
        'deploy-dev.yml: job "up-dev" asks for "pull-requests: write" but posts no comment',
    ],
    [
        "long-lived AWS keys",
        (w) => {
            const aws = stepOf(
                w,
                "deploy-dev.yml",
                "up-dev",
                "aws-actions/configure-aws-credentials",
            );
            aws.with["aws-secret-access-key"] = "${{ secrets.KEY }}";
        },
        'deploy-dev.yml: job "up-dev" uses long-lived AWS keys',
    ],
    [
        "a role ARN written into the workflow",
        (w) => {
            const aws = stepOf(w, "ci.yml", "preview", "aws-actions/configure-aws-credentials");
            aws.with["role-to-assume"] = "arn:aws:iam::123456789012:role/x";
        },
        'ci.yml: job "preview", step 4 must assume a role by OIDC',
    ],
    [
        "an input interpolated into a run script",
        (w) => (jobOf(w, "promote.yml", "promote").steps[5].run = 'echo "${{ inputs.version }}"'),
        'promote.yml: job "promote", step 6 has an expression in its run script',
    ],
];

describe("the project's rules refuse", () => {
    it.each(BROKEN)("%s", (_name, breakIt, message) => {
        const docs = Object.fromEntries(Object.keys(SOURCES).map((f) => [f, parsed(f)]));
        breakIt(docs);
        const problems = Object.entries(docs).flatMap(([f, d]) =>
            workflowProblems(f, YAML.stringify(d)),
        );
        expect(problems).toEqual(expect.arrayContaining([expect.stringContaining(message)]));
    });
});
