/**
 * The programs the service suites run (a Docker client, an OCI registry server, skopeo, htpasswd,
 * openssl), found on PATH or where an environment variable says, and the message that names what
 * is missing with the command that installs it on this platform. Used by jest's globalSetup (one
 * check, one message, before any suite starts), by the support modules and by the benchmark.
 */
import { execFileSync } from "child_process";
import * as fs from "fs";
import * as path from "path";

export type ToolName = "docker" | "registry" | "skopeo" | "htpasswd" | "openssl";

/** Package names per package manager; `undefined` where the tool comes another way. */
interface Packages {
    readonly apt: string;
    readonly dnf: string;
    readonly brew?: string;
}

interface ToolSpec {
    /** Environment variable that names the executable, instead of looking on PATH. */
    readonly env?: string;
    /** Names looked up on PATH, in order. */
    readonly names: readonly string[];
    readonly what: string;
    readonly packages: Packages;
    /** Why this executable will not do, or undefined when it will. */
    readonly vet?: (file: string) => string | undefined;
}

export const TOOLS: Readonly<Record<ToolName, ToolSpec>> = {
    docker: {
        env: "DOCKER_BIN",
        names: ["docker"],
        what: "a Docker client that builds with BuildKit",
        packages: { apt: "docker.io", dnf: "moby-engine" },
        vet: vetDocker,
    },
    registry: {
        env: "REGISTRY_BIN",
        // Debian and Ubuntu name it docker-registry; distribution's own build, Fedora and
        // Homebrew name it registry.
        names: ["docker-registry", "registry"],
        what: "an OCI registry server (CNCF distribution)",
        packages: { apt: "docker-registry", dnf: "docker-distribution", brew: "distribution" },
        vet: vetRegistry,
    },
    skopeo: {
        env: "SKOPEO_BIN",
        names: ["skopeo"],
        what: "skopeo",
        packages: { apt: "skopeo", dnf: "skopeo", brew: "skopeo" },
    },
    htpasswd: {
        names: ["htpasswd"],
        what: "htpasswd (for the registry's Basic auth)",
        packages: { apt: "apache2-utils", dnf: "httpd-tools", brew: "httpd" },
    },
    openssl: {
        names: ["openssl"],
        what: "openssl (for self-signed certificates)",
        packages: { apt: "openssl", dnf: "openssl", brew: "openssl" },
    },
};

/** What a lookup found: the executable, or why there is none. */
export type Found = { readonly file: string } | { readonly problem: string };

function isExecutable(file: string): boolean {
    try {
        fs.accessSync(file, fs.constants.X_OK);
        return fs.statSync(file).isFile();
    } catch {
        return false;
    }
}

/**
 * What the command prints on stdout, or undefined when it cannot run. A command that prints and
 * then exits non-zero still answered: `docker version` prints the client's version and exits 1
 * when no engine answers (stopped, or a socket the user may not open), and that client is fine:
 * the engine is started, or the socket problem reported, later.
 */
function output(file: string, args: string[]): string | undefined {
    try {
        return execFileSync(file, args, {
            encoding: "utf8",
            stdio: ["ignore", "pipe", "pipe"],
            timeout: 10_000,
        });
    } catch (e) {
        const stdout = (e as { stdout?: unknown }).stdout;
        return typeof stdout === "string" && stdout.trim() !== "" ? stdout : undefined;
    }
}

/**
 * Docker 23 and later build with BuildKit only through the buildx plugin; the classic client
 * before 23 (Debian bookworm's docker.io) has BuildKit built in. The tests build with BuildKit,
 * as the docker.Image provider does.
 */
function vetDocker(file: string): string | undefined {
    const version = output(file, ["version", "--format", "{{.Client.Version}}"])?.trim();
    if (!version) return `${file} does not answer 'docker version'`;
    const major = Number(/^(\d+)\./.exec(version)?.[1]);
    if (major < 23) return undefined;
    if (output(file, ["buildx", "version"]) !== undefined) return undefined;
    return `${file} (client ${version}) has no buildx plugin, which BuildKit needs since Docker 23`;
}

function vetRegistry(file: string): string | undefined {
    const version = output(file, ["--version"]);
    if (version === undefined) return `${file} does not answer '--version'`;
    return /distribution/.test(version)
        ? undefined
        : `${file} is not CNCF distribution's registry (its --version says ${JSON.stringify(version.trim())})`;
}

/**
 * Finds a tool: the file its environment variable names (which must be right: no fallback), else
 * the first executable on PATH, by each name in order, that passes the tool's vetting.
 */
export function findTool(name: ToolName, env: NodeJS.ProcessEnv = process.env): Found {
    const spec = TOOLS[name];
    const override = spec.env ? env[spec.env] : undefined;
    if (override) {
        if (!isExecutable(override))
            return { problem: `${spec.env}=${override} is not an executable file` };
        const problem = spec.vet?.(override);
        return problem ? { problem: `${spec.env}=${override}: ${problem}` } : { file: override };
    }
    const rejected: string[] = [];
    for (const command of spec.names) {
        for (const dir of (env.PATH ?? "").split(path.delimiter)) {
            if (!dir) continue;
            const file = path.join(dir, command);
            if (!isExecutable(file)) continue;
            const problem = spec.vet?.(file);
            if (!problem) return { file };
            rejected.push(problem);
        }
    }
    const looked = `no ${spec.names.join(" or ")} on PATH`;
    return { problem: rejected.length ? `${looked} will do: ${rejected.join("; ")}` : looked };
}

