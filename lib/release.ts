/**
 * The release command (`npm run release -- <version> [--to <stack>]`): publish a model version to
 * the building stack (dev), or promote one to a stack that has `promoteFrom`, through the Pulumi
 * Automation API.
 *
 * Three parts, so tests can drive each one without a Pulumi CLI:
 *   - `parseReleaseCommand`: the command line and the project's stack files, checked before any
 *     stack is touched (exit code 2 on a problem);
 *   - `runRelease`: the sequence of stack operations, on a `ReleaseWorkspace`;
 *   - `LocalReleaseWorkspace`: that interface on the Automation API's `LocalWorkspace`.
 */
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import * as semver from "semver";
import * as fs from "fs";
import * as path from "path";
import { parseArgs } from "util";
import * as YAML from "yaml";
import { parsePromotionSource } from "./publication/promotion";
import { checkModelVersion, editDistance } from "./validation";

export const EXIT_OK = 0;
/** The release was refused by what the stacks hold, or a stack operation failed. */
export const EXIT_FAILED = 1;
/** The command line is wrong; no stack was read or changed. */
export const EXIT_USAGE = 2;

/** The stack that builds, and the default `--to`. */
export const DEFAULT_STACK = "dev";

/** What the release command needs from Pulumi, one stack at a time. */
export interface ReleaseWorkspace {
    /** The stack's outputs from its last update, as plain values. */
    outputs(stack: string): Promise<Record<string, unknown>>;
    /** Sets `<project>:modelVersion` in the stack's config. */
    setVersion(stack: string, version: string): Promise<void>;
    /** `<project>:modelVersion` in the stack's config; undefined when it is not set. */
    getVersion(stack: string): Promise<string | undefined>;
    /** Puts `<project>:modelVersion` back as it was: `previous`, or not set when undefined. */
    restoreVersion(stack: string, previous: string | undefined): Promise<void>;
    /** `pulumi up`, streaming the engine's progress to `onOutput`. */
    up(stack: string, onOutput: (text: string) => void): Promise<void>;
    /** `pulumi preview`; returns the count of each planned operation (`create`, `same`, ...). */
    preview(stack: string, onOutput: (text: string) => void): Promise<Record<string, number>>;
}

/** Where the command writes: raw text, the caller adds line ends. */
export interface ReleaseIO {
    stdout(text: string): void;
    stderr(text: string): void;
}

/** A checked release: what `runRelease` does. */
export type ReleasePlan =
    | {
          readonly kind: "publish";
          readonly project: string;
          readonly version: string;
          readonly target: string;
          readonly preview: boolean;
      }
    | {
          readonly kind: "promote";
          readonly project: string;
          readonly version: string;
          /** The stack the version is taken from: the target's `promoteFrom`. */
          readonly source: string;
          readonly target: string;
          readonly preview: boolean;
      };

export type ParsedCommand =
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

/** Pulumi stack names: letters, digits, `-`, `_` and `.`. */
const STACK_NAME = /^[A-Za-z0-9_.-]+$/;

