/**
 * The GitHub Actions workflows (.github/workflows), which cannot run here: `npm run
 * check:workflows` (actionlint, then the project's rules) passes them and refuses broken ones,
 * and each of the project's rules (scripts/workflowRules.ts) refuses the mistake it is for.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import * as YAML from "yaml";
import { actionlint } from "../scripts/check-workflows";
import {
    WorkflowFile,
    loadWorkflowContext,
    workflowProblems,
    workflowSetProblems,
} from "../scripts/workflowRules";

const ROOT = path.resolve(__dirname, "..");
const WORKFLOWS = path.join(ROOT, ".github", "workflows");
const FILES = fs
    .readdirSync(WORKFLOWS)
    .filter((f) => /\.ya?ml$/.test(f))
    .sort();
const ctx = loadWorkflowContext(ROOT);
const source = (file: string): string => fs.readFileSync(path.join(WORKFLOWS, file), "utf8");

/** A fresh parsed copy of every workflow, keyed by file name, to break one thing in. */
function workflows(): Record<string, any> {
    return Object.fromEntries(FILES.map((f) => [f, YAML.parse(source(f))]));
}

function allProblems(docs: Record<string, any>): string[] {
    const files: WorkflowFile[] = Object.entries(docs).map(([file, doc]) => ({ file, doc }));
    return [
        ...files.flatMap(({ file, doc }) => workflowProblems(file, doc, ctx)),
        ...workflowSetProblems(files, ctx),
    ];
}

interface Run {
    code: number;
    stdout: string;
    stderr: string;
}

/** `npm run check:workflows -- <args>`, as CI and a developer run it. */
function checkWorkflows(...args: string[]): Promise<Run> {
    return new Promise((resolve) => {
        execFile(
            "npm",
            ["run", "--silent", "check:workflows", "--", ...args],
            { cwd: ROOT },
            (error, stdout, stderr) => {
                const code = error ? (typeof error.code === "number" ? error.code : -1) : 0;
                resolve({ code, stdout, stderr });
            },
        );
    });
}

/** A directory holding the project's workflows, with `changes` (file -> text) applied. */
function workflowDir(changes: Record<string, string>): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "workflows-"));
    for (const f of FILES) fs.writeFileSync(path.join(dir, f), source(f));
    for (const [f, text] of Object.entries(changes)) fs.writeFileSync(path.join(dir, f), text);
    return dir;
}

describe("npm run check:workflows", () => {
    jest.setTimeout(120_000);

    it("passes the project's workflows", async () => {
        const run = await checkWorkflows();
        expect(run.stderr).toBe("");
        expect(run.code).toBe(0);
        expect(run.stdout).toContain("ci.yml");
        expect(run.stdout).toContain("promote.yml");
        expect(run.stdout).toContain("pass");
    });

    it("refuses a job with an unknown key and a job that needs a job that does not exist", async () => {
        const ci = source("ci.yml")
            .replace("    timeout-minutes: 15\n", "    timeout: 15\n")
            .replace("  test:\n", "  test:\n    needs: [lint, build]\n");
        const dir = workflowDir({ "ci.yml": ci });
        const run = await checkWorkflows(dir);
        expect(run.code).toBe(1);
        // Only actionlint finds these: the project's rules pass the file.
        expect(run.stderr).toMatch(/ci\.yml:\d+:\d+: unexpected key "timeout" for "job" section/);
        expect(run.stderr).toMatch(
            /ci\.yml:\d+:\d+: job "test" needs job "build" which does not exist in this workflow \[job-needs\]/,
        );
        expect(run.stderr).toContain("2 problem(s)");
        expect(run.stdout).toBe("");
    });

    it("refuses YAML that does not parse, and a directory without workflows", async () => {
        const broken = await checkWorkflows(
            workflowDir({
                "deploy-dev.yml": "on: push\njobs:\n  a:\n    runs-on: x\n   steps: []\n",
            }),
        );
        expect(broken.code).toBe(1);
        expect(broken.stderr).toMatch(/deploy-dev\.yml:\d+:\d+: could not parse as YAML/);

        const empty = await checkWorkflows(fs.mkdtempSync(path.join(os.tmpdir(), "workflows-")));
        expect(empty.code).toBe(1);
        expect(empty.stderr).toContain("no workflow files to check");
    });
});

