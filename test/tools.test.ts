/**
 * Where the service suites find their tools (test/support/tools.ts), the message when one is
 * missing, and jest's one check before any suite starts (test/support/globalSetup.ts): one clear
 * failure, under CI too, instead of one per test; and suites that need no service still run.
 * Needs no Docker engine and no registry: fake executables stand in for them.
 */
import { execFile } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { problems, Results } from "../scripts/check-test-results";
import {
    detectPlatform,
    findTool,
    installHint,
    missingToolsMessage,
    suiteNeeds,
} from "./support/tools";

jest.setTimeout(120_000);

const PROJECT = path.resolve(__dirname, "..");
let tmp: string;

beforeAll(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "tools-"));
});
afterAll(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
});

/** A directory holding one fake executable `name` that runs `script` (sh). */
function fakeBin(dir: string, name: string, script: string): string {
    const d = path.join(tmp, dir);
    fs.mkdirSync(d, { recursive: true });
    fs.writeFileSync(path.join(d, name), `#!/bin/sh\n${script}\n`, { mode: 0o755 });
    return d;
}

/** A fake docker client of that version, with or without the buildx plugin. */
function fakeDocker(dir: string, version: string, buildx: boolean): string {
    return fakeBin(
        dir,
        "docker",
        `case "$1" in\n  version) echo ${version} ;;\n  buildx) ${buildx ? "echo buildx v0.14.0" : "exit 1"} ;;\n  *) exit 1 ;;\nesac`,
    );
}

const pathOf = (...dirs: string[]) => ({ PATH: dirs.join(path.delimiter) });

describe("finding the Docker client", () => {
    it("takes a client whose engine does not answer: docker version prints the client and exits 1", () => {
        // As Docker's client does with the engine stopped, or a socket the user may not open.
        const stopped = fakeBin(
            "engine-stopped",
            "docker",
            'case "$1" in\n  version) echo 20.10.24+dfsg1; echo "Cannot connect to the Docker daemon" >&2; exit 1 ;;\n  *) exit 1 ;;\nesac',
        );
        expect(findTool("docker", pathOf(stopped))).toEqual({ file: path.join(stopped, "docker") });
        // A client that prints nothing is still no client.
        const broken = fakeBin("broken", "docker", "exit 1");
        expect(findTool("docker", pathOf(broken))).toHaveProperty("problem");
    });

    it("takes the first docker on PATH that builds with BuildKit, passing over a newer one without buildx", () => {
        const newBare = fakeDocker("new-bare", "28.2.2", false);
        const debian = fakeDocker("debian", "20.10.24+dfsg1", false);
        const withBuildx = fakeDocker("new-buildx", "27.5.1", true);
        // As on this machine: /usr/local/bin/docker (28, no buildx) before Debian's /usr/bin/docker.
        expect(findTool("docker", pathOf(newBare, debian))).toEqual({
            file: path.join(debian, "docker"),
        });
        expect(findTool("docker", pathOf(newBare, withBuildx, debian))).toEqual({
            file: path.join(withBuildx, "docker"),
        });
        expect(findTool("docker", pathOf(newBare))).toEqual({
            problem: `no docker on PATH will do: ${path.join(newBare, "docker")} (client 28.2.2) has no buildx plugin, which BuildKit needs since Docker 23`,
        });
        expect(findTool("docker", pathOf(path.join(tmp, "nothing-here")))).toEqual({
            problem: "no docker on PATH",
        });
    });

    it("takes DOCKER_BIN over PATH, and says so when it is wrong instead of falling back", () => {
        const debian = fakeDocker("debian", "20.10.24+dfsg1", false);
        const withBuildx = fakeDocker("new-buildx", "27.5.1", true);
        const chosen = path.join(debian, "docker");
        expect(findTool("docker", { ...pathOf(withBuildx), DOCKER_BIN: chosen })).toEqual({
            file: chosen,
        });
        const missing = path.join(tmp, "no/such/docker");
        expect(findTool("docker", { ...pathOf(withBuildx), DOCKER_BIN: missing })).toEqual({
            problem: `DOCKER_BIN=${missing} is not an executable file`,
        });
    });
});

