/**
 * The GitHub Actions workflows, which cannot run here: the checker (actionlint, then the
 * project's security rules, scripts/check-workflows.ts) passes them, and each rule refuses the
 * mistake it is for.
 */
import * as fs from "fs";
import * as path from "path";
import * as YAML from "yaml";
import { checkWorkflows, workflowProblems } from "../scripts/check-workflows";

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
        expect(pulumi).toHaveLength(3);
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

    it("give pull requests no secret, no Pulumi token, no AWS role and no stack command", () => {
        const ci = parsed("ci.yml");
        expect(Object.keys(ci.jobs)).toEqual(["lint", "test", "e2e-local"]);
        expect(JSON.stringify(ci)).not.toMatch(/secrets|environment|id-token|vars\.|PULUMI_/);
        const pulumi = Object.values(ci.jobs).flatMap((j) => steps(j, "pulumi/actions"));
        for (const s of pulumi) expect(s.with).toEqual({ "pulumi-version": "3.276.0" });
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
            expect(s[1]).toBe("PULUMI_ACCESS_TOKEN");
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
        "a push of tags besides main",
        (w) => (w["deploy-dev.yml"].on.push.tags = ["v*"]),
        "deploy-dev.yml: runs on push other than to main",
    ],
    [
        "checking out the pull request's head in a job with secrets",
        (w) =>
            (stepOf(w, "deploy-dev.yml", "up-dev", "actions/checkout").with.ref =
                "${{ github.event.pull_request.head.sha }}"),
        'deploy-dev.yml: job "up-dev" checks out pull-request code in a job with credentials',
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
        (w) => (jobOf(w, "ci.yml", "test").env.T = "${{ secrets.PULUMI_ACCESS_TOKEN }}"),
        'ci.yml: job "test" uses the secret PULUMI_ACCESS_TOKEN outside a protected environment',
    ],
    [
        "the update token outside an environment",
        (w) => delete jobOf(w, "deploy-dev.yml", "up-dev").environment,
        'deploy-dev.yml: job "up-dev" uses the secret PULUMI_ACCESS_TOKEN outside a protected',
    ],
    [
        "any other secret given to pull-request code",
        (w) => (jobOf(w, "ci.yml", "test").env = { KEY: "${{ secrets.NPM_TOKEN }}" }),
        'ci.yml: job "test" uses the secret NPM_TOKEN outside a protected environment',
    ],
    [
        "a secret in an if: written without ${{ }}",
        (w) => (jobOf(w, "ci.yml", "test").if = "secrets.NPM_TOKEN != ''"),
        'ci.yml: job "test" uses the secret NPM_TOKEN',
    ],
    [
        "all secrets passed to a called workflow",
        (w) => (w["ci.yml"].jobs.x = { uses: "./.github/workflows/x.yml", secrets: "inherit" }),
        'ci.yml: job "x" passes secrets to a called workflow',
    ],
    [
        "an environment in a pull-request workflow",
        (w) => (jobOf(w, "ci.yml", "test").environment = "dev"),
        'ci.yml: job "test" has an environment but runs on more than push to main and by hand',
    ],
    [
        "a stack update that pull requests run",
        (w) => (w["ci.yml"].jobs.up = structuredClone(jobOf(w, "deploy-dev.yml", "up-dev"))),
        'ci.yml: job "up", step 5 runs a stack command outside a protected environment',
    ],
    [
        "a pulumi preview in a pull-request workflow",
        (w) => (stepOf(w, "ci.yml", "e2e-local", "pulumi/actions").with.command = "preview"),
        'ci.yml: job "e2e-local", step 3 runs a stack command outside a protected environment',
    ],
    [
        "a release from a pull request, --preview or not",
        (w) => jobOf(w, "ci.yml", "test").steps.push({ run: "npm run release -- 1.0.0 --preview" }),
        'ci.yml: job "test", step 4 runs a stack command outside a protected environment',
    ],
    [
        "the Pulumi CLI in a pull-request script",
        (w) => (jobOf(w, "ci.yml", "test").steps[2].run = "npx pulumi stack export --stack dev"),
        'ci.yml: job "test", step 3 runs a stack command outside a protected environment',
    ],
    [
        "a promotion outside an environment",
        (w) => delete jobOf(w, "promote.yml", "promote").environment,
        'promote.yml: job "promote", step 6 runs a stack command outside a protected environment',
    ],
    [
        "an update without the policy pack",
        (w) => delete stepOf(w, "deploy-dev.yml", "up-dev", "pulumi/actions").with.policyPacks,
        'deploy-dev.yml: job "up-dev", step 5 runs pulumi without the policy pack "policy"',
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
        'ci.yml: job "e2e-local" asks for "id-token: write" but assumes no AWS role from main',
    ],
    [
        "an AWS role assumed by pull-request code",
        (w) => {
            const job = structuredClone(jobOf(w, "deploy-dev.yml", "up-dev"));
            delete job.environment;
            w["ci.yml"].jobs.aws = { ...job, steps: job.steps.slice(0, 4) };
        },
        'ci.yml: job "aws" asks for "id-token: write" but assumes no AWS role from main',
    ],
    [
        "pull-requests: write (no job comments)",
        (w) => (jobOf(w, "deploy-dev.yml", "up-dev").permissions["pull-requests"] = "write"),
        'deploy-dev.yml: job "up-dev" may not ask for "pull-requests: write"',
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
            const aws = stepOf(
                w,
                "deploy-dev.yml",
                "up-dev",
                "aws-actions/configure-aws-credentials",
            );
            aws.with["role-to-assume"] = "arn:aws:iam::123456789012:role/x";
        },
        'deploy-dev.yml: job "up-dev", step 4 must assume a role by OIDC',
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

const SHA = "11d5960a326750d5838078e36cf38b85af677262";
/** A one-job workflow: `on`, then the job's own lines (indented under `jobs: a:`). */
const workflow = (on: string, job: string, top = "") =>
    `on: ${on}\npermissions: {}\n${top}jobs:\n  a:\n    runs-on: ubuntu-24.04\n` +
    `    permissions: { contents: read }\n${job.replace(/^/gm, "    ")}\n`;

/** Workflows that got past the checker in a hostile review: every one is refused. */
const BYPASSES: [string, string, string[]][] = [
    [
        "(a) all secrets as JSON, and a secret by index, in a pull request",
        workflow(
            "pull_request",
            `env:\n  ALL: \${{ toJSON(secrets) }}\n  TOKEN: \${{ secrets['PULUMI_ACCESS_TOKEN'] }}\n` +
                "steps:\n  - run: npm test",
        ),
        [
            'job "a" uses the secret toJSON(secrets) outside a protected environment',
            `job "a" uses the secret secrets['PULUMI_ACCESS_TOKEN'] outside a protected`,
        ],
    ],
    [
        "(b) issue_comment, a secret, and the pull request fetched by git",
        workflow(
            "issue_comment",
            "steps:\n  - env: { NPM_TOKEN: '${{ secrets.NPM_TOKEN }}', PR: '${{ github.event.issue.number }}' }\n" +
                '    run: git fetch origin "pull/$PR/head" && git checkout FETCH_HEAD && npm ci && npm test',
        ),
        [
            "x.yml: runs on issue_comment: only pull_request, push to main and workflow_dispatch",
            'job "a" uses the secret NPM_TOKEN outside a protected environment',
            'job "a" checks out pull-request code in a job with credentials',
        ],
    ],
    [
        "(c) prod's environment and pulumi up in a pull request, the secret's name computed",
        workflow(
            "pull_request",
            "environment: prod\nsteps:\n" +
                `  - env: { PULUMI_ACCESS_TOKEN: "\${{ secrets[format('{0}_ACCESS_TOKEN','PULUMI')] }}" }\n` +
                "    run: pulumi up --yes --stack prod",
        ),
        [
            'job "a" has an environment but runs on more than push to main and by hand',
            `job "a" uses the secret secrets[format('{0}_ACCESS_TOKEN','PULUMI')] outside`,
            'job "a", step 1 runs a stack command outside a protected environment',
            'job "a", step 1 runs pulumi without the policy pack "policy"',
        ],
    ],
    [
        "(d) a push to any branch entering dev, a release with --preview-skip",
        workflow(
            '\n  push:\n    branches: ["**"]',
            "environment: dev\nsteps:\n  - env: { PULUMI_ACCESS_TOKEN: '${{ secrets.PULUMI_ACCESS_TOKEN }}' }\n" +
                "    run: npm run release -- 1.0.0 --to prod --from staging --preview-skip",
        ),
        [
            "x.yml: runs on push other than to main",
            'job "a" has an environment but runs on more than push to main and by hand',
            'job "a" uses the secret PULUMI_ACCESS_TOKEN outside a protected environment',
            'job "a", step 1 runs a stack command outside a protected environment',
        ],
    ],
    [
        "(e) actions spelt in capitals: the pull request's head, and an update of prod",
        workflow(
            "\n  push:\n    branches: [main]",
            `steps:\n  - uses: Actions/Checkout@${SHA}\n` +
                "    with: { ref: '${{ github.event.pull_request.head.sha }}' }\n" +
                `  - uses: Pulumi/Actions@${SHA}\n` +
                "    with: { command: up, stack-name: prod, policyPacks: policy }\n" +
                "    env: { PULUMI_ACCESS_TOKEN: '${{ secrets.PULUMI_ACCESS_TOKEN }}' }",
        ),
        [
            'job "a" checks out pull-request code in a job with credentials',
            'job "a", step 2 runs a stack command outside a protected environment',
        ],
    ],
    [
        "(f) a secret in the workflow's own env, in a pull request",
        workflow(
            "pull_request",
            "steps:\n  - run: npm test",
            "env:\n  PULUMI_ACCESS_TOKEN: ${{ secrets.PULUMI_ACCESS_TOKEN }}\n",
        ),
        ["x.yml: uses the secret PULUMI_ACCESS_TOKEN outside a job with an environment"],
    ],
    [
        "(g) by hand into dev: a pull request's ref checked out, npx pulumi up without policy",
        workflow(
            "\n  workflow_dispatch:\n    inputs: { pr: { type: string, required: true } }",
            `environment: dev\nsteps:\n  - uses: actions/checkout@${SHA}\n` +
                "    with: { ref: 'refs/pull/${{ inputs.pr }}/head', persist-credentials: false }\n" +
                "  - env: { PULUMI_ACCESS_TOKEN: '${{ secrets.PULUMI_ACCESS_TOKEN }}' }\n" +
                "    run: npx pulumi up --yes --stack dev",
        ),
        [
            'job "a" checks out pull-request code in a job with credentials',
            'job "a", step 2 runs pulumi without the policy pack "policy"',
        ],
    ],
    ...["gh pr checkout 12", "git fetch origin pull/12/head:pr"].map(
        (run): [string, string, string[]] => [
            `pull-request code by "${run}" in a job with an environment`,
            workflow("workflow_dispatch", `environment: dev\nsteps:\n  - run: ${run}`),
            ['job "a" checks out pull-request code in a job with credentials'],
        ],
    ),
];

describe("the checker refuses what got past it", () => {
    it.each(BYPASSES)("%s", (_name, source, messages) => {
        const problems = workflowProblems("x.yml", source);
        for (const m of messages) {
            expect(problems).toEqual(expect.arrayContaining([expect.stringContaining(m)]));
        }
    });

    it("and still passes what is allowed: GITHUB_TOKEN, `secrets` in a string, a protected update", () => {
        const ok = (job: string, on = "\n  push:\n    branches: [main]") =>
            workflowProblems("x.yml", workflow(on, job));
        expect(
            ok(
                "env: { T: '${{ secrets.GITHUB_TOKEN }}', S: \"${{ format('secrets') }}\" }\nsteps:\n  - run: npm test",
                "pull_request",
            ),
        ).toEqual([]);
        expect(
            ok(
                "environment: dev\nsteps:\n  - env: { PULUMI_ACCESS_TOKEN: '${{ secrets.PULUMI_ACCESS_TOKEN }}' }\n" +
                    "    run: npx pulumi up --yes --stack dev --policy-pack policy",
            ),
        ).toEqual([]);
    });
});
