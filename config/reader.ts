/**
 * The raw config text as typed values: set or left at its default, a string, boolean or list,
 * each value that does not read as its type collected as a problem; and the keys of the project
 * that the program does not read, with the key probably meant.
 */
import * as pulumi from "@pulumi/pulumi";
import { Problem, editDistance, shellWord } from "../lib/validation";
import { CONFIG_KEYS, ConfigKey, KeySpec, RawConfig, SECRET_KEYS } from "./keys";
import { ConfigProblem, configValue } from "./messages";

export class ConfigReader {
    /** Every problem found, in the order the message lists them. */
    readonly problems: ConfigProblem[] = [];

    constructor(
        readonly raw: RawConfig,
        readonly registryPassword: pulumi.Output<string> | undefined,
    ) {}

    /** Records what is wrong with a key's value; nothing when `p` is undefined (the value is fine). */
    fail(
        key: ConfigKey,
        value: string | undefined,
        p:
            | (Problem & Pick<ConfigProblem, "fix" | "presence" | "mentions" | "redacted">)
            | undefined,
        index?: number,
    ) {
        if (p) this.problems.push({ ...p, key, value, index: index ?? p.index });
    }

    /** The CLI writes every declared default into the config, so a default is as good as unset. */
    isSet(key: ConfigKey): boolean {
        return key === "registryPassword"
            ? this.registryPassword !== undefined
            : this.raw[key] !== undefined && !isDefault(key, this.raw[key]);
    }

    str(key: ConfigKey): string {
        const spec = CONFIG_KEYS[key];
        return this.raw[key] ?? (typeof spec.default === "string" ? spec.default : "");
    }

    bool(key: ConfigKey): boolean {
        const text = this.raw[key];
        if (text === undefined) return (CONFIG_KEYS[key] as KeySpec).default === true;
        if (text === "true" || text === "false") return text === "true";
        this.fail(key, text, { reason: "expected true or false", suggestion: booleanMeant(text) });
        return false;
    }

    list(key: ConfigKey): string[] {
        const text = this.raw[key];
        const fallback = CONFIG_KEYS[key].default;
        if (text === undefined) return Array.isArray(fallback) ? [...fallback] : [];
        let parsed: unknown;
        try {
            parsed = JSON.parse(text);
        } catch {
            parsed = undefined;
        }
        if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === "string")) {
            // A plain value where a list belongs: the list of that one value was meant.
            const item = typeof parsed === "string" ? parsed : parsed === undefined ? text : "";
            this.fail(key, text, {
                reason: "expected a list of strings (set items with --path, as below)",
                fix:
                    `pulumi config rm ${key} && pulumi config set --path '${key}[0]' ` +
                    (item.trim() !== "" ? configValue(item) : CONFIG_KEYS[key].placeholder),
            });
            return [];
        }
        return parsed as string[];
    }
}

/** `yes`, `On`, `1` -> `true`; `no`, `off`, `0` -> `false`; anything else: undefined. */
function booleanMeant(text: string): string | undefined {
    const word = text.trim().toLowerCase();
    if (["true", "yes", "y", "on", "1"].includes(word)) return "true";
    if (["false", "no", "n", "off", "0"].includes(word)) return "false";
    return undefined;
}

/** Whether a key's text is its declared default, as the CLI writes it (lists as JSON). */
function isDefault(key: ConfigKey, text: string): boolean {
    const declared: KeySpec["default"] = CONFIG_KEYS[key].default;
    if (declared === undefined) return false;
    if (!Array.isArray(declared)) return text === String(declared);
    try {
        return JSON.stringify(JSON.parse(text)) === JSON.stringify(declared);
    } catch {
        return false;
    }
}

/** The known key closest to `key`: the same but for case, else within a small edit distance. */
function closestKey(key: string): ConfigKey | undefined {
    let best: { key: ConfigKey; distance: number } | undefined;
    for (const k of Object.keys(CONFIG_KEYS) as ConfigKey[]) {
        const distance = editDistance(key.toLowerCase(), k.toLowerCase());
        if (!best || distance < best.distance) best = { key: k, distance };
    }
    // At most 2 edits, and fewer than a third of the key: "kmsKeyId" is not "modelVersion".
    return best && best.distance <= 2 && best.distance * 3 < key.length ? best.key : undefined;
}

/**
 * Keys of the project's namespace that the program does not read, each with the key probably
 * meant and the commands that move its value there. Keys of other namespaces (`aws:region`) are
 * not the program's. `meant` holds the known keys a misspelling stands for.
 */
export function unknownKeyProblems(
    setKeys: readonly string[],
    project: string,
    isSet: (key: ConfigKey) => boolean,
    isSecret: (fullKey: string) => boolean,
): { problems: ConfigProblem[]; meant: Set<ConfigKey> } {
    const problems: ConfigProblem[] = [];
    const meant = new Set<ConfigKey>();
    const prefix = `${project}:`;
    for (const full of [...setKeys].sort()) {
        if (!full.startsWith(prefix)) continue;
        const key = full.slice(prefix.length);
        if (Object.hasOwn(CONFIG_KEYS, key)) continue;
        const closest = closestKey(key);
        const shown = "is set";
        if (closest === undefined) {
            problems.push({
                key,
                value: undefined,
                shown,
                reason: "this program reads no such key (keys are case-sensitive; Pulumi.yaml lists the keys it reads), so the value is ignored",
                fix: `pulumi config rm ${shellWord(key)}`,
            });
            continue;
        }
        const alreadySet = isSet(closest);
        if (!alreadySet) meant.add(closest);
        const spec: KeySpec = CONFIG_KEYS[closest];
        let fix: string;
        // Moves the value without showing it here, a secret as a secret.
        const secret = SECRET_KEYS.has(closest) || isSecret(full) ? "--secret " : "";
        if (spec.kind === "array") {
            // Read the items first: once the misspelt key is removed they are gone.
            fix = `pulumi config get ${shellWord(key)} (the items), then pulumi config set ${secret}--path '${closest}[<n>]' ${spec.placeholder} for item n = 0, 1, ..., then pulumi config rm ${shellWord(key)}`;
        } else {
            fix = `pulumi config set ${secret}${closest} -- "$(pulumi config get ${shellWord(key)})" && pulumi config rm ${shellWord(key)}`;
        }
        problems.push({
            key,
            value: undefined,
            shown,
            // Both set: the misspelt one may well be the newer value (a bump typed wrong), so
            // the fix moves it, and dropping it is the alternative, not the default.
            reason: alreadySet
                ? `this program reads no such key (keys are case-sensitive), so the value is ignored; did you mean ${closest}? ${closest} is set too: if this value is the one you want, move it there (below); to keep ${closest} as it is, remove this one instead (pulumi config rm ${shellWord(key)})`
                : `this program reads no such key (keys are case-sensitive), so the value is ignored and ${closest} is not set; did you mean ${closest}?`,
            fix,
        });
    }
    return { problems, meant };
}
