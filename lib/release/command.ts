/**
 * The command line and the project's stack files, checked before any stack is touched: a
 * `ReleasePlan` for `runRelease`, the help, or every problem at once with a corrected command.
 */
import { parseArgs } from "util";
import { parsePromotionSource } from "../publication/promotion";
import {
    STACK_NAME,
    listStacks,
    readProjectName,
    readStackConfig,
    stackFileName,
} from "../stackFiles";
import { checkModelVersion, credentialsIn, editDistance, shellWord } from "../validation";

export const EXIT_OK = 0;
/** The release was refused by what the stacks hold, or a stack operation failed. */
export const EXIT_FAILED = 1;
/** The command line is wrong; no stack was read or changed. */
export const EXIT_USAGE = 2;

/** The stack that builds, and the default `--to`. */
export const DEFAULT_STACK = "dev";

/** A checked release: what `runRelease` does. */
export type ReleasePlan = {
    readonly project: string;
    readonly version: string;
    readonly target: string;
    readonly preview: boolean;
} & (
    | { readonly kind: "publish" }
    /** `source`: the stack the version is taken from, the target's `promoteFrom`. */
    | { readonly kind: "promote"; readonly source: string }
);

type ParsedCommand =
    | { readonly kind: "help" }
    | { readonly kind: "plan"; readonly plan: ReleasePlan }
    /** Each problem is one sentence naming the bad value, then `Fix: ...`. */
    | { readonly kind: "usage"; readonly problems: readonly string[] };

export const HELP = `Usage: npm run release -- <version> [--to <stack>] [--from <stack>] [--preview]

Publish a model version to the ${DEFAULT_STACK} stack, or promote it to a stack that promotes from
another (its Pulumi.<stack>.yaml sets promoteFrom). Sets modelVersion in the stack's config, runs
pulumi up with its progress, and prints the stack, version, digest and image reference.

Arguments:
  <version>        the version to release: SemVer without build metadata (1.2.0, 1.3.0-rc.1)
  --to <stack>     the stack to release to (default: ${DEFAULT_STACK}); this project needs its
                   Pulumi.<stack>.yaml. A stack with promoteFrom promotes: the version must be
                   published in that source stack first, and the same digest is published here
  --from <stack>   the source stack of a promotion; must be the target's promoteFrom (a check
                   that the release goes where you expect)
  --preview        set modelVersion and run pulumi preview instead of pulumi up
  -h, --help       show this help

Examples:
  npm run release -- 1.2.0                  build and publish 1.2.0 in ${DEFAULT_STACK}
  npm run release -- 1.2.0 --to staging     promote 1.2.0 from dev to staging
  npm run release -- 1.2.0 --to prod        promote 1.2.0 from staging to prod
  npm run release -- 1.1.0 --to prod        rollback: prod already holds 1.1.0; nothing is copied

Exit codes: 0 released; 1 refused or failed (a retry of the same command is safe);
2 the command line is wrong (no stack was read or changed).
`;

const OPTIONS = {
    to: { type: "string" },
    from: { type: "string" },
    preview: { type: "boolean" },
    help: { type: "boolean", short: "h" },
} as const;

/** The command line that does what was asked, with `<placeholders>` where nothing is known. */
export function commandLine(args: {
    version: string;
    to: string;
    from?: string;
    preview?: boolean;
}): string {
    return (
        `npm run release -- ${args.version}` +
        (args.to === DEFAULT_STACK ? "" : ` --to ${args.to}`) +
        (args.from === undefined ? "" : ` --from ${args.from}`) +
        (args.preview ? " --preview" : "")
    );
}

/**
 * Checks the command line against the project in `projectDir` (its `Pulumi.yaml` and stack
 * files) and reports every problem at once, each with a corrected command. Reads files only: no
 * stack is read or changed here.
 */