describe("actionlint (the checker's engine)", () => {
    it("finds nothing in the project's workflows", async () => {
        for (const f of FILES) expect({ [f]: await actionlint(source(f)) }).toEqual({ [f]: [] });
    });

    it("knows the inputs of the actions the workflows use", async () => {
        const text = source("deploy-dev.yml")
            .replace("policyPacks:", "policyPack:")
            .replace("role-to-assume:", "role-to-asume:")
            .replace("cache: npm", "cach: npm");
        const problems = await actionlint(text);
        expect(problems.map((p) => p.kind)).toEqual(["action", "action", "action"]);
        expect(problems.map((p) => p.message.split(".")[0])).toEqual([
            'input "cach" is not defined in action "actions/setup-node@v4"',
            'input "role-to-asume" is not defined in action "aws-actions/configure-aws-credentials@v4"',
            'input "policyPack" is not defined in action "pulumi/actions@v6"',
        ]);
    });

    it("checks expressions against their contexts, and needs cycles", async () => {
        const text = source("promote.yml").replace(
            "group: pulumi-stack-${{ inputs.target }}",
            "group: pulumi-stack-${{ inputs.targt }}",
        );
        expect((await actionlint(text)).map((p) => p.message)).toEqual([
            expect.stringContaining('property "targt" is not defined'),
        ]);
        const cycle =
            "on: push\njobs:\n  a:\n    needs: b\n    runs-on: ubuntu-24.04\n    steps: [{run: x}]\n  b:\n    needs: a\n    runs-on: ubuntu-24.04\n    steps: [{run: x}]\n";
        expect((await actionlint(cycle)).map((p) => p.kind)).toContain("job-needs");
    });
});

describe("the workflows", () => {
    it.each(FILES)("%s follows the project's rules", (file) => {
        expect(workflowProblems(file, YAML.parse(source(file)), ctx)).toEqual([]);
    });

    it("cover the stacks together: previews, dev on push to main, promotions", () => {
        expect(allProblems(workflows())).toEqual([]);
    });

    it("preview on pull requests every AWS stack file present, with the policy pack", () => {
        const stackFiles = fs
            .readdirSync(ROOT)
            .filter((f) => /^Pulumi\.[^.]+\.yaml$/.test(f))
            .map((f) => f.split(".")[1]);
        expect(ctx.awsStacks).toEqual(expect.arrayContaining(["dev", "staging", "prod"]));
        expect(ctx.awsStacks).not.toContain("local");
        expect(stackFiles).toEqual(expect.arrayContaining([...ctx.awsStacks]));
        const preview = workflows()["ci.yml"].jobs.preview;
        expect([...preview.strategy.matrix.stack].sort()).toEqual([...ctx.awsStacks].sort());
        const pulumi = preview.steps.find((s: any) => s.uses === "pulumi/actions@v6");
        expect(pulumi.with).toMatchObject({
            command: "preview",
            "stack-name": "${{ matrix.stack }}",
            policyPacks: "policy",
            "comment-on-pr": true,
        });
    });

    it("promote a version by hand, through the target's environment, from main only", () => {
        const promote = workflows()["promote.yml"];
        expect(promote.on.workflow_dispatch.inputs).toMatchObject({
            version: { required: true, type: "string" },
            target: { required: true, type: "choice", options: ["staging", "prod"] },
        });
        const job = promote.jobs.promote;
        expect(job.if).toBe("github.ref == 'refs/heads/main'");
        expect(job.environment).toBe("${{ inputs.target }}");
        expect(job.concurrency).toEqual({
            group: "pulumi-stack-${{ inputs.target }}",
            "cancel-in-progress": false,
        });
        const release = job.steps.find((s: any) => /npm run release/.test(s.run ?? ""));
        expect(release.run).toContain(
            'npm run release -- "$VERSION" --to "$TARGET" --from "$source"',
        );
        expect(release.run).toMatch(/staging\) source=dev ;;/);
        expect(release.run).toMatch(/prod\) source=staging ;;/);
        expect(release.env).toEqual({
            PULUMI_ACCESS_TOKEN: "${{ secrets.PULUMI_ACCESS_TOKEN }}",
            VERSION: "${{ inputs.version }}",
            TARGET: "${{ inputs.target }}",
        });
        expect(ctx.promotions).toEqual({ staging: "dev", prod: "staging" });
    });
});

