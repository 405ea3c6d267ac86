/**
 * A real Docker engine for tests and the benchmark: Debian's docker.io, started as root when it is
 * not running, and a local base image (scripts/base-image.sh) since no public registry is reachable.
 */
import { execFile, execFileSync, spawn } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ModelBuildSpec } from "../../lib/buildSpec";

/**
 * Debian's client: the same version as its engine, with BuildKit built in (the docker.Image
 * provider builds with BuildKit too). A newer client elsewhere on PATH may need a buildx plugin.
 */
export const DOCKER = "/usr/bin/docker";
const DOCKERD = "/usr/sbin/dockerd";
const PROJECT = path.resolve(__dirname, "../..");

export interface Run {
    readonly stdout: string;
    readonly stderr: string;
}

/** Runs the docker client with BuildKit on; rejects with its output when it fails. */
export function docker(args: string[], opts: { cwd?: string } = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
        execFile(
            DOCKER,
            args,
            { cwd: opts.cwd ?? PROJECT, env: { ...process.env, DOCKER_BUILDKIT: "1" }, maxBuffer: 64 * 1024 * 1024 },
            (err, stdout, stderr) => {
                if (err) reject(new Error(`docker ${args.join(" ")} failed: ${err.message}\n${stderr}`));
                else resolve({ stdout, stderr });
            },
        );
    });
}

function engineAnswers(): boolean {
    try {
        execFileSync(DOCKER, ["info", "--format", "{{.ServerVersion}}"], { stdio: "ignore", timeout: 10_000 });
        return true;
    } catch {
        return false;
    }
}

/** Makes sure an engine answers: starts dockerd (as root) when none does. Never skips. */
export async function ensureDockerEngine(): Promise<void> {
    if (!fs.existsSync(DOCKER) || !fs.existsSync(DOCKERD)) {
        throw new Error("Docker is not installed: apt-get install -y docker.io (or run 'bash .ci/run', which does).");
    }
    if (engineAnswers()) return;
    if (process.getuid?.() !== 0) {
        throw new Error("no Docker engine answers, and only root can start dockerd: start it, or run 'bash .ci/run' as root.");
    }
    const log = fs.openSync("/tmp/model-registry-dockerd.log", "a");
    // Left running for later test runs; it ends with the machine's session.
    spawn(DOCKERD, [], { detached: true, stdio: ["ignore", log, log] }).unref();
    const deadline = Date.now() + 60_000;
    while (!engineAnswers()) {
        if (Date.now() > deadline) {
            throw new Error(`dockerd did not come up within 60 s; see /tmp/model-registry-dockerd.log`);
        }
        await new Promise((r) => setTimeout(r, 500));
    }
}

/** The local base image with python3 (made once, then cached by its recipe). */
export function baseImage(): string {
    return execFileSync("bash", [path.join(PROJECT, "scripts/base-image.sh")], {
        encoding: "utf8",
        env: { ...process.env, PATH: `/usr/bin:${process.env.PATH}` },
        stdio: ["ignore", "pipe", "inherit"],
    }).trim();
}

/** `docker build` with exactly the inputs the program gives docker.Image. Returns the image id. */
export async function buildWithSpec(spec: ModelBuildSpec, tag: string, cwd = PROJECT): Promise<{ imageId: string; log: string }> {
    const args = ["build", "--platform", spec.platform, "-f", spec.dockerfile, "-t", tag];
    for (const [k, v] of Object.entries(spec.args)) args.push("--build-arg", `${k}=${v}`);
    args.push("--progress", "plain", spec.context);
    const { stderr } = await docker(args, { cwd });
    const { stdout } = await docker(["image", "inspect", "--format", "{{.Id}}", tag]);
    return { imageId: stdout.trim(), log: stderr };
}