export function parseReleaseCommand(argv: readonly string[], projectDir: string): ParsedCommand {
    let parsed;
    try {
        parsed = parseArgs({
            args: [...argv],
            options: OPTIONS,
            allowPositionals: true,
            strict: true,
            tokens: true,
        });
    } catch (e) {
        if (argv.includes("--help") || argv.includes("-h")) return { kind: "help" };
        return { kind: "usage", problems: [argumentProblem(e, argv)] };
    }
    const { values, positionals, tokens } = parsed;
    if (values.help) return { kind: "help" };

    const project = readProjectName(projectDir);
    if (typeof project !== "string") return { kind: "usage", problems: [project.problem] };
    const stacks = listStacks(projectDir);

    // Each check records its problem and the value that would fix it; the fixes are then written
    // as one corrected command line.
    const to = values.to ?? DEFAULT_STACK;
    const fixed = { version: "", to, from: values.from, preview: values.preview ?? false };
    const problems: { text: string; fix: () => string }[] = [];
    const command = () => commandLine(fixed);

    for (const name of ["to", "from", "preview"] as const) {
        const count = tokens.filter((t) => t.kind === "option" && t.name === name).length;
        if (count > 1) {
            problems.push({ text: `--${name} is given ${count} times.`, fix: command });
        }
    }

    const version = positionals[0];
    fixed.version = version ?? "<version>";
    if (version === undefined) {
        problems.push({ text: "the version to release is missing.", fix: command });
    } else {
        const problem = checkModelVersion(version);
        if (problem) {
            fixed.version = problem.suggestion ?? "<version>";
            problems.push({
                text: `version ${JSON.stringify(version)}: ${problem.reason}.`,
                fix: command,
            });
        }
    }
    if (positionals.length > 1) {
        const all = positionals.map((p) => JSON.stringify(p)).join(" ");
        problems.push({
            text: `expected one version, got ${positionals.length}: ${all}; one run releases one version to one stack.`,
            fix: () => `${command()}, then the next version`,
        });
    }

    // The target stack, and from its stack file, the source of a promotion.
    let source: string | undefined;
    const file = stackFileName(projectDir, to);
    const targetProblem = checkStackName("--to", to, stacks);
    if (targetProblem) {
        fixed.to = targetProblem.correction ?? "<stack>";
        problems.push({
            text: targetProblem.text,
            fix: () =>
                `${command()}${targetProblem.correction ? "" : ` (stacks: ${stacks.join(", ") || "none"})`}` +
                (targetProblem.create ? `, or create the stack and its ${file} first` : ""),
        });
    } else {
        const promoteFrom = readPromoteFrom(projectDir, to, project);
        if (typeof promoteFrom !== "string") {
            problems.push({ text: `${file}: ${promoteFrom.problem}`, fix: promoteFrom.fix });
        } else if (promoteFrom.trim() !== "") {
            const parsedSource = parsePromotionSource(promoteFrom, { project, stack: to });
            const configure = () => `pulumi config set promoteFrom <stack> --stack ${to}`;
            if (credentialsIn(promoteFrom).length > 0) {
                // Never shown: a release's log may be public.
                problems.push({
                    text: `${file} sets promoteFrom to a value that holds credentials (not shown); a promotion source is a stack or a repository, without them.`,
                    fix: configure,
                });
            } else if (parsedSource.problem) {
                problems.push({
                    text: `${file} sets promoteFrom ${JSON.stringify(promoteFrom)}: ${parsedSource.problem.reason}.`,
                    fix: configure,
                });
            } else if (parsedSource.source?.kind === "repository") {
                problems.push({
                    text:
                        `stack ${to} promotes from the repository ${parsedSource.source.repositoryUri} ` +
                        `(${file}), which keeps no record of published versions, so the release ` +
                        `command cannot check the version before the run.`,
                    fix: () =>
                        `pulumi config set modelVersion ${fixed.version} --stack ${to} && ` +
                        `pulumi up --stack ${to}, or promote from a stack (${configure()})`,
                });
            } else if (parsedSource.source) {
                source = parsedSource.source.name;
            }
        }
        if (values.from !== undefined && typeof promoteFrom === "string") {
            const fromProblem = checkStackName("--from", values.from, undefined);
            // The source as --from names it: its plain name (acme/model-registry/dev is dev); no
            // --from names another project's stack.
            const plain = source?.split("/").pop();
            const fromSource =
                source && plain && sameStack(plain, source, project) ? plain : undefined;
            if (fromProblem) {
                fixed.from = fromSource;
                problems.push({ text: fromProblem.text, fix: command });
            } else if (promoteFrom.trim() === "") {
                fixed.from = undefined;
                problems.push({
                    text:
                        `--from ${values.from}: stack ${to} does not promote, it builds (${file} sets ` +
                        `no promoteFrom), so it would not publish ${values.from}'s image.`,
                    fix: () =>
                        `drop --from to build and publish in ${to} (${command()}), or release to a ` +
                        `stack that promotes from ${values.from}`,
                });
            } else if (source !== undefined && !sameStack(values.from, source, project)) {
                const from = values.from;
                fixed.from = fromSource;
                problems.push({
                    text:
                        `--from ${from}: stack ${to} promotes from ${source} (promoteFrom in ` +
                        `${file}), and pulumi up copies from there, not from ${from}.`,
                    // A stack cannot promote from itself (parsePromotionSource refuses it).
                    fix: () =>
                        sameStack(from, to, project)
                            ? command()
                            : `${command()}; to change the source first: pulumi config set ` +
                              `promoteFrom ${from} --stack ${to}`,
                });
            }
        }
    }

    if (problems.length > 0 || version === undefined) {
        return { kind: "usage", problems: problems.map((p) => `${p.text} Fix: ${p.fix()}.`) };
    }
    return {
        kind: "plan",
        plan:
            source === undefined
                ? { kind: "publish", project, version, target: to, preview: fixed.preview }
                : { kind: "promote", project, version, source, target: to, preview: fixed.preview },
    };
}

