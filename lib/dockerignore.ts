/**
 * `.dockerignore` matching, as the Docker CLI applies it to a build context: patterns are
 * relative to the context root, `*` and `?` stay within one path segment, `**` spans any number of
 * segments, `!` re-includes, the last matching pattern wins, and a pattern that matches a directory
 * excludes everything below it.
 */

interface Rule {
    readonly regex: RegExp;
    readonly exclusion: boolean;
}

export interface IgnoreMatcher {
    /** True when `relPath` (slash-separated, relative to the context) is left out of the context. */
    ignores(relPath: string): boolean;
    /** True when some `!` rule could re-include a path below an ignored directory. */
    readonly hasExclusions: boolean;
}

/** Parses `.dockerignore` text. */
export function parseDockerignore(text: string): IgnoreMatcher {
    const rules: Rule[] = [];
    for (const rawLine of text.split(/\r?\n/)) {
        let line = rawLine.trim();
        if (line === "" || line.startsWith("#")) continue;
        const exclusion = line.startsWith("!");
        if (exclusion) line = line.slice(1).trim();
        const pattern = cleanPattern(line);
        if (pattern === "") continue;
        rules.push({ regex: patternToRegExp(pattern), exclusion });
    }
    const hasExclusions = rules.some((r) => r.exclusion);
    return {
        hasExclusions,
        ignores(relPath: string): boolean {
            // A path is matched by a rule if the rule matches it or any of its parent directories.
            const parts = relPath.split("/");
            const candidates = parts.map((_, i) => parts.slice(0, i + 1).join("/"));
            let ignored = false;
            for (const rule of rules) {
                if (candidates.some((c) => rule.regex.test(c))) ignored = !rule.exclusion;
            }
            return ignored;
        },
    };
}

/** Like Go's `filepath.Clean` for a pattern: no leading `/` or `./`, no `//`, no trailing `/`. */
function cleanPattern(pattern: string): string {
    const out: string[] = [];
    for (const part of pattern.split("/")) {
        if (part === "" || part === ".") continue;
        if (part === ".." && out.length > 0 && out[out.length - 1] !== "..") out.pop();
        else out.push(part);
    }
    return out.join("/");
}

function patternToRegExp(pattern: string): RegExp {
    let re = "";
    for (let i = 0; i < pattern.length; i++) {
        const c = pattern[i];
        if (c === "*") {
            if (pattern[i + 1] === "*") {
                i++;
                if (pattern[i + 1] === "/") {
                    i++;
                    re += "(?:.*/)?"; // `**/` matches zero or more directories
                } else {
                    re += ".*";
                }
            } else {
                re += "[^/]*";
            }
        } else if (c === "?") {
            re += "[^/]";
        } else if (c === "[") {
            const end = pattern.indexOf("]", i + 1);
            if (end === -1) {
                re += "\\[";
            } else {
                let cls = pattern.slice(i + 1, end).replace(/\\/g, "\\\\");
                if (cls.startsWith("!") || cls.startsWith("^")) cls = `^${cls.slice(1)}`;
                re += `[${cls}]`;
                i = end;
            }
        } else if (c === "\\" && i + 1 < pattern.length) {
            i++;
            re += escapeRegExp(pattern[i]);
        } else {
            re += escapeRegExp(c);
        }
    }
    return new RegExp(`^${re}$`);
}

function escapeRegExp(c: string): string {
    return c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&");
}
