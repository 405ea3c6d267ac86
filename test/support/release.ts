/** What the release command's tests share: a project with stack files, a recording workspace, plans. */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { ReleasePlan } from "../../lib/release/command";
import { ReleaseWorkspace, runRelease } from "../../lib/release/run";

export const PROJECT_DIR = path.resolve(__dirname, "../..");
export const DIGEST_A = `sha256:${"a".repeat(64)}`;
export const DIGEST_B = `sha256:${"b".repeat(64)}`;
export const uriOf = (stack: string) => `public.ecr.aws/a1b2/model-registry-${stack}`;

/** A project directory with the stack files the parser reads (the caller removes it). */
export function makeReleaseProject(): string {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "release-test-"));
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
        fs.writeFileSync(path.join(dir, name), text);
    }
    return dir;
}

/** Captures what the command writes. */
export function captureIO() {
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
export class RecordingWorkspace implements ReleaseWorkspace {
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
export async function release(plan: ReleasePlan, ws: ReleaseWorkspace, code: number) {
    const { io, sink } = captureIO();
    expect(await runRelease(plan, ws, sink)).toBe(code);
    return io;
}

export const publishPlan = (version = "1.2.0"): ReleasePlan => ({
    kind: "publish",
    project: "model-registry",
    version,
    target: "dev",
    preview: false,
});

export const promotePlan = (
    version = "1.2.0",
    source = "dev",
    target = "staging",
): ReleasePlan => ({
    kind: "promote",
    project: "model-registry",
    version,
    source,
    target,
    preview: false,
});

/** An error shaped like the Automation API's CommandError around an execa failure. */
export function commandError(stdout: string, stderr: string, code?: string) {
    const err = Object.assign(new Error(`Command failed\n${stderr}\n${stdout}`), {
        code,
        stdout,
        stderr,
    });
    return Object.assign(new Error(`code: -2\n stdout: \n stderr: ${err.message}\n`), {
        commandResult: { stdout: "", stderr: err.message, code: -2, err },
    });
}
