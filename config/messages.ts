/**
 * The one message a refused config becomes: each problem with its key, the value (credentials
 * and secrets masked) and the command that fixes it.
 */
import { Problem, plural, shellWord } from "../lib/validation";
import { withoutCredentials } from "../lib/oci/errors";
import { CONFIG_KEYS, ConfigKey, KeySpec, SECRET_KEYS, StackName } from "./keys";

export interface ConfigProblem extends Problem {
    /** The key as written in the stack's config (an unknown key is reported as it is spelt). */
    readonly key: string;
    /** The value as the user wrote it; undefined when the key is not set. */
    readonly value: string | undefined;
    /** Replaces `= "<value>"` / `is not set` after the key (an unknown key's value is not read). */
    readonly shown?: string;
    /** The whole fix, when it is not one `pulumi config set` of the key (several commands, `rm`). */
    readonly fix?: string;
}

/**
 * A value as the last argument of `pulumi config set`: after `--` when it starts with `-`, which
 * the CLI would read as a flag (pulumi/pulumi#892; the usage line says so since #20437).
 */
export function configValue(value: string): string {
    return value.startsWith("-") ? `-- ${shellWord(value)}` : shellWord(value);
}

/** Keys whose value is a URL, where credentials may have been typed (`https://user:pw@host`). */
const URL_KEYS: ReadonlySet<string> = new Set(["registryUrl", "sourceUrl"]);

/** The default as the fix names it: `model`, `empty`, `["Linux"]`. */
function describeDefault(value: string | boolean | number | readonly string[]): string {
    if (Array.isArray(value)) return JSON.stringify(value);
    return value === "" ? "empty" : String(value);
}

/**
 * The command that fixes a problem: the problem's own when it has one; else `pulumi config set`
 * with the value derived from the bad one; else, with no value to derive, `set` with a
 * placeholder, and `rm` for a key that has a default. Never a fixed example value.
 */
function fixFor(p: ConfigProblem): string {
    if (p.fix !== undefined) return p.fix;
    const spec: KeySpec = CONFIG_KEYS[p.key as ConfigKey];
    // A secret is typed at the CLI's prompt, never on the command line (shell history, ps).
    if (SECRET_KEYS.has(p.key as ConfigKey)) {
        return `pulumi config set --secret ${p.key} (it prompts for the value)`;
    }
    const value = p.suggestion !== undefined ? configValue(p.suggestion) : spec.placeholder;
    if (spec.kind === "array") {
        if (p.index !== undefined || p.suggestion !== undefined) {
            return `pulumi config set --path '${p.key}[${p.index ?? 0}]' ${value}`;
        }
        return `pulumi config rm ${p.key} (the default: ${describeDefault(spec.default ?? [])}), or set its items: pulumi config set --path '${p.key}[<index>]' ${spec.placeholder}`;
    }
    const set = `pulumi config set ${p.key} ${value}`;
    // `rm` for the default, unless the value is the default already.
    const notDefault = p.value !== undefined && p.value !== String(spec.default);
    if (p.suggestion === undefined && spec.default !== undefined && notDefault) {
        return `${set}, or pulumi config rm ${p.key} for the default (${describeDefault(spec.default)})`;
    }
    return set;
}

/** `text` with the value, and each part of it of 3 characters or more, replaced by `***`. */
function hidden(text: string, value: string): string {
    const parts = [value, ...value.split(/[\s/:@"'=,[\]{}]+/)].filter((t) => t.length >= 3);
    parts.sort((a, b) => b.length - a.length);
    return parts.reduce((t, part) => t.split(part).join("***"), text);
}

export function formatProblems(
    problems: readonly ConfigProblem[],
    ctx: StackName,
    secretValues: ReadonlySet<string>,
): string {
    const stack = shellWord(ctx.stack);
    const lines = problems.map((problem) => {
        // A value set with --secret is never shown, nor a fix derived from it; credentials typed
        // into a URL are masked in the value and in the fix (only there: `name@sha256:...` is an
        // image reference, not a user).
        const secret = secretValues.has(problem.key) && problem.value !== undefined;
        const url = URL_KEYS.has(problem.key);
        const masked = (text: string | undefined) =>
            text === undefined || !(url || /^[a-z][a-z0-9+.-]*:\/\//i.test(text))
                ? text
                : withoutCredentials(text);
        const p: ConfigProblem = secret
            ? { ...problem, value: undefined, suggestion: undefined, shown: "is set (a secret)" }
            : { ...problem, value: masked(problem.value), suggestion: masked(problem.suggestion) };
        const shown =
            p.shown ??
            (p.value === undefined
                ? "is not set"
                : `= ${JSON.stringify(p.value.length > 80 ? `${p.value.slice(0, 77)}...` : p.value)}`);
        const where = p.index !== undefined ? ` (item ${p.index})` : "";
        const reason = /[.?!]$/.test(p.reason) ? p.reason : `${p.reason}.`;
        let told = `${reason}\n    Fix: ${fixFor(p)}`;
        // A reason or fix may quote part of the value (a path, an item): not a secret's.
        if (secret) told = hidden(told, problem.value ?? "");
        // Each command names the stack: after `npm run release -- --to prod`, or `pulumi up
        // --stack prod`, the selected stack is another one.
        told = told.replace(/\bpulumi config (?:set|rm|get)\b/g, `$& --stack ${stack}`);
        return `  - ${ctx.project}:${p.key}${where} ${shown}: ${told}`;
    });
    return (
        `Invalid configuration for stack "${ctx.stack}" (${plural(problems.length, "problem")}); nothing was created or pushed.\n` +
        lines.join("\n")
    );
}
