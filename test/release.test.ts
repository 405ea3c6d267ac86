import * as automation from "@pulumi/pulumi/automation";
import childProcess from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
    EXIT_FAILED,
    EXIT_OK,
    EXIT_USAGE,
    HELP,
    ReleasePlan,
    optionMeant,
    parseReleaseCommand,
} from "../lib/release/command";
import { releaseMain } from "../lib/release";
import { ReleaseWorkspace, describeError, formatTable, runRelease } from "../lib/release/run";
import { LocalReleaseWorkspace } from "../lib/release/workspace";

const PROJECT_DIR = path.resolve(__dirname, "..");
const DIGEST_A = `sha256:${"a".repeat(64)}`;
const DIGEST_B = `sha256:${"b".repeat(64)}`;
const uriOf = (stack: string) => `public.ecr.aws/a1b2/model-registry-${stack}`;

/** A project directory with the stack files the parser reads. */
let fixture: string;

beforeAll(() => {
    fixture = fs.mkdtempSync(path.join(os.tmpdir(), "release-test-"));
    const files: Record<string, string> = {
        "Pulumi.yaml": "name: model-registry\nruntime: nodejs\n",
        "Pulumi.dev.yaml": "config:\n  model-registry:modelVersion: 1.0.0\n",
        "Pulumi.staging.yaml": "config:\n  model-registry:promoteFrom: dev\n",
        "Pulumi.prod.yaml": "config:\n  model-registry:promoteFrom: staging\n",
        "Pulumi.qualified.yaml": "config:\n  model-registry:promoteFrom: acme/model-registry/dev\n",
        "Pulumi.mirror.yaml": "config:\n  model-registry:promoteFrom: public.ecr.aws/a1b2/model\n",
        "Pulumi.secret.yaml": "config:\n  model-registry:promoteFrom:\n    secure: AAAB\n",
        "Pulumi.broken.yaml": "config: [unclosed\n",
    };
    for (const [name, text] of Object.entries(files)) {
        fs.writeFileSync(path.join(fixture, name), text);
    }
});

afterAll(() => fs.rmSync(fixture, { recursive: true, force: true }));

/** Captures what the command writes. */
function captureIO() {
    const io = { out: "", err: "" };
    return {
        io,
        sink: {
            stdout: (text: string) => {
                io.out += text;
            },
            stderr: (text: string) => {
                io.err += text;
            },
        },
    };
}

type Stage = "outputs" | "setVersion" | "getVersion" | "restoreVersion" | "up" | "preview";

/**
 * A workspace that records every call in order and keeps each stack's published versions.
 * `up` publishes the stack's modelVersion with the digest `upDigest` returns (by default: a
 * promoting stack gets its source's digest, a building stack DIGEST_A).
 */
class RecordingWorkspace implements ReleaseWorkspace {
    readonly calls: string[] = [];
    readonly config: Record<string, string> = {};
    readonly failures: Partial<Record<Stage, unknown>> = {};

    constructor(
        readonly published: Record<string, Record<string, { digest: string }> | undefined>,
        readonly upDigest: (stack: string, version: string) => string | undefined = () => DIGEST_A,
    ) {}

    private fail(stage: Stage) {
        if (this.failures[stage] !== undefined) throw this.failures[stage];
    }

    async outputs(stack: string) {
        this.calls.push(`outputs ${stack}`);
        this.fail("outputs");
        const history = this.published[stack];
        return history === undefined
            ? {}
            : { repository_uri: uriOf(stack), published_versions: { ...history } };
    }

    async setVersion(stack: string, version: string) {
        this.calls.push(`setVersion ${stack} ${version}`);
        this.fail("setVersion");
        this.config[stack] = version;
    }

    async getVersion(stack: string) {
        this.calls.push(`getVersion ${stack}`);
        this.fail("getVersion");
        return this.config[stack];
    }

    async restoreVersion(stack: string, previous: string | undefined) {
        this.calls.push(`restoreVersion ${stack} ${previous ?? "(unset)"}`);
        this.fail("restoreVersion");
        if (previous === undefined) delete this.config[stack];
        else this.config[stack] = previous;
    }

    async up(stack: string, onOutput: (text: string) => void) {
        this.calls.push(`up ${stack}`);
        onOutput(`Updating (${stack}):\n`);
        this.fail("up");
        const version = this.config[stack];
        const digest = this.upDigest(stack, version);
        if (digest !== undefined) {
            this.published[stack] = { ...this.published[stack], [version]: { digest } };
        }
        onOutput("Resources: 5 unchanged\n");
    }

    async preview(stack: string, onOutput: (text: string) => void) {
        this.calls.push(`preview ${stack}`);
        onOutput(`Previewing update (${stack}):\n`);
        this.fail("preview");
        return { create: 2, same: 3, update: 0 };
    }
}

