/**
 * `.dockerignore` handling exactly as docker.Image's provider applies it when it hashes a build
 * context: a port, for Linux paths, of
 *
 * - `github.com/moby/patternmatcher/ignorefile` `ReadAll` (how the file is read into patterns),
 * - `github.com/moby/patternmatcher` v0.6.0 `New`, `Pattern.compile`, `Pattern.match` and
 *   `MatchesUsingParentResults` (how a pattern matches a path), and
 * - `github.com/tonistiigi/fsutil` `filterFS.Walk` (which directories the walk skips whole).
 *
 * A port and not a look-alike because the two must agree on every path: a file the provider hashes
 * but we leave out is a change the guard cannot see while docker.Image rebuilds and pushes.
 * Surprises kept on purpose, since Docker's matcher has them too: `[!a]` is the class of `!` and
 * `a` (negation is `[^a]`); `**foo` matches any path ending in `foo`; a pattern's `[`, `]`, `^`
 * and `\x` escapes reach Go's regular-expression engine unchanged.
 */
import * as path from "path";

/** A line of `.dockerignore` that Docker rejects; the build and docker.Image's Check fail on it. */
export class DockerignoreError extends Error {}

/** Per-pattern results for a directory, handed down to the paths inside it. */
export type MatchInfo = readonly boolean[];

type MatchType = "exact" | "prefix" | "suffix" | "regexp";

/** One pattern of a `.dockerignore`, after `ReadAll` and `New` have cleaned it. */
export class Pattern {
    private compiled?: { type: MatchType; regexp?: RegExp };

    /**
     * `text`: the cleaned pattern, without its leading `!`. `exclusion`: true for a `!` pattern,
     * which re-includes what earlier patterns excluded.
     */
    constructor(
        readonly text: string,
        readonly exclusion: boolean,
    ) {}

    /** `Pattern.match`: compiled on first use, as in Go, so a bad regexp fails only when reached. */
    matches(file: string): boolean {
        this.compiled ??= compile(this.text);
        const { type, regexp } = this.compiled;
        switch (type) {
            case "exact":
                return file === this.text;
            case "prefix":
                return file.startsWith(this.text.slice(0, -2)); // strip the trailing `**`
            case "suffix": {
                const suffix = this.text.slice(2); // strip the leading `**`
                return file.endsWith(suffix) || (suffix[0] === "/" && file === suffix.slice(1));
            }
            case "regexp":
                return regexp!.test(file);
        }
    }

    /** fsutil's `patternWithoutTrailingGlob`. */
    withoutTrailingGlob(): string {
        let s = this.text;
        if (s.endsWith("/**")) s = s.slice(0, -3);
        if (s.endsWith("/*")) s = s.slice(0, -2);
        return s;
    }
}

/** What the walk does with one path of the context. */
export interface Verdict {
    /** Left out of the context (and out of the hash). */
    readonly excluded: boolean;
    /** For an excluded directory: nothing below it can be re-included, so it is not walked. */
    readonly skipDir: boolean;
    /** Hand this to the paths inside a directory. */
    readonly info: MatchInfo;
}

/** The patterns of one `.dockerignore` and fsutil's walk decisions over them. */
export class IgnoreMatcher {
    readonly patterns: readonly Pattern[];
    /** fsutil's `onlyPrefixExcludeExceptions`: no `!` pattern holds a wildcard. */
    private readonly onlyPrefixExceptions: boolean;

    /** `patternmatcher.New` over the patterns `readIgnoreFile` returned. */
    constructor(patterns: readonly string[]) {
        const parsed: Pattern[] = [];
        for (const raw of patterns) {
            let p = goTrimSpace(raw);
            if (p === "") continue;
            p = cleanPath(p);
            let exclusion = false;
            if (p[0] === "!") {
                if (p.length === 1) {
                    throw new DockerignoreError('illegal exclusion pattern: "!"');
                }
                exclusion = true;
                p = p.slice(1);
            }
            checkGlobSyntax(p);
            parsed.push(new Pattern(p, exclusion));
        }
        this.patterns = parsed;
        this.onlyPrefixExceptions = !parsed.some(
            (p) => p.exclusion && /[*[\]?^\\]/.test(p.withoutTrailingGlob()),
        );
    }