describe("finding the registry server", () => {
    const v2 = 'echo "docker-registry github.com/docker/distribution 2.8.2+ds1"';
    const v3 = 'echo "registry github.com/distribution/distribution/v3 v3.0.0"';

    it("takes Debian's docker-registry, else distribution's own name, registry", () => {
        const debian = fakeBin("reg-debian", "docker-registry", v2);
        const brew = fakeBin("reg-brew", "registry", v3);
        expect(findTool("registry", pathOf(brew, debian))).toEqual({
            file: path.join(debian, "docker-registry"),
        });
        expect(findTool("registry", pathOf(brew))).toEqual({ file: path.join(brew, "registry") });
    });

    it("passes over a `registry` that is some other program, and honours REGISTRY_BIN", () => {
        const other = fakeBin("reg-other", "registry", 'echo "Windows-style registry editor 1.0"');
        expect(findTool("registry", pathOf(other))).toEqual({
            problem: `no docker-registry or registry on PATH will do: ${path.join(other, "registry")} is not CNCF distribution's registry (its --version says "Windows-style registry editor 1.0")`,
        });
        const brew = fakeBin("reg-brew", "registry", v3);
        expect(
            findTool("registry", { ...pathOf(other), REGISTRY_BIN: path.join(brew, "registry") }),
        ).toEqual({ file: path.join(brew, "registry") });
    });
});

describe("the install hint", () => {
    const debian = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nID=debian\n';
    const ubuntu = 'NAME="Ubuntu"\nID=ubuntu\nID_LIKE=debian\nVERSION_CODENAME=noble\n';
    const fedora = 'NAME="Fedora Linux"\nID=fedora\n';
    const alpine = 'PRETTY_NAME="Alpine Linux v3.20"\nID=alpine\n';

    it("knows the platform's package manager", () => {
        expect(detectPlatform("linux", debian)).toEqual({ kind: "apt" });
        expect(detectPlatform("linux", ubuntu)).toEqual({ kind: "apt" });
        expect(detectPlatform("linux", fedora)).toEqual({ kind: "dnf" });
        expect(detectPlatform("darwin", undefined)).toEqual({ kind: "brew" });
        expect(detectPlatform("linux", alpine)).toEqual({
            kind: "other",
            name: "Alpine Linux v3.20",
        });
        expect(detectPlatform("win32", undefined)).toEqual({ kind: "other", name: "win32" });
    });

    it("names each platform's packages", () => {
        const all = ["docker", "registry", "skopeo", "htpasswd"] as const;
        expect(installHint(all, { kind: "apt" })).toBe(
            "sudo apt-get install -y docker.io docker-registry skopeo apache2-utils",
        );
        expect(installHint(all, { kind: "dnf" })).toBe(
            "sudo dnf install -y moby-engine docker-distribution skopeo httpd-tools",
        );
        expect(installHint(all, { kind: "brew" })).toBe(
            "brew install distribution skopeo httpd; install Docker Desktop (the docker CLI); " +
                "the distribution formula installs the server as 'registry'",
        );
    });

    it("gives one message with every problem, the install command, the variables and test:unit", () => {
        const message = missingToolsMessage(
            [
                { name: "registry", problem: "no docker-registry or registry on PATH" },
                { name: "skopeo", problem: "no skopeo on PATH" },
            ],
            { kind: "apt" },
        );
        expect(message).toBe(
            [
                "The tests that need real services cannot run on this machine:",
                "  - an OCI registry server (CNCF distribution): no docker-registry or registry on PATH",
                "  - skopeo: no skopeo on PATH",
                "Install: sudo apt-get install -y docker-registry skopeo (or run 'bash .ci/run', which installs them).",
                "Or name the executables: REGISTRY_BIN=/path/to/it, SKOPEO_BIN=/path/to/it.",
                "Without them, 'npm run test:unit' runs the suites that need no Docker engine or registry.",
            ].join("\n"),
        );
    });
});

describe("what each suite needs", () => {
    const source = (file: string) => fs.readFileSync(path.join(PROJECT, file), "utf8");
    const testFiles = fs
        .readdirSync(path.join(PROJECT, "test"))
        .filter((f) => f.endsWith(".test.ts"));

    it("npm run test:unit selects only suites that need no service", () => {
        const pkg = JSON.parse(source("package.json")) as { scripts: Record<string, string> };
        const prefixes = pkg.scripts["test:unit"].split(/\s+/).filter((a) => a.startsWith("test/"));
        expect(prefixes.length).toBeGreaterThan(5);
        const selected = testFiles.filter((f) => prefixes.some((p) => `test/${f}`.startsWith(p)));
        expect(selected.length).toBeGreaterThanOrEqual(prefixes.length);
        const needing = selected.filter((f) => suiteNeeds(source(`test/${f}`)).size > 0);
        expect(needing).toEqual([]);
    });

    it("finds the registry, Docker, the base image and skopeo where the suites use them", () => {
        const needs = (f: string) => [...suiteNeeds(source(`test/${f}`))].sort();
        expect(needs("guard.registry.test.ts")).toEqual(["htpasswd", "openssl", "registry"]);
        expect(needs("image.docker.test.ts")).toEqual([
            "base image",
            "docker",
            "docker engine",
            "htpasswd",
            "openssl",
            "registry",
        ]);
        expect(needs("registryCopy.test.ts")).toContain("skopeo");
        expect(needs("config.test.ts")).toEqual([]);
    });
});