describe("loadWorkflowContext", () => {
    it("leaves out registry: local stacks and reads promotions, scripts and the Pulumi version", () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "project-"));
        const stack = (name: string, config: Record<string, string>) =>
            fs.writeFileSync(path.join(dir, `Pulumi.${name}.yaml`), YAML.stringify({ config }));
        stack("dev", { "aws:region": "us-west-2" });
        stack("qa", { "model-registry:promoteFrom": "dev" });
        stack("local", { "model-registry:registry": "local" });
        fs.writeFileSync(path.join(dir, "Pulumi.yaml"), "name: model-registry\n");
        fs.writeFileSync(
            path.join(dir, "package.json"),
            JSON.stringify({ scripts: { lint: "x" }, dependencies: { "@pulumi/pulumi": "3.1.2" } }),
        );
        expect(loadWorkflowContext(dir)).toEqual({
            awsStacks: ["dev", "qa"],
            promotions: { qa: "dev" },
            npmScripts: ["lint"],
            pulumiVersion: "3.1.2",
        });
    });
});

/** One broken thing per case: the change, and the problem the rules must report for it. */
const BROKEN: [string, (w: Record<string, any>) => void, string][] = [
    [
        "a workflow without top-level permissions: {}",
        (w) => delete w["ci.yml"].permissions,
        'ci.yml: set "permissions: {}" at the top',
    ],
    [
        "a job without its own permissions",
        (w) => delete w["ci.yml"].jobs.lint.permissions,
        'ci.yml: job "lint" sets no permissions: give each job a "permissions:" mapping',
    ],
    [
        "a job asking for write-all",
        (w) => (w["ci.yml"].jobs.test.permissions = "write-all"),
        'ci.yml: job "test" sets permissions: write-all',
    ],
    [
        "id-token: write in a job without AWS",
        (w) => (w["ci.yml"].jobs.lint.permissions["id-token"] = "write"),
        'ci.yml: job "lint" asks for "id-token: write" but does not assume an AWS role',
    ],
    [
        "an AWS job without id-token: write",
        (w) => delete w["deploy-dev.yml"].jobs["up-dev"].permissions["id-token"],
        'deploy-dev.yml: job "up-dev" assumes an AWS role without "id-token: write"',
    ],
    [
        "contents: write",
        (w) => (w["promote.yml"].jobs.promote.permissions.contents = "write"),
        'promote.yml: job "promote" asks for "contents: write"',
    ],
    [
        "pull-requests: write in a job that posts no comment",
        (w) => (w["deploy-dev.yml"].jobs["up-dev"].permissions["pull-requests"] = "write"),
        'deploy-dev.yml: job "up-dev" asks for "pull-requests: write" but posts no pull request comment',
    ],
    [
        "a PR comment without pull-requests: write",
        (w) => delete w["ci.yml"].jobs.preview.permissions["pull-requests"],
        'ci.yml: job "preview" comments on the pull request without "pull-requests: write"',
    ],
    [
        "long-lived AWS keys passed to configure-aws-credentials",
        (w) => {
            const step = w["deploy-dev.yml"].jobs["up-dev"].steps.find((s: any) =>
                String(s.uses).startsWith("aws-actions/"),
            );
            delete step.with["role-to-assume"];
            step.with["aws-access-key-id"] = "${{ secrets.AWS_ACCESS_KEY_ID }}";
            step.with["aws-secret-access-key"] = "${{ secrets.AWS_SECRET_ACCESS_KEY }}";
        },
        "deploy-dev.yml: references long-lived AWS credentials",
    ],
    [
        "a long-lived AWS key in a job's environment",
        (w) => (w["ci.yml"].jobs.test.env = { AWS_SECRET_ACCESS_KEY: "${{ secrets.KEY }}" }),
        "ci.yml: references long-lived AWS credentials (AWS_SECRET_ACCESS_KEY)",
    ],
    [
        "a role ARN written into the workflow",
        (w) => {
            const step = w["ci.yml"].jobs.preview.steps.find((s: any) =>
                String(s.uses).startsWith("aws-actions/"),
            );
            step.with["role-to-assume"] = "arn:aws:iam::123456789012:role/x";
        },
        "must assume a role by OIDC: role-to-assume: ${{ vars.<NAME> }}",
    ],
    [
        "pulumi up of dev outside the dev environment",
        (w) => delete w["deploy-dev.yml"].jobs["up-dev"].environment,
        'deploy-dev.yml: job "up-dev" changes stack dev outside its environment',
    ],
    [
        "pulumi up of dev without its concurrency group",
        (w) => delete w["deploy-dev.yml"].jobs["up-dev"].concurrency,
        'deploy-dev.yml: job "up-dev" changes stack dev without its concurrency group',
    ],
    [
        "a deploy that a newer run cancels",
        (w) => (w["deploy-dev.yml"].jobs["up-dev"].concurrency["cancel-in-progress"] = true),
        'job "up-dev" changes stack dev without its concurrency group',
    ],
    [
        "a promotion in a fixed environment whatever the target",
        (w) => (w["promote.yml"].jobs.promote.environment = "prod"),
        'promote.yml: job "promote" changes stack ${{ inputs.target }} outside its environment',
    ],
    [
        "a promotion sharing one group for every stack",
        (w) => (w["promote.yml"].jobs.promote.concurrency.group = "promote"),
        'promote.yml: job "promote" changes stack ${{ inputs.target }} without its concurrency group',
    ],
    [
        "a stack update that pull requests run",
        (w) => {
            w["ci.yml"].jobs["up-dev"] = structuredClone(w["deploy-dev.yml"].jobs["up-dev"]);
        },
        'ci.yml: job "up-dev" changes stack dev in a workflow that pull requests run',
    ],
    [
        "pull requests that do not preview prod",
        (w) => (w["ci.yml"].jobs.preview.strategy.matrix.stack = ["dev", "staging"]),
        "pull requests preview stacks [dev, staging]; they must preview every AWS stack file: [dev, prod, staging]",
    ],
    [
        "pull requests that preview a stack without a stack file",
        (w) => w["ci.yml"].jobs.preview.strategy.matrix.stack.push("local"),
        "pull requests preview stacks [dev, local, prod, staging]",
    ],
    [
        "a preview without the policy pack",
        (w) => {
            const step = w["ci.yml"].jobs.preview.steps.find(
                (s: any) => s.uses === "pulumi/actions@v6",
            );
            delete step.with.policyPacks;
        },
        "runs pulumi preview without the policy pack: policyPacks: policy",
    ],
    [
        "an action pinned to a branch",
        (w) => (w["ci.yml"].jobs.lint.steps[0].uses = "actions/checkout@main"),
        'ci.yml: job "lint", step 1 uses "actions/checkout@main": pin actions to a major version tag',
    ],
    [
        "a Pulumi CLI other than the SDK's version",
        (w) => {
            const step = w["deploy-dev.yml"].jobs["up-dev"].steps.find(
                (s: any) => s.uses === "pulumi/actions@v6",
            );
            step.with["pulumi-version"] = "latest";
        },
        `installs Pulumi CLI "latest"; pin pulumi-version: ${ctx.pulumiVersion}`,
    ],
    [
        "Pulumi without its access token",
        (w) => {
            const step = w["deploy-dev.yml"].jobs["up-dev"].steps.find(
                (s: any) => s.uses === "pulumi/actions@v6",
            );
            delete step.env;
        },
        "runs Pulumi without env PULUMI_ACCESS_TOKEN",
    ],
    [
        "an input interpolated into a run script",
        (w) => {
            const step = w["promote.yml"].jobs.promote.steps.find((s: any) => s.name === "Release");
            step.run = 'npm run release -- "${{ inputs.version }}" --to "$TARGET"';
        },
        'promote.yml: job "promote", step 6 (Release) has an expression inside its run script',
    ],
    [
        "an npm script that package.json does not define",
        (w) => w["ci.yml"].jobs.lint.steps.push({ run: "npm run typecheck" }),
        'runs "npm run typecheck", which package.json does not define',
    ],
    [
        "Node other than 20, or no npm cache",
        (w) => (w["ci.yml"].jobs.test.steps[1].with["node-version"] = 18),
        'ci.yml: job "test", step 2 must set up Node 24 with the npm cache',
    ],
    [
        "no pulumi up of dev on a push to main",
        (w) => (w["deploy-dev.yml"].on.push.branches = ["release"]),
        "no job runs pulumi up of dev on a push to main",
    ],
    [
        "a promotion that cannot reach prod",
        (w) => (w["promote.yml"].on.workflow_dispatch.inputs.target.options = ["staging"]),
        "the promotion workflow offers targets [staging]; the stacks that promote are [prod, staging]",
    ],
];

describe("the project's workflow rules refuse", () => {
    it.each(BROKEN)("%s", (_name, breakIt, message) => {
        const docs = workflows();
        breakIt(docs);
        const problems = allProblems(docs);
        expect(problems).toEqual(expect.arrayContaining([expect.stringContaining(message)]));
    });
});
