/**
 * The one message a refused config becomes: each problem with its key, the value (credentials
 * and secrets masked) and the command that fixes it.
 */
import {
    Problem,
    credentialsIn,
    credentialsInText,
    credentialsInWords,
    plural,
    shellWord,
    withStack,
} from "../lib/validation";
import { CONFIG_KEYS, ConfigKey, KeySpec, SECRET_KEYS, StackName } from "./keys";

/** Free texts, where only credentials that look real count (`?key=models` is no token). */
const GALLERY_TEXTS = new Set(["description", "aboutText", "usageText"]);

export interface ConfigProblem extends Problem {
    /** The key as written in the stack's config (an unknown key is reported as it is spelt). */
    readonly key: string;
    /** The value as the user wrote it; undefined when the key is not set. */
    readonly value: string | undefined;
    /** Replaces `= "<value>"` / `is not set` after the key (an unknown key's value is not read). */
    readonly shown?: string;
    /** The whole fix, when it is not one `pulumi config set` of the key (several commands, `rm`). */
    readonly fix?: string;
    /** Reason and fix say only that the key is set (where it is not read): nothing of its value. */
    readonly presence?: true;
    /** Other keys whose values the reason or fix quotes (dockerfile's, modelContext's). */
    readonly mentions?: readonly ConfigKey[];
    /** Reason, fix and suggestion were written without the credentials in the value. */
    readonly redacted?: true;
}

/**
 * A value as the last argument of `pulumi config set`: after `--` when it starts with `-`, which
 * the CLI would read as a flag (pulumi/pulumi#892; the usage line says so since #20437).
 */
export function configValue(value: string): string {
    return value.startsWith("-") ? `-- ${shellWord(value)}` : shellWord(value);
}

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
function fixFor(p: ConfigProblem, secret: boolean): string {
    if (p.fix !== undefined) return p.fix;
    const spec: KeySpec = CONFIG_KEYS[p.key as ConfigKey];
    // A secret is typed at the CLI's prompt, never on the command line (shell history, ps).
    if (secret || SECRET_KEYS.has(p.key as ConfigKey)) {
        const item = spec.kind === "array" ? `--path '${p.key}[${p.index ?? "<index>"}]'` : p.key;
        return `pulumi config set --secret ${item}  # it prompts for the value`;
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

function listItems(text: string): string[] {
    try {
        const parsed: unknown = JSON.parse(text);
        return Array.isArray(parsed) ? parsed.map(String) : [];
    } catch {
        return [];
    }
}

/**
 * The credentials typed into a key's value, or into an item of a list, longest first: a
 * credential inside another (`bob` in `bob:pw`) must not break the other's mask.
 */
function credentialsOf(key: string, value: string | undefined): string[] {
    if (value === undefined) return [];
    // A free text's start is no URL's: only its words are searched.
    const found = GALLERY_TEXTS.has(key)
        ? [...credentialsInText(value), ...credentialsInWords(value)]
        : [value, ...listItems(value)].flatMap(credentialsIn);
    return [...new Set(found)].sort((a, b) => b.length - a.length);
}

/**
 * The message for a refused config. `values`: every key's text; `secrets`: the keys set with
 * --secret.
 */
export function formatProblems(
    problems: readonly ConfigProblem[],
    ctx: StackName,
    values: ReadonlyMap<string, string>,
    secrets: ReadonlySet<string>,
): string {
    const stack = ctx.stack;
    const lines = problems.map((problem) => {
        // A value set with --secret, or with credentials typed into it, is never shown in a
        // reason or fix, nor is a reason that quotes another such value (`mentions`). The checks
        // say which of theirs are safe: those about the key being set at all (`presence`, whose
        // fix is an rm), and those written without the credentials (`redacted`).
        const secret = secrets.has(problem.key) && problem.value !== undefined;
        // A gallery text with credentials may hold others no search finds: it is not shown.
        const hidden =
            GALLERY_TEXTS.has(problem.key) && credentialsInText(problem.value ?? "").length > 0;
        const tainted = (key: string) =>
            secrets.has(key) || credentialsOf(key, values.get(key)).length > 0;
        const typed = credentialsOf(problem.key, problem.value);
        // `redacted` is checked, not trusted: a text that still holds a credential is not told.
        const leaks = [problem.reason, problem.fix ?? "", problem.suggestion ?? ""].some((t) =>
            typed.some((c) => t.includes(c)),
        );
        const own = secret || (typed.length > 0 && (!problem.redacted || leaks));
        const toldReason = !problem.mentions?.some(tainted) && (problem.presence === true || !own);
        const p: ConfigProblem = {
            ...problem,
            // Shown with its credentials as `***`.
            value:
                secret || hidden
                    ? undefined
                    : typed.reduce((v, c) => v?.split(c).join("***"), problem.value),
            shown: secret ? "is set (a secret)" : hidden ? "is set (not shown)" : problem.shown,
            index: secret ? undefined : problem.index,
            ...(toldReason
                ? {}
                : {
                      reason: "it is not valid; the reason is not shown, as it would show a secret or credentials",
                      suggestion: undefined,
                      fix: problem.presence ? problem.fix : undefined,
                  }),
        };
        const shown =
            p.shown ??
            (p.value === undefined
                ? "is not set"
                : `= ${JSON.stringify(p.value.length > 80 ? `${p.value.slice(0, 77)}...` : p.value)}`);
        const where = p.index !== undefined ? ` (item ${p.index})` : "";
        const reason = /[.?!]$/.test(p.reason) ? p.reason : `${p.reason}.`;
        // A secret's fix sets it again as a secret.
        const fix = secret
            ? fixFor(p, secret).replace(/pulumi config set (?!--secret)/g, "$&--secret ")
            : fixFor(p, secret);
        // Each command names the stack: after `npm run release -- --to prod`, or `pulumi up
        // --stack prod`, the selected stack is another one.
        return (
            `  - ${ctx.project}:${p.key}${where} ${shown}: ${withStack(reason, stack, '"')}\n` +
            `    Fix: ${withStack(fix, stack, "'")}`
        );
    });
    return (
        `Invalid configuration for stack "${ctx.stack}" (${plural(problems.length, "problem")}); nothing was created or pushed.\n` +
        lines.join("\n")
    );
}
