import * as automation from "@pulumi/pulumi/automation";
import childProcess from "child_process";
import * as fs from "fs";
import * as path from "path";
import { releaseMain } from "../lib/release";
import { EXIT_FAILED, EXIT_OK, EXIT_USAGE } from "../lib/release/command";
import { describeError, formatTable } from "../lib/release/run";
import { LocalReleaseWorkspace } from "../lib/release/workspace";
import {
    DIGEST_A,
    DIGEST_B,
    PROJECT_DIR,
    RecordingWorkspace,
    captureIO,
    commandError,
    makeReleaseProject,
    promotePlan,
    publishPlan,
    release,
    uriOf,
} from "./support/release";
let fixture: string;
beforeAll(() => {
    fixture = makeReleaseProject();
});
afterAll(() => fs.rmSync(fixture, { recursive: true, force: true }));

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

    it("up failing with the guard's fix: the fix names the stack, which the release unselects", async () => {
        const ws = new RecordingWorkspace({ dev: {} });
        const fix = "Fix: pulumi config set --path 'acknowledgedTampering[0]' 1.0.0=absent";
        ws.failures.up = commandError("", `error: r/m:1.0.0 was deleted. ${fix}`);
        const io = await release(publishPlan(), ws, EXIT_FAILED);
        expect(io.err).toContain(
            "Fix: pulumi config set --stack dev --path 'acknowledgedTampering[0]' 1.0.0=absent",
        );
        // A command that names its stack already is left as it is.
        ws.failures.up = commandError(
            "",
            "Fix: pulumi config set --stack dev platform linux/amd64",
        );
        expect((await release(publishPlan(), ws, EXIT_FAILED)).err).toContain(
            "Fix: pulumi config set --stack dev platform linux/amd64\n",
        );
        // A value quoted in the error (a label read from the registry) is left as it is.
        const label = '"note: pulumi config get sourceUrl"';
        ws.failures.up = commandError("", `error: r/m:1.0.0 holds revision ${label}. ${fix}`);
        const quoted = (await release(publishPlan(), ws, EXIT_FAILED)).err;
        expect(quoted).toContain(`holds revision ${label}.`);
        expect(quoted).toContain("Fix: pulumi config set --stack dev --path");
    });

    it("setVersion failing: nothing runs, exit 1", async () => {
        const ws = new RecordingWorkspace({ dev: {} });
        ws.failures.setVersion = commandError("", "error: backend unreachable");
        const io = await release(publishPlan(), ws, EXIT_FAILED);
        expect(ws.calls).toEqual(["setVersion dev 1.2.0"]);
        expect(io.err).toBe(
            "release: cannot set modelVersion in stack dev; nothing was run.\n  error: backend unreachable\n",
        );
    });

    // The README's quick start creates dev only; Pulumi.staging.yaml alone is no stack.
    it.each([
        "error: no stack named 'staging' found",
        "error: no stack named 'acme/model-registry/staging' found",
        "error: getting stack: no stack named 'organization/staging' found\n",
    ])("a target stack never created (%j): the fix is pulumi stack init", async (stderr) => {
        const ws = new RecordingWorkspace({ dev: { "1.2.0": { digest: DIGEST_A } } });
        ws.failures.setVersion = commandError("", stderr);
        const io = await release(promotePlan(), ws, EXIT_FAILED);
        expect(ws.calls).toEqual(["outputs dev", "setVersion staging 1.2.0"]);
        expect(io.err).toBe(
            "release: cannot set modelVersion in stack staging; nothing was run.\n" +
                `  ${stderr.trim()}\n  Fix: pulumi stack init --no-select staging, then retry: npm run release -- 1.2.0 --to staging\n`,
        );
    });

    it("--preview of a target stack never created: the same fix, before anything is set", async () => {
        const ws = new RecordingWorkspace({ dev: { "1.2.0": { digest: DIGEST_A } } });
        ws.failures.getVersion = commandError("", "error: no stack named 'staging' found");
        const io = await release({ ...promotePlan(), preview: true }, ws, EXIT_FAILED);
        expect(ws.calls).toEqual(["outputs dev", "getVersion staging"]);
        expect(io.err).toBe(
            "release: cannot read modelVersion of stack staging; nothing was run.\n" +
                "  error: no stack named 'staging' found\n" +
                "  Fix: pulumi stack init --no-select staging, then retry: npm run release -- 1.2.0 --to staging --preview\n",
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
        ws.failures.outputs = commandError("", "error: backend unreachable");
        const io = await release(promotePlan(), ws, EXIT_FAILED);
        expect(ws.calls).toEqual(["outputs dev"]);
        expect(io.err).toBe(
            "release: cannot read the outputs of stack dev, the source of staging; nothing was changed.\n" +
                "  error: backend unreachable\n",
        );
    });

    it("a source stack never created: create it and publish there first", async () => {
        const ws = new RecordingWorkspace({});
        ws.failures.outputs = commandError("", "error: no stack named 'staging' found");
        const io = await release(promotePlan("1.2.0", "staging", "prod"), ws, EXIT_FAILED);
        expect(ws.calls).toEqual(["outputs staging"]);
        expect(io.err).toBe(
            "release: cannot read the outputs of stack staging, the source of prod; nothing was changed.\n" +
                "  error: no stack named 'staging' found\n" +
                "  Fix: pulumi stack init --no-select staging, then publish 1.2.0 there: npm run release -- 1.2.0 --to staging\n",
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

    it("getVersion of a stack never created fails (a missing stack is not an unset version)", async () => {
        const local = {
            getConfig: async () => {
                throw commandError("", "error: no stack named 'staging' found", "");
            },
        } as unknown as automation.LocalWorkspace;
        jest.spyOn(automation.LocalWorkspace, "create").mockResolvedValue(local);
        const ws = new LocalReleaseWorkspace(fixture, "model-registry");
        await expect(ws.getVersion("staging")).rejects.toThrow("no stack named 'staging' found");
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