/** The command line that does what was asked, with `<placeholders>` where nothing is known. */
function commandLine(args: {
    version: string;
    to: string;
    from: string | undefined;
    preview: boolean;
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

    // The version.
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
    const targetProblem = checkStackName("--to", to, stacks);
    if (targetProblem) {
        fixed.to = targetProblem.correction ?? "<stack>";
        problems.push({
            text: targetProblem.text,
            fix: () =>
                `${command()}${targetProblem.correction ? "" : ` (stacks: ${stacks.join(", ") || "none"})`}` +
                (targetProblem.create
                    ? `, or create the stack and its Pulumi.${to}.yaml first`
                    : ""),
        });
    } else {
        const file = `Pulumi.${to}.yaml`;
        const promoteFrom = readPromoteFrom(path.join(projectDir, file), project);
        if (typeof promoteFrom !== "string") {
            problems.push({ text: `${file}: ${promoteFrom.problem}`, fix: promoteFrom.fix });
        } else if (promoteFrom.trim() !== "") {
            const parsedSource = parsePromotionSource(promoteFrom, { project, stack: to });
            const configure = () => `pulumi config set promoteFrom <stack> --stack ${to}`;
            if (parsedSource.problem) {
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
            if (fromProblem) {
                fixed.from = source;
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
                fixed.from = source;
                problems.push({
                    text:
                        `--from ${values.from}: stack ${to} promotes from ${source} (promoteFrom in ` +
                        `${file}), and pulumi up copies from there, not from ${values.from}.`,
                    fix: () =>
                        `${command()}; to change the source first: pulumi config set promoteFrom ` +
                        `${values.from} --stack ${to}`,
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

/** `word` as one shell word: as it is when it needs no quoting, else in single quotes. */
function shellWord(word: string): string {
    return /^[A-Za-z0-9_.\/:=@+,-]+$/.test(word) ? word : `'${word.replace(/'/g, "'\\''")}'`;
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

/** The project's stacks: every `Pulumi.<stack>.yaml` next to `Pulumi.yaml`, sorted. */
export function listStacks(projectDir: string): string[] {
    return fs
        .readdirSync(projectDir)
        .map((f) => /^Pulumi\.(.+)\.yaml$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined && STACK_NAME.test(s))
        .sort();
}

function readYaml(file: string): { doc: unknown } | { problem: string } {
    let text: string;
    try {
        text = fs.readFileSync(file, "utf8");
    } catch (e) {
        return { problem: `cannot read it (${(e as Error).message})` };
    }
    try {
        return { doc: YAML.parse(text) as unknown };
    } catch (e) {
        return { problem: `it is not valid YAML (${(e as Error).message.split("\n")[0]})` };
    }
}

function readProjectName(projectDir: string): string | { problem: string } {
    const read = readYaml(path.join(projectDir, "Pulumi.yaml"));
    if ("problem" in read) {
        return {
            problem: `Pulumi.yaml in ${projectDir}: ${read.problem}. Fix: run the command in the project.`,
        };
    }
    const name = (read.doc as { name?: unknown } | null)?.name;
    if (typeof name !== "string" || name === "") {
        return {
            problem: `Pulumi.yaml in ${projectDir} has no name. Fix: set name: in Pulumi.yaml.`,
        };
    }
    return name;
}

/** The stack file's `promoteFrom` ("" when it builds), or what is wrong with the file. */
function readPromoteFrom(
    file: string,
    project: string,
): string | { problem: string; fix: () => string } {
    const stack = path.basename(file).slice("Pulumi.".length, -".yaml".length);
    const read = readYaml(file);
    if ("problem" in read)
        return { problem: `${read.problem}.`, fix: () => "repair the stack file" };
    const config = (read.doc as { config?: unknown } | null)?.config ?? {};
    if (typeof config !== "object" || config === null) {
        return { problem: `"config" is not a mapping.`, fix: () => "repair the stack file" };
    }
    const entries = config as Record<string, unknown>;
    const value = entries[`${project}:promoteFrom`] ?? entries.promoteFrom ?? "";
    if (typeof value !== "string") {
        return {
            problem: `promoteFrom is not a plain string (${JSON.stringify(value)}).`,
            fix: () => `pulumi config set promoteFrom <stack> --stack ${stack}`,
        };
    }
    return value;
}

/** One version as a stack recorded it in `published_versions`. */
interface Published {
    readonly digest: string;
}

/** The `published_versions` output: version -> { digest } (entries without a digest dropped). */
export function publishedVersionsOf(outputs: Record<string, unknown>): Record<string, Published> {
    const history = outputs.published_versions;
    const result: Record<string, Published> = {};
    if (typeof history !== "object" || history === null) return result;
    for (const [version, entry] of Object.entries(history)) {
        const digest = (entry as { digest?: unknown } | null)?.digest;
        if (typeof digest === "string" && digest !== "") result[version] = { digest };
    }
    return result;
}

/** SemVer precedence (1.0.0-rc.1 before 1.0.0); a key that is no version sorts last, by text. */
function byVersion(a: string, b: string): number {
    const [va, vb] = [semver.valid(a), semver.valid(b)];
    if (va && vb) return semver.compare(va, vb);
    return va ? -1 : vb ? 1 : a.localeCompare(b);
}

/** One row of the final table. */
export interface ReleaseRow {
    readonly stack: string;
    readonly version: string;
    readonly digest: string;
    readonly imageRef: string;
}

/** The rows as a table with aligned columns (no trailing spaces), ending with a line end. */
export function formatTable(rows: readonly ReleaseRow[]): string {
    const lines = [
        ["stack", "version", "digest", "image_ref"],
        ...rows.map((r) => [r.stack, r.version, r.digest, r.imageRef]),
    ];
    const widths = lines[0].map((_, i) => Math.max(...lines.map((l) => l[i].length)));
    return (
        lines
            .map((l) =>
                l
                    .map((cell, i) => cell.padEnd(widths[i]))
                    .join("  ")
                    .trimEnd(),
            )
            .join("\n") + "\n"
    );
}

/**
 * What went wrong in a stack operation, in a few lines: the Pulumi CLI's own stderr (its stdout,
 * the progress, was already streamed), or that the CLI is missing.
 */
export function describeError(e: unknown): string {
    const result = (e as { commandResult?: { stderr?: unknown; err?: unknown } } | null)
        ?.commandResult;
    const cause = result?.err as { code?: unknown; stderr?: unknown } | undefined;
    if (cause?.code === "ENOENT") {
        return (
            "the Pulumi CLI (pulumi) was not found on PATH. Install the Pulumi CLI 3.x and log in " +
            "to the backend that holds the stacks (pulumi login)."
        );
    }
    for (const text of [cause?.stderr, result?.stderr]) {
        if (typeof text === "string" && text.trim() !== "") return text.trim();
    }
    return e instanceof Error ? e.message : String(e);
}

function indent(text: string): string {
    return text
        .split("\n")
        .map((l) => `  ${l}`)
        .join("\n");
}

/**
 * Runs a checked release. Publish: set modelVersion, up, read the outputs. Promote: first read
 * the source's outputs and refuse a version it has not published (before anything else), then
 * the same, and check that the target recorded the source's digest. Returns the exit code.
 */
export async function runRelease(
    plan: ReleasePlan,
    workspace: ReleaseWorkspace,
    io: ReleaseIO,
): Promise<number> {
    const { version, target } = plan;
    const say = (text: string) => io.stdout(`${text}\n`);
    const fail = (text: string) => {
        io.stderr(`release: ${text}\n`);
        return EXIT_FAILED;
    };
    const again = `npm run release -- ${version}${target === DEFAULT_STACK ? "" : ` --to ${target}`}`;

    let sourceRow: ReleaseRow | undefined;
    if (plan.kind === "promote") {
        const { source } = plan;
        say(`==> Reading what stack ${source} has published (the source of ${target})`);
        let outputs: Record<string, unknown>;
        try {
            outputs = await workspace.outputs(source);
        } catch (e) {
            return fail(
                `cannot read the outputs of stack ${source}, the source of ${target}; nothing was ` +
                    `changed.\n${indent(describeError(e))}`,
            );
        }
        const published = publishedVersionsOf(outputs);
        const entry = published[version];
        if (!entry) {
            const versions = Object.keys(published).sort(byVersion);
            const has =
                versions.length > 0
                    ? `it has published ${versions.join(", ")}`
                    : "it has published no versions yet (no published_versions output)";
            const publishThere = STACK_NAME.test(source)
                ? `npm run release -- ${version}${source === DEFAULT_STACK ? "" : ` --to ${source}`}`
                : `publish ${version} in stack ${source}`;
            return fail(
                `stack ${source} has not published ${version}, so stack ${target} (which promotes ` +
                    `from ${source}) cannot promote it; nothing was changed. ${capitalize(has)}.\n` +
                    `  Fix: ${publishThere} first, or release a version ${source} has published.`,
            );
        }
        sourceRow = {
            stack: source,
            version,
            digest: entry.digest,
            imageRef: imageRefOf(outputs, entry.digest),
        };
        say(`    ${source} published ${version} as ${entry.digest}`);
    }

    // A preview publishes nothing, so it leaves the stack file as it found it.
    let previous: string | undefined;
    if (plan.preview) {
        try {
            previous = await workspace.getVersion(target);
        } catch (e) {
            return fail(
                `cannot read modelVersion of stack ${target}; nothing was run.\n${indent(describeError(e))}`,
            );
        }
    }

    say(`==> Setting ${plan.project}:modelVersion = ${version} in stack ${target}`);
    try {
        await workspace.setVersion(target, version);
    } catch (e) {
        return fail(
            `cannot set modelVersion in stack ${target}; nothing was run.\n${indent(describeError(e))}`,
        );
    }

    if (plan.preview) {
        say(`==> pulumi preview --stack ${target}`);
        let summary: Record<string, number> | undefined;
        let failure: unknown;
        try {
            summary = await workspace.preview(target, io.stdout);
        } catch (e) {
            failure = e;
        }
        const was = previous === undefined ? "not set" : previous;
        try {
            await workspace.restoreVersion(target, previous);
        } catch (e) {
            const fix =
                previous === undefined
                    ? `pulumi config rm modelVersion --stack ${target}`
                    : `pulumi config set modelVersion ${previous} --stack ${target}`;
            return fail(
                `the preview ran, but modelVersion of stack ${target} could not be put back to ${was}; ` +
                    `it is ${version} now.\n${indent(describeError(e))}\n  Fix: ${fix}`,
            );
        }
        if (failure !== undefined || summary === undefined) {
            return fail(
                `pulumi preview on stack ${target} failed; nothing was published, and modelVersion is ${was} again.\n${indent(describeError(failure))}`,
            );
        }
        const counts = Object.entries(summary)
            .filter(([, n]) => n > 0)
            .map(([op, n]) => `${op} ${n}`)
            .join(", ");
        say(
            `\nPreview of ${version} on stack ${target}: ${counts || "no changes"}. Nothing was ` +
                `published, and modelVersion is ${was} again in stack ${target}'s config. Publish: ${again}`,
        );
        return EXIT_OK;
    }

    say(`==> pulumi up --stack ${target}`);
    try {
        await workspace.up(target, io.stdout);
    } catch (e) {
        return fail(
            `pulumi up on stack ${target} failed:\n${indent(describeError(e))}\n` +
                `  Nothing was rolled back: stack ${target} keeps modelVersion ${version} in its config.\n` +
                `  Retrying is safe once the cause is fixed: ${again}\n` +
                `  (a version that already landed with the same content is adopted, not pushed or copied again).`,
        );
    }

    let outputs: Record<string, unknown>;
    try {
        outputs = await workspace.outputs(target);
    } catch (e) {
        return fail(
            `pulumi up on stack ${target} finished, but its outputs cannot be read:\n` +
                `${indent(describeError(e))}\n  Check them with: pulumi stack output --stack ${target}`,
        );
    }
    const recorded = publishedVersionsOf(outputs)[version];
    if (!recorded) {
        return fail(
            `pulumi up on stack ${target} finished, but its published_versions output has no ` +
                `${version}, so the release cannot be confirmed. Check: pulumi stack output ` +
                `published_versions --stack ${target}; then retry: ${again}`,
        );
    }
    const targetRow: ReleaseRow = {
        stack: target,
        version,
        digest: recorded.digest,
        imageRef: imageRefOf(outputs, recorded.digest),
    };
    const rows = sourceRow ? [sourceRow, targetRow] : [targetRow];

    if (sourceRow && recorded.digest !== sourceRow.digest) {
        io.stdout(`\n${formatTable(rows)}`);
        return fail(
            `stack ${target} recorded ${version} as ${recorded.digest}, but stack ${sourceRow.stack} ` +
                `published it as ${sourceRow.digest}: ${target} does not hold ${sourceRow.stack}'s ` +
                `image. Do not deploy ${target}'s ${version}.\n  Fix: compare ${targetRow.imageRef} ` +
                `and ${sourceRow.imageRef} to find out which is right; a published version never ` +
                `changes, so release the right image as a new version.`,
        );
    }
    say(
        sourceRow
            ? `\nPromoted ${version} from ${sourceRow.stack} to ${target}: the same digest.`
            : `\nPublished ${version} in stack ${target}.`,
    );
    io.stdout(formatTable(rows));
    return EXIT_OK;
}

/** `<repository_uri>@<digest>`; the digest alone when the stack has no repository_uri output. */
function imageRefOf(outputs: Record<string, unknown>, digest: string): string {
    const uri = outputs.repository_uri;
    return typeof uri === "string" && uri !== "" ? `${uri}@${digest}` : digest;
}

function capitalize(text: string): string {
    return text.charAt(0).toUpperCase() + text.slice(1);
}

/**
 * The release flags npm takes as its own config when `npm run release` is not followed by `--`:
 * `--preview` and `--from` become `npm_config_*` variables, and `--to` is expanded to npm's
 * `--token-description`. The script then sees only the version, and would publish to dev.
 */
export function npmSwallowedFlags(env: Readonly<Record<string, string | undefined>>): string[] {
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
 * `ReleaseWorkspace` on the Automation API, over the Pulumi CLI, in the project directory.
 * Constructing it runs nothing: the CLI is found on the first stack operation. Outputs and config
 * are read and written with `--stack`; only `up` and `preview` select the target stack (as
 * `pulumi stack select` would).
 */
export class LocalReleaseWorkspace implements ReleaseWorkspace {
    private workspace?: Promise<LocalWorkspace>;

    constructor(
        /** The project directory (where `Pulumi.yaml` is). */
        readonly workDir: string,
        /** The project name, the namespace of `modelVersion`. */
        readonly project: string,
    ) {}

    private local(): Promise<LocalWorkspace> {
        this.workspace ??= LocalWorkspace.create({ workDir: this.workDir });
        return this.workspace;
    }

    /** The project's policy pack, enforced on every release as in CI's previews and deploys. */
    private policyPacks(): string[] {
        return [path.join(this.workDir, "policy")];
    }

    private async stack(name: string): Promise<Stack> {
        return Stack.select(name, await this.local());
    }

    async outputs(stack: string): Promise<Record<string, unknown>> {
        const outputs = await (await this.local()).stackOutputs(stack);
        return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value as unknown]));
    }

    async setVersion(stack: string, version: string): Promise<void> {
        await (await this.local()).setConfig(stack, this.versionKey(), { value: version });
    }

    async getVersion(stack: string): Promise<string | undefined> {
        try {
            return (await (await this.local()).getConfig(stack, this.versionKey())).value;
        } catch (e) {
            // The CLI says "configuration key '...' not found" for a key that is not set.
            if (/not found/i.test(describeError(e))) return undefined;
            throw e;
        }
    }

    async restoreVersion(stack: string, previous: string | undefined): Promise<void> {
        const ws = await this.local();
        if (previous === undefined) await ws.removeConfig(stack, this.versionKey());
        else await ws.setConfig(stack, this.versionKey(), { value: previous });
    }

    private versionKey(): string {
        return `${this.project}:modelVersion`;
    }

    /**
     * Runs an operation on `stack`, which the Automation API selects (as `pulumi stack select`
     * does), then selects again the stack that was selected before: the user's next `pulumi up`
     * in this directory goes where it went before the release.
     */
    private async onStack<T>(stack: string, run: (s: Stack) => Promise<T>): Promise<T> {
        const ws = await this.local();
        const before = (await ws.stack().catch(() => undefined))?.name;
        try {
            return await run(await this.stack(stack));
        } finally {
            if (before && before !== stack) await ws.selectStack(before);
        }
    }

    async up(stack: string, onOutput: (text: string) => void): Promise<void> {
        await this.onStack(stack, (s) => s.up({ onOutput, policyPacks: this.policyPacks() }));
    }

    async preview(
        stack: string,
        onOutput: (text: string) => void,
    ): Promise<Record<string, number>> {
        const result = await this.onStack(stack, (s) =>
            s.preview({ onOutput, policyPacks: this.policyPacks() }),
        );
        return { ...result.changeSummary };
    }
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