    /**
     * `MatchesUsingParentResults` plus fsutil's directory skip. `relPath` is slash-separated and
     * relative to the context; `parent` is the `info` of its directory (absent at the top).
     */
    check(relPath: string, isDir: boolean, parent?: MatchInfo): Verdict {
        const info: boolean[] = new Array<boolean>(this.patterns.length).fill(false);
        let matched = false;
        this.patterns.forEach((pattern, i) => {
            let match = parent !== undefined && parent.length > 0 ? parent[i] : false;
            if (!match) {
                // A plain pattern cannot change a path already excluded, nor a `!` pattern one
                // that is not.
                if (pattern.exclusion !== matched) return;
                match = pattern.matches(relPath);
                if (!match && (parent === undefined || parent.length === 0)) {
                    const dirs = relPath.split("/").slice(0, -1);
                    for (let n = 1; n <= dirs.length && !match; n++) {
                        match = pattern.matches(dirs.slice(0, n).join("/"));
                    }
                }
            }
            info[i] = match;
            if (match) matched = !pattern.exclusion;
        });

        let skipDir = false;
        if (matched && isDir && this.onlyPrefixExceptions) {
            const dirSlash = `${relPath}/`;
            skipDir = !this.patterns.some(
                (p) => p.exclusion && `${p.withoutTrailingGlob()}/`.startsWith(dirSlash),
            );
        }
        return { excluded: matched, skipDir, info };
    }

    /** True when the walk leaves out a file at `relPath` (slash-separated, context-relative). */
    ignores(relPath: string): boolean {
        const parts = relPath.split("/");
        let info: MatchInfo | undefined;
        for (let n = 1; n <= parts.length; n++) {
            const verdict = this.check(parts.slice(0, n).join("/"), n < parts.length, info);
            if (n === parts.length || verdict.skipDir) return verdict.excluded;
            info = verdict.info;
        }
        return false;
    }
}

/**
 * `ignorefile.ReadAll`: one pattern a line (LF or CRLF), a UTF-8 byte order mark dropped, lines
 * starting with `#` skipped before any trimming (so ` #x` is a pattern), surrounding white space
 * trimmed, each pattern cleaned like `filepath.Clean` with a leading `/` dropped, `!` kept in front.
 */
export function readIgnoreFile(text: string): string[] {
    const lines = text.split("\n");
    if (lines[lines.length - 1] === "") lines.pop();
    const out: string[] = [];
    lines.forEach((rawLine, n) => {
        let line = rawLine.endsWith("\r") ? rawLine.slice(0, -1) : rawLine;
        if (n === 0 && line.startsWith("\ufeff")) line = line.slice(1);
        if (line.startsWith("#")) return;
        let pattern = goTrimSpace(line);
        if (pattern === "") return;
        const invert = pattern[0] === "!";
        if (invert) pattern = goTrimSpace(pattern.slice(1));
        if (pattern.length > 0) {
            pattern = cleanPath(pattern);
            if (pattern.length > 1 && pattern[0] === "/") pattern = pattern.slice(1);
        }
        out.push(invert ? `!${pattern}` : pattern);
    });
    return out;
}

/** Parses `.dockerignore` text into a matcher. Throws `DockerignoreError` where Docker fails. */
export function parseDockerignore(text: string): IgnoreMatcher {
    return new IgnoreMatcher(readIgnoreFile(text));
}

/** Go's `filepath.Clean` on Linux: `path.posix.normalize` without its trailing slash. */
export function cleanPath(p: string): string {
    const clean = path.posix.normalize(p);
    return clean.length > 1 && clean.endsWith("/") ? clean.slice(0, -1) : clean;
}

/** Go's `unicode.IsSpace`: not U+FEFF, which `String.trim` would also remove. */
const GO_SPACE_CLASS =
    "[\\t\\n\\v\\f\\r \\u0085\\u00a0\\u1680\\u2000-\\u200a\\u2028\\u2029\\u202f\\u205f\\u3000]";