const found = new Map<ToolName, string>();

/** The tool's executable (looked up once per process), or an Error with the fix. */
export function tool(name: ToolName): string {
    const cached = found.get(name);
    if (cached) return cached;
    const result = findTool(name);
    if ("problem" in result) throw new Error(missingToolsMessage([{ name, ...result }]));
    found.set(name, result.file);
    return result.file;
}

export type Platform =
    | { readonly kind: "apt" }
    | { readonly kind: "dnf" }
    | { readonly kind: "brew" }
    | { readonly kind: "other"; readonly name: string };

/** The package manager the install hint names: from /etc/os-release on Linux. */
export function detectPlatform(
    platform: NodeJS.Platform = process.platform,
    osRelease: string | undefined = readOsRelease(),
): Platform {
    if (platform === "darwin") return { kind: "brew" };
    if (platform !== "linux") return { kind: "other", name: platform };
    const fields = new Map(
        (osRelease ?? "")
            .split("\n")
            .map((l) => /^([A-Z_]+)=(.*)$/.exec(l.trim()))
            .filter((m): m is RegExpExecArray => m !== null)
            .map((m) => [m[1], m[2].replace(/^["']|["']$/g, "")]),
    );
    const ids = `${fields.get("ID") ?? ""} ${fields.get("ID_LIKE") ?? ""}`.split(/\s+/);
    if (ids.some((id) => id === "debian" || id === "ubuntu")) return { kind: "apt" };
    if (ids.some((id) => id === "fedora" || id === "rhel" || id === "centos"))
        return { kind: "dnf" };
    return { kind: "other", name: fields.get("PRETTY_NAME") ?? "this Linux" };
}

function readOsRelease(): string | undefined {
    try {
        return fs.readFileSync("/etc/os-release", "utf8");
    } catch {
        return undefined;
    }
}

/** The command that installs these tools on the platform, or what to do instead. */
export function installHint(names: readonly ToolName[], platform: Platform): string {
    const unique = [...new Set(names)];
    switch (platform.kind) {
        case "apt":
            return `sudo apt-get install -y ${unique.map((n) => TOOLS[n].packages.apt).join(" ")}`;
        case "dnf":
            return `sudo dnf install -y ${unique.map((n) => TOOLS[n].packages.dnf).join(" ")}`;
        case "brew": {
            const formulae = unique.flatMap((n) => TOOLS[n].packages.brew ?? []);
            const parts = formulae.length ? [`brew install ${formulae.join(" ")}`] : [];
            if (unique.includes("docker")) parts.push("install Docker Desktop (the docker CLI)");
            if (unique.includes("registry"))
                parts.push("the distribution formula installs the server as 'registry'");
            return parts.join("; ");
        }
        case "other":
            return `install ${unique.map((n) => TOOLS[n].what).join(", ")} for ${platform.name}`;
    }
}

export interface MissingTool {
    readonly name: ToolName;
    readonly problem: string;
}

/** One message for everything missing: what, why, how to install it, how to point at it. */
export function missingToolsMessage(
    missing: readonly MissingTool[],
    platform: Platform = detectPlatform(),
): string {
    const lines = missing.map(({ name, problem }) => `  - ${TOOLS[name].what}: ${problem}`);
    const envs = [...new Set(missing.flatMap(({ name }) => TOOLS[name].env ?? []))];
    return [
        "The tests that need real services cannot run on this machine:",
        ...lines,
        `Install: ${installHint(
            missing.map((m) => m.name),
            platform,
        )}${platform.kind === "apt" ? " (or run 'bash .ci/run', which installs them)" : ""}.`,
        ...(envs.length
            ? [`Or name the executables: ${envs.map((e) => `${e}=/path/to/it`).join(", ")}.`]
            : []),
        "Without them, 'npm run test:unit' runs the suites that need no Docker engine or registry.",
    ].join("\n");
}

/** What a test suite needs beyond Node: found by the helpers its source calls. */
export type Need = ToolName | "docker engine" | "base image";

const NEEDS: readonly [RegExp, readonly Need[]][] = [
    [/\bstartRegistry\(/, ["registry", "htpasswd", "openssl"]],
    [/\bensureDockerEngine\(/, ["docker", "docker engine"]],
    [/\bbaseImage\(/, ["docker", "docker engine", "base image"]],
    [/\b(requireSkopeo|skopeoRaw)\(/, ["skopeo"]],
];

export function suiteNeeds(source: string): Set<Need> {
    const needs = new Set<Need>();
    for (const [pattern, list] of NEEDS)
        if (pattern.test(source)) for (const n of list) needs.add(n);
    return needs;
}

/** The executables `needs` names: where each was found, and what is missing and why. */
export function checkTools(
    needs: Iterable<Need>,
    env: NodeJS.ProcessEnv = process.env,
): { found: Map<ToolName, string>; missing: MissingTool[] } {
    const found = new Map<ToolName, string>();
    const missing: MissingTool[] = [];
    for (const need of needs) {
        if (!(need in TOOLS)) continue;
        const name = need as ToolName;
        const result = findTool(name, env);
        if ("problem" in result) missing.push({ name, problem: result.problem });
        else found.set(name, result.file);
    }
    return { found, missing };
}
