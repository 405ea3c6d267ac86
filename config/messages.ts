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
    if (secret || SECRET_KEYS.has(p.key as ConfigKey)) {
        const item = spec.kind === "array" ? `--path '${p.key}[${p.index ?? "<index>"}]'` : p.key;
        return `pulumi config set --secret ${item} (it prompts for the value)`;
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

/**
 * A value without the user and password typed before its last `@` (a URL's, `bob:pw@host/x`),
 * unless that `@` starts a digest (`python@sha256:...`).
 */
function withoutUserinfo(text: string | undefined): string | undefined {
    if (text === undefined) return text;
    const digest = /@[a-z0-9]+:[0-9a-f]{32,}$/i.exec(text)?.[0] ?? "";
    const rest = text.slice(0, text.length - digest.length);
    return rest.replace(/^([a-z][a-z0-9+.-]*:\/\/)?.*@/is, "$1***@") + digest;
}

/**
 * Credentials typed into a value, wherever the line quotes it: a URL's user and password
 * (`https://bob:tok3n@` -> `https://***@`), a `user:password@` (an `@` after a name alone, as in
 * `python@sha256:` or `git@github.com`, is none), and a token in a query (`?private_token=`).
 */
function withoutCredentials(text: string): string {
    return text
        .replace(/([a-z][a-z0-9+.-]*:\/\/)[^\s/@'"]+@/gi, "$1***@")
        .replace(/(^|[^\w.+-])[\w.%+-]+:[^\s/@'"]+@(?![a-z0-9]+:[0-9a-f]{32})/gi, "$1***@")
        .replace(/([?&](?:private_token|access_token|token|password|key)=)[^&#\s'"]+/gi, "$1***");
}

/**
 * Whether `text` quotes a secret: a value, an item of a list, or a part of either of 3 characters
 * or more (a path, a name), as is or escaped.
 */
function quotesSecret(text: string, secrets: readonly string[]): boolean {
    const items = secrets.flatMap((s) => [s, ...listItems(s)]);
    const parts = items.flatMap((t) => [t, ...t.split(/[\s/:@"'=,[\]{}\\]+/)]);
    const quoted = parts.filter((t) => t.length >= 3 || items.includes(t)).filter((t) => t !== "");
    return quoted.some((t) => text.includes(t) || text.includes(JSON.stringify(t).slice(1, -1)));
}

function listItems(text: string): string[] {
    try {
        const parsed: unknown = JSON.parse(text);
        return Array.isArray(parsed) ? parsed.map(String) : [String(parsed)];
    } catch {
        return [];
    }
}

/** Each `pulumi config set|rm|get` that starts a command (not one inside a value) names `stack`. */
function withStack(text: string, stack: string): string {
    return text.replace(
        /(?<=^|: |&& |, |or |then |\$\()pulumi config (?:set|rm|get)(?= )/gm,
        `$& --stack ${stack}`,
    );
}

export function formatProblems(
    problems: readonly ConfigProblem[],
    ctx: StackName,
    secretValues: ReadonlyMap<string, string>,
): string {
    const stack = shellWord(ctx.stack);
    const secrets = [...secretValues.values()];
    const lines = problems.map((problem) => {
        // A value set with --secret is never shown, nor a fix derived from it, nor a reason or
        // fix that quotes it. Of a secret's own problems, only those whose check wrote its fix
        // (it is set where it is not read, in plain text) can be told: the others are about
        // what it holds. A value typed with credentials is shown without them.
        const secret = secretValues.has(problem.key) && problem.value !== undefined;
        const tellable = !secret || problem.fix !== undefined;
        const told = (text: string) => tellable && !quotesSecret(text, secrets);
        const p: ConfigProblem = {
            ...problem,
            value: secret ? undefined : withoutUserinfo(problem.value),
            suggestion: secret ? undefined : withoutUserinfo(problem.suggestion),
            shown: secret ? "is set (a secret)" : problem.shown,
            reason: told(problem.reason)
                ? problem.reason
                : `it is not valid, and the reason would quote a secret; see the value: pulumi config get ${problem.key}`,
            fix: problem.fix !== undefined && told(problem.fix) ? problem.fix : undefined,
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
        // A secret's fix sets it again as a secret.
        const fix = secret
            ? fixFor(p, secret).replace(/pulumi config set (?!--secret)/g, "$&--secret ")
            : fixFor(p, secret);
        const line = `${ctx.project}:${p.key}${where} ${shown}: ${reason}\nFix: ${fix}`;
        return withStack(withoutCredentials(line), stack).replace(/^(.*?)\n/s, "  - $1\n    ");
    });
    return (
        `Invalid configuration for stack "${ctx.stack}" (${plural(problems.length, "problem")}); nothing was created or pushed.\n` +
        lines.join("\n")
    );
}
