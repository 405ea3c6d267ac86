/**
 * `runRelease`: a checked release as a sequence of stack operations on a `ReleaseWorkspace`, and
 * what it prints (progress, the final table, each failure with its fix).
 */
import * as semver from "semver";
import { EXIT_FAILED, EXIT_OK, ReleasePlan, commandLine } from "./command";
import { STACK_NAME } from "../stackFiles";
import { withStack } from "../validation";

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

/** The `published_versions` output: version -> digest (entries without a digest dropped). */
function publishedDigests(outputs: Record<string, unknown>): Record<string, string> {
    const history = outputs.published_versions;
    const result: Record<string, string> = {};
    if (typeof history !== "object" || history === null) return result;
    for (const [version, entry] of Object.entries(history)) {
        const digest = (entry as { digest?: unknown } | null)?.digest;
        if (typeof digest === "string" && digest !== "") result[version] = digest;
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
interface ReleaseRow {
    readonly stack: string;
    readonly version: string;
    readonly digest: string;
    readonly imageRef: string;
}

/**
 * The stack's row for `version` from its outputs, the image as `<repository_uri>@<digest>` (the
 * digest alone without a repository_uri output); undefined when it has not published `version`.
 */
function rowOf(
    stack: string,
    version: string,
    outputs: Record<string, unknown>,
): ReleaseRow | undefined {
    const digest = publishedDigests(outputs)[version];
    if (digest === undefined) return undefined;
    const uri = outputs.repository_uri;
    const imageRef = typeof uri === "string" && uri !== "" ? `${uri}@${digest}` : digest;
    return { stack, version, digest, imageRef };
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

/**
 * Whether `e` is the Pulumi CLI's error for a stack that was never created (`pulumi stack init`;
 * a Pulumi.<stack>.yaml alone is no stack): backenderr.StackNotFoundError, "no stack named
 * '<stack>' found" (pkg/backend/backenderr/backenderr.go), which RequireStack
 * (pkg/cmd/pulumi/stack/io.go) returns to `pulumi config get/set` and `pulumi stack output`. The
 * name may be org-qualified, so it is matched as the Automation API matches its
 * StackNotFoundError (sdk/nodejs/automation/errors.ts: /no stack named.*found/).
 */
function stackNeverCreated(e: unknown): boolean {
    return /no stack named .*found/i.test(describeError(e));
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
    const again = commandLine({ version, to: target });
    /** The fix when `e` says `stack` was never created (create it, then `then`); else "". */
    const initFirst = (e: unknown, stack: string, then: string) =>
        stackNeverCreated(e) ? `\n  Fix: pulumi stack init --no-select ${stack}, then ${then}` : "";
    const retry = `retry: ${commandLine({ version, to: target, preview: plan.preview })}`;

    let sourceRow: ReleaseRow | undefined;
    if (plan.kind === "promote") {
        const { source } = plan;
        say(`==> Reading what stack ${source} has published (the source of ${target})`);
        let outputs: Record<string, unknown>;
        try {
            outputs = await workspace.outputs(source);
        } catch (e) {
            const publishThere = `publish ${version} there: ${commandLine({ version, to: source })}`;
            return fail(
                `cannot read the outputs of stack ${source}, the source of ${target}; nothing was ` +
                    `changed.\n${indent(describeError(e))}` +
                    (STACK_NAME.test(source) ? initFirst(e, source, publishThere) : ""),
            );
        }
        sourceRow = rowOf(source, version, outputs);
        if (!sourceRow) {
            const versions = Object.keys(publishedDigests(outputs)).sort(byVersion);
            const has =
                versions.length > 0
                    ? `It has published ${versions.join(", ")}`
                    : "It has published no versions yet (no published_versions output)";
            const publishThere = STACK_NAME.test(source)
                ? commandLine({ version, to: source })
                : `publish ${version} in stack ${source}`;
            return fail(
                `stack ${source} has not published ${version}, so stack ${target} (which promotes ` +
                    `from ${source}) cannot promote it; nothing was changed. ${has}.\n` +
                    `  Fix: ${publishThere} first, or release a version ${source} has published.`,
            );
        }
        say(`    ${source} published ${version} as ${sourceRow.digest}`);
    }

    // A preview publishes nothing, so it leaves the stack file as it found it.
    let previous: string | undefined;
    if (plan.preview) {
        try {
            previous = await workspace.getVersion(target);
        } catch (e) {
            return fail(
                `cannot read modelVersion of stack ${target}; nothing was run.\n${indent(describeError(e))}` +
                    initFirst(e, target, retry),
            );
        }
    }

    say(`==> Setting ${plan.project}:modelVersion = ${version} in stack ${target}`);
    try {
        await workspace.setVersion(target, version);
    } catch (e) {
        return fail(
            `cannot set modelVersion in stack ${target}; nothing was run.\n${indent(describeError(e))}` +
                initFirst(e, target, retry),
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
                `pulumi preview on stack ${target} failed; nothing was published, and modelVersion is ${was} again.\n${indent(withStack(describeError(failure), target, `'"`))}`,
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
            `pulumi up on stack ${target} failed:\n${indent(withStack(describeError(e), target, `'"`))}\n` +
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
    const targetRow = rowOf(target, version, outputs);
    if (!targetRow) {
        return fail(
            `pulumi up on stack ${target} finished, but its published_versions output has no ` +
                `${version}, so the release cannot be confirmed. Check: pulumi stack output ` +
                `published_versions --stack ${target}; then retry: ${again}`,
        );
    }
    const rows = sourceRow ? [sourceRow, targetRow] : [targetRow];

    if (sourceRow && targetRow.digest !== sourceRow.digest) {
        io.stdout(`\n${formatTable(rows)}`);
        return fail(
            `stack ${target} recorded ${version} as ${targetRow.digest}, but stack ${sourceRow.stack} ` +
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
