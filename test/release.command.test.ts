import * as fs from "fs";
import * as os from "os";
import { releaseMain } from "../lib/release";
import {
    EXIT_OK,
    EXIT_USAGE,
    HELP,
    ReleasePlan,
    optionMeant,
    parseReleaseCommand,
} from "../lib/release/command";
import {
    DIGEST_A,
    PROJECT_DIR,
    RecordingWorkspace,
    captureIO,
    makeReleaseProject,
    promotePlan,
} from "./support/release";
let fixture: string;
beforeAll(() => {
    fixture = makeReleaseProject();
});
afterAll(() => fs.rmSync(fixture, { recursive: true, force: true }));

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
        // promoteFrom names its stack in full (acme/model-registry/dev); --from takes the plain name.
        [
            ["1.2.0", "--to", "qualified", "--from", "staging"],
            [
                /^--from staging: stack qualified promotes from acme\/model-registry\/dev .*Fix: npm run release -- 1\.2\.0 --to qualified --from dev; to change/,
            ],
        ],
        [
            ["1.2.0", "--to", "qualified", "--from", "acme/model-registry/dev"],
            [
                /^--from "acme\/model-registry\/dev": give the stack's plain name.*Fix: npm run release -- 1\.2\.0 --to qualified --from dev\.$/,
            ],
        ],
        // A stack cannot promote from itself, so changing its promoteFrom to itself is no fix.
        [
            ["1.2.0", "--to", "staging", "--from", "Staging"],
            [
                /^--from Staging: stack staging promotes from dev .*Fix: npm run release -- 1\.2\.0 --to staging --from dev\.$/,
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

    it.each([
        [["1.2.0", "--to", "qualified", "--from", "staging"]],
        [["1.2.0", "--to", "qualified", "--from", "acme/model-registry/dev"]],
        [["1.2.0", "--to", "other", "--from", "dev"]],
        [["1.2.0", "--to", "other", "--from", "acme/another/dev"]],
        [["1.2.0", "--to", "staging", "--from", "staging"]],
    ])("%j: the corrected command is accepted", (argv) => {
        // A stack that promotes from another project's stack, which no --from can name.
        fs.writeFileSync(
            `${fixture}/Pulumi.other.yaml`,
            "config:\n  model-registry:promoteFrom: acme/another/dev\n",
        );
        try {
            const parsed = parseReleaseCommand(argv, fixture);
            const problems = parsed.kind === "usage" ? parsed.problems : [];
            expect(problems).toHaveLength(1);
            const fix = /Fix: npm run release -- (.*?)(?:;|,|\.$)/.exec(problems[0])?.[1];
            expect(fix).toBeDefined();
            expect(parseReleaseCommand(fix?.split(" ") ?? [], fixture)).toMatchObject({
                kind: "plan",
            });
        } finally {
            fs.rmSync(`${fixture}/Pulumi.other.yaml`);
        }
    });

    it.each([
        "https://bob:hunter2pw@registry.example.com/ml/iris",
        "registry.example.com/ml/iris?token=hunter2pwTokenValue",
        "ghcr.io/acme/iris HF_TOKEN=hunter2pwTokenValue",
        "ghcr.io/acme/iris password=my_hunter2pw",
        "ghcr.io/acme/iris password=``hunter2pw``",
    ])("never prints a promoteFrom that holds credentials: %s", (promoteFrom) => {
        fs.writeFileSync(
            `${fixture}/Pulumi.leaky.yaml`,
            `config:\n  model-registry:promoteFrom: "${promoteFrom}"\n`,
        );
        try {
            const parsed = parseReleaseCommand(["1.2.0", "--to", "leaky"], fixture);
            const problems = parsed.kind === "usage" ? parsed.problems : [];
            expect(problems).toEqual([
                expect.stringMatching(
                    /^Pulumi\.leaky\.yaml sets promoteFrom to a value that holds credentials \(not shown\).*Fix: pulumi config set promoteFrom <stack> --stack leaky\.$/s,
                ),
            ]);
            expect(problems.join("\n")).not.toContain("hunter2pw");
        } finally {
            fs.rmSync(`${fixture}/Pulumi.leaky.yaml`);
        }
    });

    it("takes a repository whose host only resembles a variable (registry-token:5000)", () => {
        fs.writeFileSync(
            `${fixture}/Pulumi.leaky.yaml`,
            "config:\n  model-registry:promoteFrom: registry-token:5000/ml/iris\n",
        );
        try {
            const parsed = parseReleaseCommand(["1.2.0", "--to", "leaky"], fixture);
            const problems = parsed.kind === "usage" ? parsed.problems : [];
            expect(problems).toEqual([
                expect.stringMatching(
                    /^stack leaky promotes from the repository registry-token:5000/,
                ),
            ]);
        } finally {
            fs.rmSync(`${fixture}/Pulumi.leaky.yaml`);
        }
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
