/**
 * The one message a refused config becomes: each problem with its key, the value (credentials
 * and secrets masked) and the command that fixes it.
 */
import { Problem, plural, shellWord } from "../lib/validation";
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
    if (SECRET_KEYS.has(p.key as ConfigKey)) {
        return `pulumi config set --secret ${p.key} (it prompts for the value)`;
    }
    const value = p.suggestion !== undefined ? configValue(p.suggestion) : spec.placeholder;
    // A value the user set with --secret is set again as one.
    const flag = secret ? "--secret " : "";
    if (spec.kind === "array") {
        if (p.index !== undefined || p.suggestion !== undefined) {
            return `pulumi config set ${flag}--path '${p.key}[${p.index ?? 0}]' ${value}`;
        }
        return `pulumi config rm ${p.key} (the default: ${describeDefault(spec.default ?? [])}), or set its items: pulumi config set --path '${p.key}[<index>]' ${spec.placeholder}`;
    }
    const set = `pulumi config set ${flag}${p.key} ${value}`;
    // `rm` for the default, unless the value is the default already.
    const notDefault = p.value !== undefined && p.value !== String(spec.default);
    if (p.suggestion === undefined && spec.default !== undefined && notDefault) {
        return `${set}, or pulumi config rm ${p.key} for the default (${describeDefault(spec.default)})`;
    }
    return set;
}

/** The user and password typed before a value's last `@` (not a digest's): `bob:tok3n`. */
function userinfoOf(text: string | undefined): string | undefined {
    const digestless = text?.replace(/@[a-z0-9]+:[0-9a-f]{32,}$/i, "") ?? "";
    return /^(?:[a-z][a-z0-9+.-]*:\/\/)?(.+)@/is.exec(digestless)?.[1];
}

/** Whether `text` quotes the value, or a part of it of 3 characters or more, as is or escaped. */
function quotes(text: string, value: string): boolean {
    const parts = [value, ...value.split(/[\s/:@"'=,[\]{}\\]+/)].filter((t) => t.length >= 3);
    return parts.some((t) => text.includes(t) || text.includes(JSON.stringify(t).slice(1, -1)));
}

export function formatProblems(
    problems: readonly ConfigProblem[],
    ctx: StackName,
    secretValues: ReadonlySet<string>,
): string {
    const stack = shellWord(ctx.stack);
    const lines = problems.map((problem) => {
        // A value set with --secret is never shown, nor a fix derived from it, nor a reason that
        // quotes it; credentials typed into a value (`https://user:pw@host`) are masked.
        const value = problem.value ?? "";
        const secret = secretValues.has(problem.key) && problem.value !== undefined;
        const userinfo = userinfoOf(problem.value) ?? userinfoOf(problem.suggestion);
        const masked = (text: string | undefined) =>
            text && userinfo ? text.replace(`${userinfo}@`, "***@") : text;
        const p: ConfigProblem = secret
            ? {
                  ...problem,
                  value: undefined,
                  suggestion: undefined,
                  shown: "is set (a secret)",
                  reason: quotes(problem.reason, value)
                      ? `it is not valid, and the reason would quote the secret: see it with pulumi config get ${problem.key}`
                      : problem.reason,
                  fix: problem.fix && quotes(problem.fix, value) ? undefined : problem.fix,
              }
            : {
                  ...problem,
                  value: masked(problem.value),
                  // A fix that would carry them is no fix.
                  suggestion:
                      userinfo && problem.suggestion?.includes(`${userinfo}@`)
                          ? undefined
                          : problem.suggestion,
              };
        const shown =
            p.shown ??
            (p.value === undefined
                ? "is not set"
                : `= ${JSON.stringify(p.value.length > 80 ? `${p.value.slice(0, 77)}...` : p.value)}`);
        const where = p.index !== undefined ? ` (item ${p.index})` : "";
        const reason = /[.?!]$/.test(p.reason) ? p.reason : `${p.reason}.`;
        // Each command names the stack: after `npm run release -- --to prod`, or `pulumi up
        // --stack prod`, the selected stack is another one.
        const told = `${reason}\n    Fix: ${fixFor(p, secret)}`.replace(
            /(?<![\w-])pulumi config (?:set|rm|get)(?= )/g,
            `$& --stack ${stack}`,
        );
        return `  - ${ctx.project}:${p.key}${where} ${shown}: ${told}`;
    });
    return (
        `Invalid configuration for stack "${ctx.stack}" (${plural(problems.length, "problem")}); nothing was created or pushed.\n` +
        lines.join("\n")
    );
}
