/**
 * What counts as credentials typed into a config value: a URL's user and password, and a query's
 * or fragment's token. Messages mask them; sourceUrl and the gallery texts are refused with them.
 */

/** One credential found: its text, and what it is. */
interface Found {
    readonly text: string;
    readonly kind: "userinfo" | "user" | "parameter";
    /** A parameter's name (`private_token`). */
    readonly name?: string;
}

// A digest (`python@sha256:…`) is no userinfo.
const DIGEST = /@[a-z0-9]+:[0-9a-f]{32,}/gi;
// A parameter named so (or ending `_name`/`-name`: private_token, X-Amz-Signature), not one that
// merely contains it (keywords=).
const PARAMETER =
    /[?&#]((?:[\w.-]*[_-])?(?:token|api[_-]?key|key|secret|password|passwd|pass|pwd|sig|signature|auth|credentials?))=([^&#\s'"<>()[\]]+)/gi;
// Schemes whose user alone is a name: `ssh://git@github.com/o/r`.
const NAMED_USERS = /^(?:[a-z+]*\+)?(?:ssh|sftp|scp|git|ftp|rsync)$/i;

/**
 * The credentials of a value that starts as a URL (`https://bob:pw@h/x`, `bob:pw@h/x`,
 * `ghp_token@github.com/o/r`), and its token parameters. The userinfo ends at the authority's last
 * `@`: an `@` in a path (`repo.git@v1`, `/@scope/pkg`) is none, but a password may hold a `/`.
 */
function find(value: string): Found[] {
    const found: Found[] = [...value.matchAll(PARAMETER)].map((q) => ({
        text: q[2],
        kind: "parameter" as const,
        name: q[1].toLowerCase(),
    }));
    // A password may hold white space (`http://user:my pw@host`).
    const m = /^\s*(?:([a-z][a-z0-9+.-]*):\/\/)?(.*)@(\S*)/is.exec(value.replace(DIGEST, ""));
    if (!m) return found;
    const [, scheme, userinfo, rest] = m;
    const slash = userinfo.indexOf("/");
    const beforeSlash = userinfo.slice(0, slash);
    if (slash !== -1 && (!beforeSlash.includes(":") || /^[^:]*:\d*$/.test(beforeSlash))) {
        return found;
    }
    if (userinfo.includes(":")) return [{ text: userinfo, kind: "userinfo" }, ...found];
    // A user alone: a token (`https://ghp_…@github.com`), or a name (`git@github.com:o/r`,
    // `ssh://git@host`, `bob@example.com`) unless a host and a path follow as in a URL.
    const urlLike = /^(?:localhost|[\w-]+(?:\.[\w-]+)+)(?::\d+)?(?:\/|$)/i.test(rest);
    const named = scheme ? NAMED_USERS.test(scheme) : !urlLike;
    return userinfo !== "" && !named ? [{ text: userinfo, kind: "user" }, ...found] : found;
}

/** The credentials typed into a value that is a URL or starts as one, to mask them in messages. */
export function credentialsIn(value: string): string[] {
    return find(value).map((f) => f.text);
}

/** A value the docs put where a credential goes: `$TOKEN`, `${TOKEN}`, `<token>`, `YOUR_KEY`, `password`. */
function isPlaceholder(text: string): boolean {
    return /^(?:\$\{?[\w.]+\}?|\$\(.*\)|<.*>|%\w+%|\{\{?.*\}\}?|\[.*\]|your\w*|x{3,}|\*+|\.{3}|…|user(?:name)?|pass(?:word)?|token|secret|api[_-]?key|key)$/i.test(
        text,
    );
}

/**
 * The credentials in a free text (a gallery text, which anyone can read): in any word that is or
 * holds a URL, with or without scheme. Only what looks real: a password that is no placeholder,
 * a user alone that looks like a token, a token parameter's value of 8 characters or more.
 */
export function credentialsInText(text: string): string[] {
    const starts = /(?:^|[(<"'`[=])|(?=[a-z][a-z0-9+.-]*:\/\/)/gi;
    const candidates = [...text.matchAll(/\S+/g)].flatMap(([word]) =>
        [...word.matchAll(starts)].map((s) => word.slice(s.index + s[0].length)),
    );
    const real = (f: Found) => {
        if (f.kind === "userinfo") return !isPlaceholder(f.text.slice(f.text.indexOf(":") + 1));
        if (f.kind === "user") {
            return /^(?:gh[pousr]_|github_pat_|glpat-|hf_|xox[abp]-|sk-)|^(?=.*\d)(?=.*[a-z])[\w-]{20,}$/i.test(
                f.text,
            );
        }
        // A bare `key` or `auth` is too often something else (`?key=models`, `&auth=oidc`).
        const bare = f.name === "key" || f.name === "auth";
        return !bare && !isPlaceholder(f.text) && (f.text.length >= 8 || /pass|pwd/.test(f.name!));
    };
    return [
        ...new Set(
            candidates
                .flatMap(find)
                .filter(real)
                .map((f) => f.text),
        ),
    ];
}