const GO_WHITE_SPACE = new RegExp(`^${GO_SPACE_CLASS}+|${GO_SPACE_CLASS}+$`, "gu");

/** Go's `strings.TrimSpace`. */
function goTrimSpace(s: string): string {
    return s.replace(GO_WHITE_SPACE, "");
}

/**
 * The syntax check `New` makes with `filepath.Match(pattern, ".")`: every `[...]` closed and not
 * empty, no range end missing, no `\` at the very end.
 */
function checkGlobSyntax(pattern: string): void {
    const bad = (): never => {
        throw new DockerignoreError(`syntax error in pattern ${JSON.stringify(pattern)}`);
    };
    const chars = Array.from(pattern);
    let i = 0;
    // One class member (`getEsc`): not `-` or `]`, `\` escapes, and something must follow.
    const classChar = (): void => {
        if (i >= chars.length || chars[i] === "-" || chars[i] === "]") bad();
        if (chars[i] === "\\") {
            i++;
            if (i >= chars.length) bad();
        }
        i++;
        if (i >= chars.length) bad();
    };
    while (i < chars.length) {
        const c = chars[i];
        if (c === "[") {
            i++;
            if (chars[i] === "^") i++;
            for (let ranges = 0; ; ranges++) {
                if (chars[i] === "]" && ranges > 0) {
                    i++;
                    break;
                }
                classChar();
                if (chars[i] === "-") {
                    i++;
                    classChar();
                }
            }
        } else if (c === "\\") {
            i += 2;
            if (i > chars.length) bad();
        } else {
            i++;
        }
    }
}

/** `Pattern.compile`: the match type, and for `regexp` the Go regular expression, made JS. */
function compile(text: string): { type: MatchType; regexp?: RegExp } {
    const chars = Array.from(text);
    let pos = 0;
    let re = "^";
    let type: MatchType = "exact";
    for (let i = 0; pos < chars.length; i++) {
        const ch = chars[pos++];
        if (ch === "*") {
            if (chars[pos] === "*") {
                pos++;
                if (chars[pos] === "/") pos++; // treat `**/` as `**`
                if (pos >= chars.length) {
                    if (type === "exact") type = "prefix";
                    else {
                        re += ".*";
                        type = "regexp";
                    }
                } else {
                    re += "(.*/)?";
                    type = "regexp";
                }
                if (i === 0) type = "suffix";
            } else {
                re += "[^/]*";
                type = "regexp";
            }
        } else if (ch === "?") {
            re += "[^/]";
            type = "regexp";
        } else if (".+()|{}$".includes(ch)) {
            re += `\\${ch}`;
        } else if (ch === "\\") {
            if (pos < chars.length) {
                re += `\\${chars[pos++]}`;
                type = "regexp";
            } else {
                re += "\\";
            }
        } else if (ch === "[" || ch === "]") {
            re += ch;
            type = "regexp";
        } else {
            re += ch;
        }
    }
    if (type !== "regexp") return { type };
    return { type, regexp: goRegexpToJs(`${re}$`, text) };
}

const GO_SPACE = "\\t\\n\\f\\r ";

/** Go's ASCII classes `[:name:]`, as JS class ranges. */
const POSIX_CLASSES: Record<string, string> = {
    alnum: "0-9A-Za-z",
    alpha: "A-Za-z",
    ascii: "\\x00-\\x7f",
    blank: "\\t ",
    cntrl: "\\x00-\\x1f\\x7f",
    digit: "0-9",
    graph: "!-~",
    lower: "a-z",
    print: " -~",
    punct: "!-\\/:-@\\[-`\\{-~",
    space: "\\t\\n\\v\\f\\r ",
    upper: "A-Z",
    word: "0-9A-Za-z_",
    xdigit: "0-9A-Fa-f",
};
const JS_SYNTAX = "^$\\.*+?()[]{}|/";