describe("the CI check of jest's results (scripts/check-test-results.ts)", () => {
    const suite = (name: string, ...statuses: string[]) => ({
        path: `/work/test/${name}`,
        statuses,
    });
    const run = (over: Partial<Results>): Results => ({
        numPassedTests: 4,
        numFailedTests: 0,
        numPendingTests: 0,
        numTodoTests: 0,
        numRuntimeErrorTestSuites: 0,
        suites: [
            suite("guard.registry.test.ts", "passed"),
            suite("registryClient.test.ts", "passed"),
            suite("image.docker.test.ts", "passed", "passed"),
        ],
        ...over,
    });

    it("passes a full run, and fails a skip or a service suite that passed nothing, under CI only", () => {
        expect(problems(run({}), true)).toEqual([]);
        const skipped = run({
            numPendingTests: 2,
            suites: [
                suite("guard.registry.test.ts", "passed"),
                suite("registryClient.test.ts", "pending", "pending"),
                suite("image.docker.test.ts", "passed"),
            ],
        });
        expect(problems(skipped, true)).toEqual([
            "2 tests were skipped; under CI every test must run",
            "test/registryClient.test.ts passed no test; it needs a real service and must run in CI",
        ]);
        expect(problems(skipped, false)).toEqual([]);
        expect(problems(run({ numFailedTests: 1, numRuntimeErrorTestSuites: 1 }), false)).toEqual([
            "1 tests failed",
            "1 test suites did not run",
        ]);
    });
});

describe("a jest run without the registry server", () => {
    interface Run {
        code: number | null;
        output: string;
    }

    /** Runs the project's jest, with its own config, on suites under `roots`, in a bare env. */
    function jest(roots: string, args: string[]): Promise<Run> {
        const env: NodeJS.ProcessEnv = {
            // No docker-registry or registry anywhere on PATH; REGISTRY_BIN names nothing.
            PATH: path.join(tmp, "empty-path"),
            REGISTRY_BIN: path.join(tmp, "no/such/registry"),
            CI: "true",
        };
        for (const key of ["HOME", "TMPDIR"]) if (process.env[key]) env[key] = process.env[key];
        const bin = path.join(PROJECT, "node_modules/jest/bin/jest.js");
        return new Promise((resolve) =>
            execFile(
                process.execPath,
                [bin, ...args, "--ci", "--roots", roots],
                { cwd: PROJECT, env, maxBuffer: 16 * 1024 * 1024 },
                (err, stdout, stderr) =>
                    resolve({
                        code: err ? (typeof err.code === "number" ? err.code : null) : 0,
                        output: `${stdout}${stderr}`,
                    }),
            ),
        );
    }

    const count = (text: string, part: string) => text.split(part).length - 1;

    it("fails once, before any suite starts, with the fix; suites that need nothing still run", async () => {
        const suites = path.join(tmp, "suites");
        fs.mkdirSync(path.join(tmp, "empty-path"), { recursive: true });
        fs.mkdirSync(suites, { recursive: true });
        const registry = JSON.stringify(path.join(PROJECT, "test/support/registry"));
        for (const name of ["first", "second"]) {
            // Shaped like the registry suites: the registry starts in beforeAll.
            fs.writeFileSync(
                path.join(suites, `${name}.needsRegistry.test.ts`),
                `import { LocalRegistry, startRegistry } from ${registry};\n` +
                    `let registry: LocalRegistry | undefined;\n` +
                    `beforeAll(async () => { registry = await startRegistry(); });\n` +
                    `afterAll(async () => { await registry?.stop(); });\n` +
                    `it("one", () => expect(registry).toBeDefined());\n` +
                    `it("two", () => expect(registry).toBeDefined());\n`,
            );
        }
        fs.writeFileSync(
            path.join(suites, "plain.test.ts"),
            `it("needs no service", () => expect(1 + 1).toBe(2));\n`,
        );

        const [all, plain] = await Promise.all([jest(suites, []), jest(suites, ["plain"])]);

        expect(all.code).toBe(1);
        expect(count(all.output, "cannot run on this machine")).toBe(1);
        expect(all.output).toContain(
            `an OCI registry server (CNCF distribution): REGISTRY_BIN=${path.join(tmp, "no/such/registry")} is not an executable file`,
        );
        expect(all.output).toContain("REGISTRY_BIN=/path/to/it");
        expect(all.output).toContain("'npm run test:unit'");
        // Nothing ran, so nothing failed one test at a time, and nothing was left running.
        expect(all.output).not.toMatch(/●|Tests:|RegistryError|did not exit|at .*\.ts:\d+/);

        expect(plain.output).toMatch(/Tests:\s+1 passed, 1 total/);
        expect(plain.code).toBe(0);
    });
});