/** Runs `plan` on `ws`, expects the exit code `code`; returns what it wrote. */
async function release(plan: ReleasePlan, ws: ReleaseWorkspace, code: number) {
    const { io, sink } = captureIO();
    expect(await runRelease(plan, ws, sink)).toBe(code);
    return io;
}

const publishPlan = (version = "1.2.0"): ReleasePlan => ({
    kind: "publish",
    project: "model-registry",
    version,
    target: "dev",
    preview: false,
});

const promotePlan = (version = "1.2.0", source = "dev", target = "staging"): ReleasePlan => ({
    kind: "promote",
    project: "model-registry",
    version,
    source,
    target,
    preview: false,
});

/** An error shaped like the Automation API's CommandError around an execa failure. */
function commandError(stdout: string, stderr: string, code?: string) {
    const err = Object.assign(new Error(`Command failed\n${stderr}\n${stdout}`), {
        code,
        stdout,
        stderr,
    });
    return Object.assign(new Error(`code: -2\n stdout: \n stderr: ${err.message}\n`), {
        commandResult: { stdout: "", stderr: err.message, code: -2, err },
    });
}

describe("parseReleaseCommand", () => {
    it.each([
        [["1.2.0"], { kind: "publish", target: "dev" }],
        [["1.2.0", "--to", "dev"], { kind: "publish", target: "dev" }],
        [["1.2.0", "--to", "staging"], { kind: "promote", source: "dev", target: "staging" }],
        [["--to=staging", "1.2.0"], { kind: "promote", source: "dev", target: "staging" }],
        [["1.2.0", "--to", "prod"], { kind: "promote", source: "staging", target: "prod" }],
        [["1.2.0", "--to", "prod", "--from", "staging"], { kind: "promote", source: "staging" }],
        [["1.2.0", "--to", "staging", "--from", "DEV"], { kind: "promote", source: "dev" }],
        [
            ["1.2.0", "--to", "qualified", "--from", "dev"],
            { kind: "promote", source: "acme/model-registry/dev" },
        ],
        [["1.3.0-rc.1", "--preview"], { kind: "publish", version: "1.3.0-rc.1", preview: true }],
    ])("%j plans %j", (argv, expected) => {
        const parsed = parseReleaseCommand(argv, fixture);
        expect(parsed).toEqual({
            kind: "plan",
            plan: expect.objectContaining({
                project: "model-registry",
                version: "1.2.0",
                preview: false,
                ...expected,
            }),
        });
    });

    it("reads this project's own stack files: staging promotes from dev, prod from staging", () => {
        expect(parseReleaseCommand(["1.2.0"], PROJECT_DIR)).toEqual({
            kind: "plan",
            plan: {
                kind: "publish",
                project: "model-registry",
                version: "1.2.0",
                target: "dev",
                preview: false,
            },
        });
        for (const [target, source] of [
            ["staging", "dev"],
            ["prod", "staging"],
        ]) {
            expect(parseReleaseCommand(["1.2.0", "--to", target], PROJECT_DIR)).toEqual({
                kind: "plan",
                plan: {
                    kind: "promote",
                    project: "model-registry",
                    version: "1.2.0",
                    source,
                    target,
                    preview: false,
                },
            });
        }
    });

    it.each([["--help"], ["-h"], ["1.2.0", "--to", "nowhere", "--help"], ["--bogus", "--help"]])(
        "%j asks for help",
        (...argv) => {
            expect(parseReleaseCommand(argv, fixture)).toEqual({ kind: "help" });
        },
    );

    it.each<[string[], RegExp[]]>([
        [[], [/the version to release is missing\. Fix: npm run release -- <version>\.$/]],
        [["latest"], [/^version "latest": `latest` is a moving tag.*Fix: npm run release -- /]],
        [["v1.2.0"], [/leading "v".*Fix: npm run release -- 1\.2\.0\.$/]],
        [
            ["1.2", "--to", "staging"],
            [/^version "1\.2": .*Fix: npm run release -- 1\.2\.0 --to staging\.$/],
        ],
        [
            ["1.2.0", "1.3.0"],
            [
                /expected one version, got 2: "1\.2\.0" "1\.3\.0".*Fix: npm run release -- 1\.2\.0, then the next version\.$/,
            ],
        ],
        [
            ["1.2.0", "--bogus"],
            [
                /^unknown option --bogus; the options are --to <stack>, --from <stack>, --preview, --help\. Fix: remove it/,
            ],
        ],
        [["1.2.0", "-x"], [/^unknown option -x;/]],
        // A misspelt option: the one meant, and the command with it.
        [
            ["1.2.0", "--too", "staging"],
            [
                /^unknown option --too; did you mean --to\? Fix: npm run release -- 1\.2\.0 --to staging\.$/,
            ],
        ],
        [
            ["1.2.0", "--too=staging"],
            [
                /^unknown option --too; did you mean --to\? Fix: npm run release -- 1\.2\.0 --to=staging\.$/,
            ],
        ],
        [
            ["1.2.0", "-to", "staging"],
            [
                /^unknown option -to; did you mean --to\? Fix: npm run release -- 1\.2\.0 --to staging\.$/,
            ],
        ],
        [
            ["1.2.0", "--to", "prod", "--form", "staging"],
            [
                /^unknown option --form; did you mean --from\? Fix: npm run release -- 1\.2\.0 --to prod --from staging\.$/,
            ],
        ],
        [
            ["1.2.0", "--previw"],
            [
                /^unknown option --previw; did you mean --preview\? Fix: npm run release -- 1\.2\.0 --preview\.$/,
            ],
        ],
        [["1.2.0", "--to"], [/^--to needs a stack name\. Fix: --to staging/]],
        [["1.2.0", "--from", "--preview"], [/^--from needs a stack name/]],
        [["1.2.0", "--preview=yes"], [/^--preview takes no value\. Fix: write --preview alone\.$/]],
        [
            ["1.2.0", "--to", "qa"],
            [
                /^--to qa: this project has no Pulumi\.qa\.yaml.*\(broken, dev, mirror, prod, qualified, secret, staging\)\. Fix: npm run release -- 1\.2\.0 --to <stack> .*or create the stack/,
            ],
        ],
        [
            ["1.2.0", "--to", "Staging"],
            [/no Pulumi\.Staging\.yaml.*Fix: npm run release -- 1\.2\.0 --to staging, or create/],
        ],
        [
            ["1.2.0", "--to", "acme/staging"],
            [
                /^--to "acme\/staging": give the stack's plain name.*Fix: npm run release -- 1\.2\.0 --to staging\.$/,
            ],
        ],
        [["1.2.0", "--to", "../dev"], [/^--to "\.\.\/dev": give the stack's plain name/]],
        [["1.2.0", "--to", "dev$"], [/^--to "dev\$": a stack name has only letters, digits/]],
        [
            ["1.2.0", "--to", "mirror"],
            [
                /^stack mirror promotes from the repository public\.ecr\.aws\/a1b2\/model .*Fix: pulumi config set modelVersion 1\.2\.0 --stack mirror && pulumi up --stack mirror/,
            ],
        ],
        [
            ["1.2.0", "--to", "broken"],
            [/^Pulumi\.broken\.yaml: it is not valid YAML .*Fix: repair the stack file\.$/],
        ],
        [
            ["1.2.0", "--to", "secret"],
            [
                /^Pulumi\.secret\.yaml: promoteFrom is not a plain string .*Fix: pulumi config set promoteFrom <stack> --stack secret\.$/,
            ],
        ],
        [
            ["1.2.0", "--from", "staging"],
            [
                /^--from staging: stack dev does not promote, it builds .*Fix: drop --from to build and publish in dev \(npm run release -- 1\.2\.0\)/,
            ],
        ],
        [
            ["1.2.0", "--to", "prod", "--from", "dev"],
            [
                /^--from dev: stack prod promotes from staging .*Fix: npm run release -- 1\.2\.0 --to prod --from staging; to change the source first: pulumi config set promoteFrom dev --stack prod\.$/,
            ],
        ],
        [
            ["1.2.0", "--to", "prod", "--to", "staging"],
            [/^--to is given 2 times\. Fix: npm run release -- 1\.2\.0 --to staging\.$/],
        ],
        // Every problem at once, each with the same corrected command.
        [
            ["v1.2.0", "--to", "Prod", "--preview"],
            [
                /^version "v1\.2\.0".*Fix: npm run release -- 1\.2\.0 --to prod --preview\.$/,
                /^--to Prod: .*Fix: npm run release -- 1\.2\.0 --to prod --preview, or create/,
            ],
        ],
    ])("%j is refused", (argv, messages) => {
        const parsed = parseReleaseCommand(argv, fixture);
        expect(parsed.kind).toBe("usage");
        const problems = parsed.kind === "usage" ? parsed.problems : [];
        expect(problems).toHaveLength(messages.length);
        messages.forEach((m, i) => expect(problems[i]).toMatch(m));
    });

    it.each([
        ["--too", "to"],
        ["--tO", "to"],
        ["-t", "to"],
        ["--fro", "from"],
        ["--form", "from"],
        ["--From", "from"],
        ["--prev", "preview"],
        ["--preveiw", "preview"],
        ["--hepl", "help"],
        ["--target", undefined],
        ["--bogus", undefined],
        ["-x", undefined],
        ["--", undefined],
    ])("optionMeant(%j) is %j", (typed, meant) => {
        expect(optionMeant(typed)).toBe(meant);
    });

    it("refuses a directory that is not a Pulumi project", () => {
        const parsed = parseReleaseCommand(["1.2.0"], os.tmpdir());
        expect(parsed).toEqual({
            kind: "usage",
            problems: [
                expect.stringMatching(
                    /^Pulumi\.yaml in .*: cannot read it .*Fix: run the command in the project\.$/,
                ),
            ],
        });
    });
});

describe("releaseMain", () => {
    async function run(argv: string[], env?: Record<string, string>) {
        const { io, sink } = captureIO();
        const workspaces: ReleasePlan[] = [];
        const workspace = new RecordingWorkspace({ dev: { "1.2.0": { digest: DIGEST_A } } });
        const code = await releaseMain(argv, {
            projectDir: fixture,
            io: sink,
            env,
            makeWorkspace: (plan) => {
                workspaces.push(plan);
                return workspace;
            },
        });
        return { code, io, workspaces, calls: workspace.calls };
    }

    it.each([["--help"], ["-h"]])(
        "%s prints the help on stdout and touches no stack",
        async (flag) => {
            const r = await run([flag]);
            expect(r.code).toBe(EXIT_OK);
            expect(r.io.out).toBe(HELP);
            expect(r.io.err).toBe("");
            expect(r.workspaces).toEqual([]);
        },
    );

    it.each([
        // npm run release 1.2.0 --to prod: npm expands --to to its --token-description.
        [{ npm_config_token_description: "prod" }, "--to"],
        // npm run release 1.2.0 --preview: npm keeps the flag as its own config.
        [{ npm_config_preview: "true" }, "--preview"],
        [{ npm_config_from: "staging" }, "--from"],
    ])("refuses flags npm kept for itself (%j), touching no stack", async (vars, flag) => {
        const r = await run(["1.2.0"], { npm_lifecycle_event: "release", ...vars });
        expect(r.code).toBe(EXIT_USAGE);
        expect(r.io.err).toContain(`npm kept ${flag} for itself`);
        expect(r.io.err).toContain("Fix: npm run release -- <version>");
        expect(r.workspaces).toEqual([]);
        expect(r.calls).toEqual([]);
    });

    it("runs when npm passed every flag through (npm run release -- …)", async () => {
        const r = await run(["1.2.0"], { npm_lifecycle_event: "release" });
        expect(r.code).toBe(EXIT_OK);
        expect(r.calls.length).toBeGreaterThan(0);
    });

    it("the help names every option, the default stack and the exit codes", () => {
        for (const text of [
            "<version>",
            "--to <stack>",
            "--from <stack>",
            "--preview",
            "--help",
            "default: dev",
            "Exit codes: 0",
            "2 the command line is wrong",
        ]) {
            expect(HELP).toContain(text);
        }
    });

    it("a bad command line exits 2 with every problem and never creates a workspace", async () => {
        const r = await run(["latest", "--to", "qa"]);
        expect(r.code).toBe(EXIT_USAGE);
        expect(r.workspaces).toEqual([]);
        expect(r.calls).toEqual([]);
        expect(r.io.out).toBe("");
        const lines = r.io.err.split("\n");
        expect(lines[0]).toBe(
            "release: 2 problems with the command; no stack was read or changed.",
        );
        expect(lines[1]).toMatch(/^  - version "latest": /);
        expect(lines[2]).toMatch(/^  - --to qa: /);
        expect(lines[3]).toMatch(/^  Usage: npm run release -- <version> \[--to <stack>\]/);
    });

    it("an unknown flag exits 2 before the version is looked at", async () => {
        const r = await run(["1.2.0", "--target", "staging"]);
        expect(r.code).toBe(EXIT_USAGE);
        expect(r.io.err).toContain("1 problem with the command");
        expect(r.io.err).toContain("unknown option --target");
        expect(r.workspaces).toEqual([]);
    });

    it("a good command line creates one workspace for its plan and runs it", async () => {
        const r = await run(["1.2.0", "--to", "staging"]);
        expect(r.code).toBe(EXIT_OK);
        expect(r.workspaces).toEqual([promotePlan()]);
        expect(r.calls).toEqual([
            "outputs dev",
            "setVersion staging 1.2.0",
            "up staging",
            "outputs staging",
        ]);
    });
});

describe("runRelease: publish", () => {
    it("sets the version, runs up with streamed progress, reads the outputs and prints the table", async () => {
        const ws = new RecordingWorkspace({ dev: { "1.0.0": { digest: DIGEST_B } } });
        const io = await release(publishPlan(), ws, EXIT_OK);
        expect(ws.calls).toEqual(["setVersion dev 1.2.0", "up dev", "outputs dev"]);
        expect(io.err).toBe("");
        expect(io.out).toContain("==> Setting model-registry:modelVersion = 1.2.0 in stack dev\n");
        // The engine's progress, as it came, in order.
        expect(io.out).toContain(
            "==> pulumi up --stack dev\nUpdating (dev):\nResources: 5 unchanged\n",
        );
        expect(
            io.out.endsWith(
                "Published 1.2.0 in stack dev.\n" +
                    formatTable([
                        {
                            stack: "dev",
                            version: "1.2.0",
                            digest: DIGEST_A,
                            imageRef: `${uriOf("dev")}@${DIGEST_A}`,
                        },
                    ]),
            ),
        ).toBe(true);
    });

    it("up failing: prints the error and the retry, exits 1, rolls nothing back", async () => {
        const ws = new RecordingWorkspace({ dev: {} });
        ws.failures.up = new Error("docker build failed");
        const io = await release(publishPlan(), ws, EXIT_FAILED);
        // No outputs read, and no second setVersion (no rollback of the config).
        expect(ws.calls).toEqual(["setVersion dev 1.2.0", "up dev"]);
        expect(ws.config.dev).toBe("1.2.0");
        expect(io.err).toBe(
            "release: pulumi up on stack dev failed:\n" +
                "  docker build failed\n" +
                "  Nothing was rolled back: stack dev keeps modelVersion 1.2.0 in its config.\n" +
                "  Retrying is safe once the cause is fixed: npm run release -- 1.2.0\n" +
                "  (a version that already landed with the same content is adopted, not pushed or copied again).\n",
        );
        expect(io.out).not.toContain("stack  version");
    });

    it("up failing through the CLI: prints its stderr, not the progress again", async () => {
        const ws = new RecordingWorkspace({ dev: {} });
        ws.failures.up = commandError(
            "Updating (dev):\n  lots of progress\n",
            "error: update failed",
        );
        const io = await release(publishPlan(), ws, EXIT_FAILED);
        expect(io.err).toContain("failed:\n  error: update failed\n  Nothing was rolled back");
        expect(io.err).not.toContain("lots of progress");
    });

    it("setVersion failing: nothing runs, exit 1", async () => {
        const ws = new RecordingWorkspace({ dev: {} });
        ws.failures.setVersion = commandError("", "error: no stack named 'dev' found");
        const io = await release(publishPlan(), ws, EXIT_FAILED);
        expect(ws.calls).toEqual(["setVersion dev 1.2.0"]);
        expect(io.err).toBe(
            "release: cannot set modelVersion in stack dev; nothing was run.\n  error: no stack named 'dev' found\n",
        );
    });

    it("an up that records no such version is not reported as published", async () => {
        const ws: RecordingWorkspace = new RecordingWorkspace(
            { dev: { "1.0.0": { digest: DIGEST_B } } },
            () => undefined,
        );
        const io = await release(publishPlan(), ws, EXIT_FAILED);
        expect(io.err).toMatch(
            /its published_versions output has no 1\.2\.0.*retry: npm run release -- 1\.2\.0$/m,
        );
        expect(io.out).not.toContain("Published");
    });

    it("outputs unreadable after up: says so and how to look", async () => {
        const ws = new RecordingWorkspace({ dev: {} });
        const original = ws.outputs.bind(ws);
        ws.outputs = async (stack) => {
            if (ws.calls.includes("up dev")) throw new Error("backend unreachable");
            return original(stack);
        };
        const io = await release(publishPlan(), ws, EXIT_FAILED);
        expect(io.err).toContain("backend unreachable");
        expect(io.err).toContain("pulumi stack output --stack dev");
    });

    it("--preview sets the version, previews and puts the version back: no up, exit 0", async () => {
        const ws = new RecordingWorkspace({ dev: {} });
        ws.config.dev = "1.1.0";
        const io = await release({ ...publishPlan(), preview: true }, ws, EXIT_OK);
        expect(ws.calls).toEqual([
            "getVersion dev",
            "setVersion dev 1.2.0",
            "preview dev",
            "restoreVersion dev 1.1.0",
        ]);
        expect(ws.config.dev).toBe("1.1.0");
        expect(io.out).toContain("Previewing update (dev):\n");
        expect(io.out).toContain(
            "Preview of 1.2.0 on stack dev: create 2, same 3. Nothing was published, and " +
                "modelVersion is 1.1.0 again in stack dev's config. Publish: npm run release -- 1.2.0\n",
        );
    });

    it("--preview on a stack without modelVersion leaves it unset again", async () => {
        const ws = new RecordingWorkspace({ dev: {} });
        await release({ ...publishPlan(), preview: true }, ws, EXIT_OK);
        expect(ws.calls.at(-1)).toBe("restoreVersion dev (unset)");
        expect(ws.config).not.toHaveProperty("dev");
    });

    it("--preview whose version cannot be put back says so, with the fix", async () => {
        const ws = new RecordingWorkspace({ dev: {} });
        ws.config.dev = "1.1.0";
        ws.failures.restoreVersion = new Error("backend unreachable");
        const io = await release({ ...publishPlan(), preview: true }, ws, EXIT_FAILED);
        expect(io.err).toContain("could not be put back to 1.1.0; it is 1.2.0 now.");
        expect(io.err).toContain("Fix: pulumi config set modelVersion 1.1.0 --stack dev");
    });

    it("--preview failing: exit 1, nothing published", async () => {
        const ws = new RecordingWorkspace({ dev: {} });
        ws.failures.preview = new Error("tag guard: 1.2.0 is already published with other content");
        const io = await release({ ...publishPlan(), preview: true }, ws, EXIT_FAILED);
        expect(io.err).toContain(
            "pulumi preview on stack dev failed; nothing was published, and modelVersion is not set again.",
        );
        expect(io.err).toContain("already published with other content");
        expect(ws.calls.at(-1)).toBe("restoreVersion dev (unset)");
    });
});

describe("runRelease: promote", () => {
    it("reads the source's outputs before anything else, then sets, ups, and checks the digest", async () => {
        const ws = new RecordingWorkspace(
            { dev: { "1.2.0": { digest: DIGEST_B } }, staging: {} },
            (_stack, version): string | undefined => ws.published.dev?.[version]?.digest,
        );
        const io = await release(promotePlan(), ws, EXIT_OK);
        expect(ws.calls).toEqual([
            "outputs dev",
            "setVersion staging 1.2.0",
            "up staging",
            "outputs staging",
        ]);
        expect(io.err).toBe("");
        expect(io.out).toContain(`    dev published 1.2.0 as ${DIGEST_B}\n`);
        const table = formatTable([
            {
                stack: "dev",
                version: "1.2.0",
                digest: DIGEST_B,
                imageRef: `${uriOf("dev")}@${DIGEST_B}`,
            },
            {
                stack: "staging",
                version: "1.2.0",
                digest: DIGEST_B,
                imageRef: `${uriOf("staging")}@${DIGEST_B}`,
            },
        ]);
        expect(
            io.out.endsWith(`Promoted 1.2.0 from dev to staging: the same digest.\n${table}`),
        ).toBe(true);
    });

    it("refuses a version the source has not published: one read, nothing changed, what it has", async () => {
        const ws = new RecordingWorkspace({
            dev: {
                "1.10.0": { digest: DIGEST_A },
                "1.2.0-rc.1": { digest: DIGEST_A },
                "1.0.0": { digest: DIGEST_A },
                "1.0.0-rc.1": { digest: DIGEST_A },
                "1.9.0": { digest: DIGEST_A },
            },
        });
        const io = await release(promotePlan("1.3.0"), ws, EXIT_FAILED);
        expect(ws.calls).toEqual(["outputs dev"]);
        expect(ws.config).toEqual({});
        expect(io.err).toBe(
            "release: stack dev has not published 1.3.0, so stack staging (which promotes from dev) " +
                "cannot promote it; nothing was changed. It has published 1.0.0-rc.1, 1.0.0, 1.2.0-rc.1, 1.9.0, 1.10.0.\n" +
                "  Fix: npm run release -- 1.3.0 first, or release a version dev has published.\n",
        );
    });

    it("names the right command when the source itself promotes (prod from staging)", async () => {
        const ws = new RecordingWorkspace({ staging: { "1.1.0": { digest: DIGEST_A } } });
        const io = await release(promotePlan("1.2.0", "staging", "prod"), ws, EXIT_FAILED);
        expect(ws.calls).toEqual(["outputs staging"]);
        expect(io.err).toContain("stack staging has not published 1.2.0, so stack prod");
        expect(io.err).toContain("It has published 1.1.0.");
        expect(io.err).toContain("Fix: npm run release -- 1.2.0 --to staging first");
    });

    it("a source that has published nothing says so", async () => {
        const ws = new RecordingWorkspace({});
        const io = await release(promotePlan(), ws, EXIT_FAILED);
        expect(ws.calls).toEqual(["outputs dev"]);
        expect(io.err).toContain(
            "It has published no versions yet (no published_versions output).",
        );
    });

    it("--preview of a version the source lacks is refused the same way", async () => {
        const ws = new RecordingWorkspace({ dev: {} });
        await release({ ...promotePlan(), preview: true }, ws, EXIT_FAILED);
        expect(ws.calls).toEqual(["outputs dev"]);
    });

    it("--preview of a published version: read, set, preview; no up", async () => {
        const ws = new RecordingWorkspace({ dev: { "1.2.0": { digest: DIGEST_A } } });
        await release({ ...promotePlan(), preview: true }, ws, EXIT_OK);
        expect(ws.calls).toEqual([
            "outputs dev",
            "getVersion staging",
            "setVersion staging 1.2.0",
            "preview staging",
            "restoreVersion staging (unset)",
        ]);
    });

    it("an unreadable source changes nothing", async () => {
        const ws = new RecordingWorkspace({});
        ws.failures.outputs = commandError("", "error: no stack named 'dev' found");
        const io = await release(promotePlan(), ws, EXIT_FAILED);
        expect(ws.calls).toEqual(["outputs dev"]);
        expect(io.err).toBe(
            "release: cannot read the outputs of stack dev, the source of staging; nothing was changed.\n" +
                "  error: no stack named 'dev' found\n",
        );
    });

    it("a digest that differs from the source's after up is reported with both, exit 1", async () => {
        const ws = new RecordingWorkspace(
            { dev: { "1.2.0": { digest: DIGEST_A } } },
            () => DIGEST_B,
        );
        const io = await release(promotePlan(), ws, EXIT_FAILED);
        expect(ws.calls).toEqual([
            "outputs dev",
            "setVersion staging 1.2.0",
            "up staging",
            "outputs staging",
        ]);
        expect(io.err).toContain(
            `release: stack staging recorded 1.2.0 as ${DIGEST_B}, but stack dev published it as ${DIGEST_A}`,
        );
        expect(io.err).toContain("Do not deploy staging's 1.2.0.");
        expect(io.err).toContain(
            `compare ${uriOf("staging")}@${DIGEST_B} and ${uriOf("dev")}@${DIGEST_A}`,
        );
        // Both rows are shown, and nothing claims success.
        expect(io.out).toContain(`staging  1.2.0    ${DIGEST_B}`);
        expect(io.out).toContain(`dev      1.2.0    ${DIGEST_A}`);
        expect(io.out).not.toContain("Promoted");
    });

    it("up failing on the target: retry names the target", async () => {
        const ws = new RecordingWorkspace({ dev: { "1.2.0": { digest: DIGEST_A } } });
        ws.failures.up = new Error("copy interrupted");
        const io = await release(promotePlan(), ws, EXIT_FAILED);
        expect(ws.calls).toEqual(["outputs dev", "setVersion staging 1.2.0", "up staging"]);
        expect(io.err).toContain(
            "Retrying is safe once the cause is fixed: npm run release -- 1.2.0 --to staging\n",
        );
    });
});

describe("formatTable", () => {
    it("aligns every column and leaves no trailing spaces", () => {
        expect(
            formatTable([
                {
                    stack: "dev",
                    version: "1.2.0-rc.1",
                    digest: "sha256:ab",
                    imageRef: "r/dev@sha256:ab",
                },
                {
                    stack: "staging",
                    version: "1.2.0",
                    digest: "sha256:abcd",
                    imageRef: "r/staging@sha256:abcd",
                },
            ]),
        ).toBe(
            "stack    version     digest       image_ref\n" +
                "dev      1.2.0-rc.1  sha256:ab    r/dev@sha256:ab\n" +
                "staging  1.2.0       sha256:abcd  r/staging@sha256:abcd\n",
        );
    });
});

describe("describeError", () => {
    it("a missing Pulumi CLI is said plainly", () => {
        expect(describeError(commandError("", "spawn pulumi ENOENT", "ENOENT"))).toMatch(
            /^the Pulumi CLI \(pulumi\) was not found on PATH\. Install the Pulumi CLI 3\.x/,
        );
    });

    it("a CLI failure is its stderr; anything else its message", () => {
        expect(describeError(commandError("progress", "  error: boom \n"))).toBe("error: boom");
        expect(describeError(new Error("plain"))).toBe("plain");
        expect(describeError("text")).toBe("text");
    });
});

describe("LocalReleaseWorkspace (the Automation API, without the CLI)", () => {
    afterEach(() => jest.restoreAllMocks());

    it("loads and constructs without running anything", () => {
        const spies = (
            ["spawn", "spawnSync", "execFile", "execFileSync", "exec", "execSync"] as const
        ).map((name) => jest.spyOn(childProcess, name));
        const create = jest.spyOn(automation.LocalWorkspace, "create");
        const ws = new LocalReleaseWorkspace(PROJECT_DIR, "model-registry");
        expect(ws.workDir).toBe(PROJECT_DIR);
        expect(ws.project).toBe("model-registry");
        expect(create).not.toHaveBeenCalled();
        for (const spy of spies) expect(spy).not.toHaveBeenCalled();
    });

    it("maps each operation to the Automation API, with one workspace for the project", async () => {
        const calls: unknown[][] = [];
        const local = {
            stackOutputs: async (stack: string) => {
                calls.push(["stackOutputs", stack]);
                return {
                    repository_uri: { value: uriOf(stack), secret: false },
                    published_versions: { value: { "1.2.0": { digest: DIGEST_A } }, secret: false },
                };
            },
            setConfig: async (...args: unknown[]) => {
                calls.push(["setConfig", ...args]);
            },
            getConfig: async (...args: unknown[]) => {
                calls.push(["getConfig", ...args]);
                if (args[0] === "prod") {
                    throw commandError(
                        "",
                        "error: configuration key 'model-registry:modelVersion' not found for stack 'prod'",
                        "",
                    );
                }
                return { value: "1.1.0", secret: false };
            },
            removeConfig: async (...args: unknown[]) => {
                calls.push(["removeConfig", ...args]);
            },
            // The stack the user had selected before the release.
            stack: async () => {
                calls.push(["stack"]);
                return { name: "dev" };
            },
            selectStack: async (name: string) => {
                calls.push(["selectStack", name]);
            },
        } as unknown as automation.LocalWorkspace;
        const create = jest
            .spyOn(automation.LocalWorkspace, "create")
            .mockImplementation(async (opts) => {
                calls.push(["create", opts]);
                return local;
            });
        const stack = {
            up: async (opts: automation.UpOptions) => {
                calls.push(["up", opts.policyPacks]);
                opts.onOutput?.("progress\n");
                return {} as automation.UpResult;
            },
            preview: async (opts: automation.PreviewOptions) => {
                calls.push(["preview", opts.policyPacks]);
                opts.onOutput?.("preview progress\n");
                return { stdout: "", stderr: "", changeSummary: { create: 1, same: 4 } };
            },
        } as unknown as automation.Stack;
        const select = jest
            .spyOn(automation.Stack, "select")
            .mockImplementation(async (name, ws) => {
                calls.push(["select", name, ws === local]);
                return stack;
            });

        const ws = new LocalReleaseWorkspace(fixture, "model-registry");
        const seen: string[] = [];
        expect(await ws.outputs("dev")).toEqual({
            repository_uri: uriOf("dev"),
            published_versions: { "1.2.0": { digest: DIGEST_A } },
        });
        await ws.setVersion("staging", "1.2.0");
        await ws.up("staging", (t) => seen.push(t));
        expect(await ws.preview("staging", (t) => seen.push(t))).toEqual({ create: 1, same: 4 });
        expect(await ws.getVersion("staging")).toBe("1.1.0");
        expect(await ws.getVersion("prod")).toBeUndefined();
        await ws.restoreVersion("staging", "1.1.0");
        await ws.restoreVersion("prod", undefined);

        expect(create).toHaveBeenCalledTimes(1);
        expect(select).toHaveBeenCalledTimes(2);
        expect(calls).toEqual([
            ["create", { workDir: fixture }],
            ["stackOutputs", "dev"],
            ["setConfig", "staging", "model-registry:modelVersion", { value: "1.2.0" }],
            // up and preview select the target, then select again what the user had selected.
            ["stack"],
            ["select", "staging", true],
            ["up", [path.join(fixture, "policy")]],
            ["selectStack", "dev"],
            ["stack"],
            ["select", "staging", true],
            ["preview", [path.join(fixture, "policy")]],
            ["selectStack", "dev"],
            ["getConfig", "staging", "model-registry:modelVersion"],
            ["getConfig", "prod", "model-registry:modelVersion"],
            ["setConfig", "staging", "model-registry:modelVersion", { value: "1.1.0" }],
            ["removeConfig", "prod", "model-registry:modelVersion"],
        ]);
        expect(seen).toEqual(["progress\n", "preview progress\n"]);
    });

    it("selects the user's stack again when up fails", async () => {
        const selected: string[] = [];
        const local = {
            stack: async () => ({ name: "dev" }),
            selectStack: async (name: string) => {
                selected.push(name);
            },
        } as unknown as automation.LocalWorkspace;
        jest.spyOn(automation.LocalWorkspace, "create").mockResolvedValue(local);
        jest.spyOn(automation.Stack, "select").mockResolvedValue({
            up: async () => {
                throw new Error("update failed");
            },
        } as unknown as automation.Stack);
        const ws = new LocalReleaseWorkspace(fixture, "model-registry");
        await expect(ws.up("prod", () => undefined)).rejects.toThrow("update failed");
        expect(selected).toEqual(["dev"]);
    });

    it("is what the command uses by default; a workspace that cannot start is exit 1", async () => {
        const create = jest
            .spyOn(automation.LocalWorkspace, "create")
            .mockRejectedValue(commandError("", "spawn pulumi ENOENT", "ENOENT"));
        const { io, sink } = captureIO();
        expect(await releaseMain(["1.2.0"], { projectDir: fixture, io: sink })).toBe(EXIT_FAILED);
        expect(create).toHaveBeenCalledWith({ workDir: fixture });
        expect(io.err).toBe(
            "release: cannot set modelVersion in stack dev; nothing was run.\n" +
                "  the Pulumi CLI (pulumi) was not found on PATH. Install the Pulumi CLI 3.x and log in " +
                "to the backend that holds the stacks (pulumi login).\n",
        );
    });

    it("npm run release -- 1.2.0 --too staging: exit 2, naming --too and --to", async () => {
        const run = await new Promise<{ code: number; stdout: string; stderr: string }>((resolve) =>
            childProcess.execFile(
                "npm",
                ["run", "--silent", "release", "--", "1.2.0", "--too", "staging"],
                { cwd: PROJECT_DIR },
                (err, stdout, stderr) =>
                    resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
            ),
        );
        expect(run).toEqual({
            code: EXIT_USAGE,
            stdout: "",
            stderr:
                "release: 1 problem with the command; no stack was read or changed.\n" +
                "  - unknown option --too; did you mean --to? Fix: npm run release -- 1.2.0 --to staging.\n" +
                "  Usage: npm run release -- <version> [--to <stack>] [--from <stack>] [--preview] (--help for more)\n",
        });
    });

    it("scripts/release.ts loads without running the command", async () => {
        const script = await import("../scripts/release");
        expect(script.PROJECT_DIR).toBe(PROJECT_DIR);
    });
});