/** parseArgs' errors, said with the option and the fix; a misspelt option with the one meant. */
function argumentProblem(e: unknown, argv: readonly string[]): string {
    const code = (e as { code?: string }).code;
    const message = e instanceof Error ? e.message : String(e);
    const option = /'(-[^' ]*)/.exec(message)?.[1] ?? "";
    const options = "--to <stack>, --from <stack>, --preview, --help";
    if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION") {
        // The word as typed: parseArgs names only the first letter of `-to` ('-t').
        const index = argv.findIndex((a) =>
            option.startsWith("--")
                ? a === option || a.startsWith(`${option}=`)
                : !a.startsWith("--") && a.startsWith(option),
        );
        const typed = index < 0 ? option : argv[index].split("=")[0];
        const meant = optionMeant(typed);
        if (index >= 0 && meant !== undefined) {
            const fixed = [...argv];
            fixed[index] = `--${meant}${argv[index].slice(typed.length)}`;
            return (
                `unknown option ${typed}; did you mean --${meant}? ` +
                `Fix: npm run release -- ${fixed.map(shellWord).join(" ")}.`
            );
        }
        return `unknown option ${typed}; the options are ${options}. Fix: remove it (see --help).`;
    }
    if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE") {
        if (/does not take an argument/.test(message)) {
            return `${option} takes no value. Fix: write ${option} alone.`;
        }
        return `${option} needs a stack name. Fix: ${option} staging (see --help).`;
    }
    return `${message.split("\n")[0]}. Fix: see npm run release -- --help.`;
}

/**
 * The option an unknown one probably stands for (`--too`, `--form`, `-to`, `--Preview`,
 * `--prev`): the same name but for case and dashes, the start of one option's name, or one edit
 * away (two for names of five letters or more). Undefined when nothing is that close.
 */
export function optionMeant(typed: string): string | undefined {
    const name = typed.replace(/^-+/, "").toLowerCase();
    const names = Object.keys(OPTIONS);
    if (name === "") return undefined;
    if (names.includes(name)) return name;
    const starts = names.filter((n) => name.length >= 2 && n.startsWith(name));
    if (starts.length === 1) return starts[0];
    const close = names.filter((n) => editDistance(name, n) <= (name.length >= 5 ? 2 : 1));
    return close.length === 1 ? close[0] : undefined;
}

/**
 * A problem with a stack name from the command line: what is wrong, the name that was probably
 * meant, and whether creating the stack is a fix.
 */
function checkStackName(
    flag: string,
    name: string,
    stacks: readonly string[] | undefined,
): { text: string; correction?: string; create?: boolean } | undefined {
    const known = (s: string) => stacks === undefined || stacks.includes(s);
    if (name.includes("/")) {
        const plain = name.split("/").pop() ?? "";
        return {
            text:
                `${flag} ${JSON.stringify(name)}: give the stack's plain name; the release runs in ` +
                `this project, in the organization you are logged in to.`,
            correction: STACK_NAME.test(plain) && known(plain) ? plain : undefined,
        };
    }
    if (!STACK_NAME.test(name)) {
        return {
            text: `${flag} ${JSON.stringify(name)}: a stack name has only letters, digits, '-', '_' and '.'.`,
        };
    }
    if (stacks && !stacks.includes(name)) {
        return {
            text:
                `${flag} ${name}: this project has no Pulumi.${name}.yaml, so ${name} is not one of ` +
                `its stacks (${stacks.join(", ") || "none"}).`,
            correction: stacks.find((s) => s.toLowerCase() === name.toLowerCase()),
            create: true,
        };
    }
    return undefined;
}

/** `dev` and `org/<project>/dev` name the same stack; Pulumi stack names ignore case. */
function sameStack(given: string, source: string, project: string): boolean {
    const parts = source.toLowerCase().split("/");
    const name = parts[parts.length - 1];
    const sameProject = parts.length === 1 || parts[1] === project.toLowerCase();
    return sameProject && name === given.toLowerCase();
}

/** The stack file's `promoteFrom` ("" when it builds), or what is wrong with the file. */
function readPromoteFrom(
    projectDir: string,
    stack: string,
    project: string,
): string | { problem: string; fix: () => string } {
    const read = readStackConfig(projectDir, stack);
    if ("problem" in read) {
        return { problem: `${read.problem}.`, fix: () => "repair the stack file" };
    }
    const value = read.config[`${project}:promoteFrom`] ?? read.config.promoteFrom ?? "";
    if (typeof value !== "string") {
        return {
            problem: `promoteFrom is not a plain string (${JSON.stringify(value)}).`,
            fix: () => `pulumi config set promoteFrom <stack> --stack ${stack}`,
        };
    }
    return value;
}
