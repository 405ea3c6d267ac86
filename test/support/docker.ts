/**
 * A real Docker engine for tests and the benchmark: the client found by `tool("docker")` (DOCKER_BIN,
 * or the first `docker` on PATH that builds with BuildKit), the engine started by
 * scripts/start-docker.sh when none answers, and a local base image (scripts/base-image.sh).
 */
import { execFile, execFileSync } from "child_process";
import * as path from "path";
import { ModelBuildSpec } from "../../lib/publication/buildSpec";
import { tool } from "./tools";

/**
 * The Docker client: DOCKER_BIN, else the first `docker` on PATH that builds with BuildKit (the
 * docker.Image provider builds with BuildKit too). Throws the install hint when there is none.
 */
export function dockerCli(): string {
    return tool("docker");
}

/** The environment for scripts/*.sh: they run the same client through DOCKER_BIN. */
function scriptEnv(): NodeJS.ProcessEnv {
    return { ...process.env, DOCKER_BIN: dockerCli() };
}

const PROJECT = path.resolve(__dirname, "../..");

export interface Run {
    readonly stdout: string;
    readonly stderr: string;
}

/** Runs the docker client with BuildKit on; rejects with its output when it fails. */
export function docker(args: string[], opts: { cwd?: string } = {}): Promise<Run> {
    return new Promise((resolve, reject) => {
        execFile(
            dockerCli(),
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

/**
 * Makes sure an engine answers, starting dockerd (as root, or with passwordless sudo) when none
 * does. Never skips: fails with the install hint or the reason the engine does not answer.
 */
export async function ensureDockerEngine(): Promise<void> {
    const env = scriptEnv();
    // The same start-up as .ci/run; it leaves dockerd running for later runs.
    await new Promise<void>((resolve, reject) =>
        execFile(
            "bash",
            [path.join(PROJECT, "scripts/start-docker.sh")],
            { env },
            (err, _out, stderr) =>
                err ? reject(new Error(`no Docker engine: ${stderr.trim()}`)) : resolve(),
        ),
    );
}

/** The local base image with python3 (made once, then cached by its recipe). */
export function baseImage(): string {
    return execFileSync("bash", [path.join(PROJECT, "scripts/base-image.sh")], {
        encoding: "utf8",
        env: scriptEnv(),
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
