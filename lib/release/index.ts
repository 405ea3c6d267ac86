/**
 * The release command (`npm run release -- <version> [--to <stack>]`): publish a model version to
 * the building stack (dev), or promote one to a stack that has `promoteFrom`, through the Pulumi
 * Automation API. `releaseMain` parses the command line (./command), then runs the release
 * (./run) on a `LocalReleaseWorkspace` (./workspace) or the workspace a test gives.
 */
import { EXIT_OK, EXIT_USAGE, HELP, ReleasePlan, parseReleaseCommand } from "./command";
import { ReleaseIO, ReleaseWorkspace, runRelease } from "./run";
import { LocalReleaseWorkspace } from "./workspace";

/**
 * The release flags npm takes as its own config when `npm run release` is not followed by `--`:
 * `--preview` and `--from` become `npm_config_*` variables, and `--to` is expanded to npm's
 * `--token-description`. The script then sees only the version, and would publish to dev.
 */
function npmSwallowedFlags(env: Readonly<Record<string, string | undefined>>): string[] {
    if (env.npm_lifecycle_event !== "release") return [];
    const flags: [string, string][] = [
        ["npm_config_to", "--to"],
        ["npm_config_token_description", "--to"],
        ["npm_config_from", "--from"],
        ["npm_config_preview", "--preview"],
    ];
    return [...new Set(flags.filter(([name]) => env[name] !== undefined).map(([, flag]) => flag))];
}

/**
 * The command: parse, then run with the workspace `makeWorkspace` gives (called only when the
 * command line is fine). Returns the exit code.
 */
export async function releaseMain(
    argv: readonly string[],
    options: {
        readonly projectDir: string;
        readonly io: ReleaseIO;
        readonly makeWorkspace?: (plan: ReleasePlan) => ReleaseWorkspace;
        /** The environment npm ran the script in; flags npm kept for itself show up there. */
        readonly env?: Readonly<Record<string, string | undefined>>;
    },
): Promise<number> {
    const { io, projectDir } = options;
    const swallowed = npmSwallowedFlags(options.env ?? {});
    if (swallowed.length > 0) {
        io.stderr(
            `release: npm kept ${swallowed.join(", ")} for itself (the command was run without \`--\` after \`npm run release\`), so this command would release to the wrong stack or run up instead of preview; no stack was read or changed.\n` +
                "  Fix: npm run release -- <version> [--to <stack>] [--from <stack>] [--preview]\n",
        );
        return EXIT_USAGE;
    }
    const parsed = parseReleaseCommand(argv, projectDir);
    if (parsed.kind === "help") {
        io.stdout(HELP);
        return EXIT_OK;
    }
    if (parsed.kind === "usage") {
        const n = parsed.problems.length;
        io.stderr(
            `release: ${n === 1 ? "1 problem" : `${n} problems`} with the command; no stack was read or changed.\n` +
                parsed.problems.map((p) => `  - ${p}\n`).join("") +
                "  Usage: npm run release -- <version> [--to <stack>] [--from <stack>] [--preview] (--help for more)\n",
        );
        return EXIT_USAGE;
    }
    const make =
        options.makeWorkspace ??
        ((plan: ReleasePlan) => new LocalReleaseWorkspace(projectDir, plan.project));
    return runRelease(parsed.plan, make(parsed.plan), io);
}
