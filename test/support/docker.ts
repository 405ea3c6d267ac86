/**
 * A real Docker engine for tests and the benchmark: Debian's docker.io, started as root when it is
 * not running, and a local base image (scripts/base-image.sh) since no public registry is reachable.
 */
import { execFile, execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";
import { ModelBuildSpec } from "../../lib/buildSpec";

/**
 * Debian's client: the same version as its engine, with BuildKit built in (the docker.Image
 * provider builds with BuildKit too). A newer client elsewhere on PATH may need a buildx plugin.
 */
export const DOCKER = "/usr/bin/docker";
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
            {
                cwd: opts.cwd ?? PROJECT,
                env: { ...process.env, DOCKER_BUILDKIT: "1" },
                maxBuffer: 64 * 1024 * 1024,
            },
            (err, stdout, stderr) => {
                if (err)
                    reject(new Error(`docker ${args.join(" ")} failed: ${err.message}\n${stderr}`));
                else resolve({ stdout, stderr });
            },
        );
    });
}

/** Makes sure an engine answers, starting dockerd (as root) when none does. Never skips. */
export async function ensureDockerEngine(): Promise<void> {
    if (!fs.existsSync(DOCKER)) {
        throw new Error(
            "Docker is not installed: apt-get install -y docker.io (or run 'bash .ci/run', which does).",
        );
    }
    // The same start-up as .ci/run; it leaves dockerd running for later runs.
    await new Promise<void>((resolve, reject) =>
        execFile("bash", [path.join(PROJECT, "scripts/start-docker.sh")], (err, _out, stderr) =>
            err ? reject(new Error(`no Docker engine: ${stderr.trim()}`)) : resolve(),
        ),
    );
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
export async function buildWithSpec(
    spec: ModelBuildSpec,
    tag: string,
    cwd = PROJECT,
): Promise<{ imageId: string; log: string }> {
    const args = ["build", "--platform", spec.platform, "-f", spec.dockerfile, "-t", tag];
    for (const [k, v] of Object.entries(spec.args)) args.push("--build-arg", `${k}=${v}`);
    args.push("--progress", "plain", spec.context);
    const { stderr } = await docker(args, { cwd });
    const { stdout } = await docker(["image", "inspect", "--format", "{{.Id}}", tag]);
    return { imageId: stdout.trim(), log: stderr };
}