/**
 * Translates the regular expressions `compile` builds from Go's syntax to a JS `u` RegExp with
 * the same meaning: `.` is any character but newline, `[...]` follows Go's class rules (a leading
 * `]` is literal, `-` at either end is literal), `\` before punctuation is that character, and
 * the Perl classes `\d \w \s` are ASCII. Go constructs with no exact JS counterpart (negated named
 * classes, `\p`, `\x`, `\Q`) throw instead of matching differently.
 */
function goRegexpToJs(go: string, pattern: string): RegExp {
    const unsupported = (what: string): never => {
        throw new DockerignoreError(
            `pattern ${JSON.stringify(pattern)} uses ${what}, which Docker hands to Go's regexp ` +
                "engine; it is not supported here: escape it or write the pattern another way",
        );
    };
    const lit = (c: string): string => (JS_SYNTAX.includes(c) ? `\\${c}` : c);
    const classLit = (c: string): string => ("\\]-[^".includes(c) ? `\\${c}` : c);
    const chars = Array.from(go);
    let i = 0;
    // `\c` for a letter or digit: the Perl escapes Go knows.
    const letterEscape = (c: string, inClass: boolean): string => {
        const simple: Record<string, string> = { a: "\\x07", f: "\\f", t: "\\t", n: "\\n" };
        Object.assign(simple, { r: "\\r", v: "\\v", d: "\\d", D: "\\D", w: "\\w", W: "\\W" });
        if (c in simple) return simple[c];
        if (c === "s") return inClass ? GO_SPACE : `[${GO_SPACE}]`;
        if (c === "S" && !inClass) return `[^${GO_SPACE}]`;
        if (!inClass && (c === "b" || c === "B")) return `\\${c}`;
        if (!inClass && c === "A") return "^";
        if (!inClass && c === "z") return "$";
        return unsupported(`the escape \\${c}`);
    };
    const escaped = (inClass: boolean): string => {
        const c = chars[i++];
        if (c === undefined) return unsupported("a trailing backslash");
        if (/^[A-Za-z0-9]$/.test(c)) return letterEscape(c, inClass);
        if (c.codePointAt(0)! >= 0x80) return unsupported(`the escape \\${c}`);
        return inClass ? classLit(c) : lit(c);
    };
    let js = "";
    while (i < chars.length) {
        const c = chars[i++];
        if (c === "\\") {
            js += escaped(false);
        } else if (c === ".") {
            js += "[^\\n]";
        } else if (c === "[") {
            let cls = "[";
            if (chars[i] === "^") {
                cls += "^";
                i++;
            }
            for (let first = true; ; first = false) {
                if (i >= chars.length) return unsupported("an unterminated [");
                if (chars[i] === "]" && !first) {
                    i++;
                    break;
                }
                if (chars[i] === "[" && chars[i + 1] === ":") {
                    // Go reads `[:name:]` up to the next `:]`, wherever that is.
                    let close = i + 2;
                    while (
                        close + 1 < chars.length &&
                        !(chars[close] === ":" && chars[close + 1] === "]")
                    )
                        close++;
                    if (close + 1 < chars.length) {
                        const name = chars.slice(i + 2, close).join("");
                        if (!Object.hasOwn(POSIX_CLASSES, name)) {
                            return unsupported(`the class [:${name}:]`);
                        }
                        cls += POSIX_CLASSES[name];
                        i = close + 2;
                        continue;
                    }
                }
                const one = (): string => {
                    const ch = chars[i++];
                    return ch === "\\" ? escaped(true) : classLit(ch);
                };
                const lo = one();
                if (chars[i] === "-" && i + 1 < chars.length && chars[i + 1] !== "]") {
                    i++;
                    cls += `${lo}-${one()}`;
                } else {
                    cls += lo;
                }
            }
            js += `${cls}]`;
        } else if ("^$()*?+|".includes(c)) {
            js += c; // regexp syntax from `compile`, or a `^` the pattern passed through
        } else {
            js += lit(c);
        }
    }
    try {
        return new RegExp(js, "u");
    } catch (e) {
        throw new DockerignoreError(
            `pattern ${JSON.stringify(pattern)} is not a valid expression for Docker's matcher: ${(e as Error).message}`,
        );
    }
}
