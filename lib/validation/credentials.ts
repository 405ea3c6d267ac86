/**
 * What counts as credentials typed into a value: a URL's user and password, a query's or
 * fragment's token, a token of a known format. Config messages mask them; sourceUrl and the
 * gallery texts are refused with them.
 */

/** One credential found: its text, and what it is. */
interface Found {
    readonly text: string;
    readonly kind: "userinfo" | "user" | "parameter" | "variable";
    /** userinfo, user: the URL's scheme. parameter, variable: its name; a variable's `=` or `:`. */
    readonly scheme?: string;
    readonly name?: string;
    readonly sign?: string;
    /** variable: the start of a command in backticks (`openssl rand -hex 16`). */
    readonly command?: boolean;
    /** userinfo, user: a host follows, then a path (`bob:pw@host/x`, not `mailto:bob@host`). */
    readonly path?: boolean;
    /** userinfo, user: a host follows, and nothing else (`ghp_…@github.com`). */
    readonly hostOnly?: boolean;
}

const SCHEME = /^([a-z][a-z0-9+.-]*):\/\//i;
const HOST = /^(?:localhost|[\w-]+(?:\.[\w-]+)+|\[[0-9a-f:.]+\])(?::\d+)?/i;
// Schemes whose user alone is a name: `ssh://git@github.com/o/r`.
const NAMED_USERS = /^(?:[a-z]+\+)?(?:ssh|sftp|scp|git|ftp|rsync)$/i;

/**
 * The userinfo of a text that starts as a URL, with or without scheme: before the last `@` of the
 * authority (an `@` in a path, `repo.git@v1` or `/@scope`, is none), or of the whole text when
 * the password holds a `/`, `?` or `#` (`AKIA:wJa/K7@host`; not `host:80/x@y`). Never a digest's
 * (`python:3.12@sha256:…`).
 */
function userinfoOf(text: string): Found | undefined {
    const scheme = SCHEME.exec(text)?.[1];
    const rest = scheme ? text.slice(scheme.length + 3) : text;
    const authority = /^[^/?#]*/.exec(rest)![0];
    let at = authority.lastIndexOf("@");
    if (at === -1 && /^[^/?#:@]+:(?!\d*[/?#])[^@]*[/?#]/.test(rest)) at = rest.lastIndexOf("@");
    const after = rest.slice(at + 1);
    // A digest's hex has a letter or is longer than a port (`bob:pw@sha1:5000` is a host).
    const digest =
        !scheme && /^(?:sha\d+|blake\w*|md5):(?=[0-9a-f]*[a-f]|[0-9a-f]{6})/i.test(after);
    if (at <= 0 || digest) return undefined;
    const host = HOST.exec(after)?.[0];
    const next = host === undefined ? undefined : after[host.length];
    const kind = rest.slice(0, at).includes(":") ? "userinfo" : "user";
    const hostOnly = host !== undefined && (next === undefined || /\s/.test(next));
    return { text: rest.slice(0, at), kind, scheme, path: next === "/", hostOnly };
}

/** Whether userinfo found in a value counts, to be masked: a user alone is often a name. */
function masked(f: Found | undefined): f is Found {
    if (!f || f.kind !== "user") return f !== undefined;
    // `ssh://git@host/o/r`, `git@github.com:o/r` and `bob@example.com.` are names;
    // `https://ghp_…@github.com` and `ghp_…@github.com/o/r` are tokens.
    return f.scheme ? !NAMED_USERS.test(f.scheme) : f.path! || f.hostOnly!;
}

/** A query's or fragment's parameters named as credentials (`private_token`, `accessToken`). */
function parametersOf(text: string): Found[] {
    const query = /(?:[?&#]|&amp;)([\w.-]+)=([^&#\s'"<>()[\]]+)/g;
    const names =
        /^(?:token|key|apikey|secret|passw(?:or)?d|pass|pwd|sig|signature|auth|code|credentials?)$/;
    return [...text.matchAll(query)]
        .filter(([, name]) => {
            const words = name.replace(/([a-z0-9])([A-Z])/g, "$1_$2").toLowerCase();
            return names.test(words.split(/[_.-]/).pop()!);
        })
        .map(([, name, value]) => ({ text: value, kind: "parameter" as const, name }));
}

/** A free text's variables named as credentials: `HF_TOKEN=…`, `password: …`, `"api_key": "…"`. */
function variablesOf(text: string): Found[] {
    // Quoted or in inline code (`x`, ``x``); a command in backticks (`openssl rand -hex 16`)
    // is no value, as `$(…)` is not.
    const variable =
        /(?<![\w?&#=/.-])(?:--)?([A-Za-z][\w-]*)["'`]{0,2}\s*([=:])\s*(?=(["'`]{0,2})([^\s"'`&;,#?]{1,1024})([ \t]?))/g;
    const names =
        /(?:^|[_-])(?:token|secret|password|passwd|pwd|pass|credentials?|api_?key|(?:access|secret|private)_key)$/i;
    return [...text.slice(0, 51_200).matchAll(variable)]
        .filter(([, name]) => names.test(name))
        .map(([, name, sign, quote, value, space]) => {
            const command =
                quote.includes("`") && space !== "" && /^[a-z][a-z0-9._-]*$/.test(value);
            return { text: value, kind: "variable" as const, name, sign, command };
        });
}

/** Where a URL may start in a free text: each word, after `(<"'\`[`, and at each `scheme://`. */
function candidatesOf(text: string): string[] {
    // Anything past the longest gallery text is refused for its length, and never shown.
    // Only words with an `@` have a userinfo; none is longer than 1,024 characters.
    const words = (text.slice(0, 51_200).match(/\S+/g) ?? []).filter((w) => w.includes("@"));
    return words.flatMap((word) =>
        [...word.matchAll(/^|(?<=[(<"'`[])|(?<![a-z0-9+.-])(?=[a-z][a-z0-9+.-]*:\/\/)/gi)].map(
            (s) => word.slice(s.index, s.index + 1_024),
        ),
    );
}

/**
 * The credentials typed into a value, to mask them in messages: the userinfo of the value (whose
 * password may hold white space), and what `credentialsInWords` finds.
 */
export function credentialsIn(value: string): string[] {
    const whole = [userinfoOf(value.trimStart())].filter(masked);
    return [...whole.map((f) => f.text), ...credentialsInWords(value)];
}

/**
 * The credentials of a value that is a reference (a registry's, an image's, a URL): the userinfo
 * of its start and its token parameters; no search of words, which a name may resemble
 * (`team/sk-learn_model`).
 */
export function credentialsInReference(value: string): string[] {
    const whole = [userinfoOf(value.trim())].filter(masked);
    return [...whole, ...parametersOf(value)].map((f) => f.text);
}

/**
 * The credentials in a text's words: the userinfo of any URL, token parameters, variables named
 * as credentials (`HF_TOKEN=…`), known tokens.
 */
export function credentialsInWords(text: string): string[] {
    const urls = candidatesOf(text).map(userinfoOf).filter(masked);
    const variables = variablesOf(text).filter((f) => variableCounts(f, false));
    const found = [...urls, ...parametersOf(text), ...variables];
    return [...found.map((f) => f.text), ...wellKnown(text)];
}

/**
 * Tokens of a known format; not the docs' examples (`AKIAIOSFODNN7EXAMPLE`, `ghp_xxxx…`, a JWT
 * signed `your-signature-here`).
 */
function wellKnown(text: string): string[] {
    const found = text.slice(0, 51_200).match(WELL_KNOWN) ?? [];
    const sample = (t: string) =>
        /EXAMPLE|x{8}|X{8}/.test(t) ||
        (/^eyJ.*\./.test(t) && isPlaceholder(t.slice(t.lastIndexOf(".") + 1)));
    return found.filter((t) => !sample(t));
}

// `$TOKEN`, `${TOKEN}`, `$hf_token` (not `$9fK2`), `ACCESS_TOKEN`, `<token>`, `Your_Token`, `***`,
// the docs' `AKIAIOSFODNN7EXAMPLE` and `ghp_xxxxxxxx…`.
const PLACEHOLDER =
    /^(?:\$\{?[A-Z_][A-Z0-9_]*\}?|\$[a-z_]+|[A-Z]+(?:_[A-Z]+)+|\$\(.*\)|<.*>|%\w+%|\{\{.*\}\}|\[.*\]|YOUR[_-]?[A-Z0-9_]*|[Yy]our[_-][\w-]+|[xX*]{3,}|\.{3}|…|.*(?:EXAMPLE|x{8}|X{8}).*)$/;
// Also a switch's value and the docs' sample values (`MYSQL_ALLOW_EMPTY_PASSWORD=true`,
// `RABBITMQ_DEFAULT_PASS=guest`).
const PLACEHOLDER_WORD =
    /^(?:user(?:name)?|pass(?:word)?|token|secret|api[_-]?key|key|true|false|yes|no|none|null|empty|disabled?|enabled?|example|changeme|admin|root|guest|minioadmin|grafana|test|my-secret-pw|changeit|redacted|replaceme|placeholder)$/i;
// `HIDDEN` or `hidden` stands for a value; `Hidden` may be a password.
const PLACEHOLDER_CASED = /^(?:HIDDEN|hidden)$/;
const TOKEN_LIKE =
    /^(?:gh[pousr]_|github_pat_|glpat-|hf_|npm_|xox[abp]-|sk-|AIza)|^(?=.*\d)(?=.*[a-z])[\w+/=-]{20,}$/i;
// Tokens whose format says what they are, wherever they stand (`HF_TOKEN=hf_… python serve.py`,
// `-phf_…`, or after a percent-escape: `Bearer%20eyJ…`, `%3Aglpat-…`), with a JWT
// (`Authorization: Bearer eyJ….eyJ….…`) and an ECR authorization token: base64 of `{"payload":"`
// (what `docker login -p` takes from `aws ecr-public get-login-password`), or of `AWS:` and that
// (a Docker config's `auth`), not inside other base64.
const WELL_KNOWN =
    /(?:(?<![\w-])|(?<=(?<![\w-])-p|%(?:25)?[0-9A-Fa-f]{2}))(?:eyJ[\w-]{10,}\.eyJ[\w-]{10,}\.[\w-]{10,}|(?<![+/])(?:eyJwYXlsb2FkIjoi|QVdTOmV5SndZWGxzYjJGa0lqb2)[A-Za-z0-9+/]{60,}=*|gh[pousr]_[A-Za-z0-9]{36}|github_pat_\w{22,}|glpat-[\w-]{20,}|hf_[A-Za-z]{30,}|npm_[A-Za-z0-9]{36}|xox[abpr]-[\w-]{10,}|AKIA[0-9A-Z]{16}|AIza[\w-]{35}|sk-(?:proj-|ant-api\d\d-)?(?=[\w-]*[A-Z])(?=[\w-]*\d)[\w-]{20,})(?![\w-])/g;

/** A value the docs put where a credential goes: `$TOKEN`, `${TOKEN}`, `<token>`, `YOUR_KEY`. */
function isPlaceholder(text: string): boolean {
    // A reference (`$X`, `${{ secrets.X }}`, `$(cmd)`, `%X%`, `(none)`) or `…_your_token_here`.
    const reference =
        /^(?:\$[\w{(]|%\w|[<([{])|[_-]your[_-]|[_-]here$/i.test(text) && !/^\$\d/.test(text);
    return (
        reference ||
        PLACEHOLDER.test(text) ||
        PLACEHOLDER_WORD.test(text) ||
        PLACEHOLDER_CASED.test(text)
    );
}

/** Whether a credential found in a free text looks real, not like an example of one. */
function looksReal(f: Found): boolean {
    if (f.kind === "user") return masked(f) && TOKEN_LIKE.test(f.text);
    if (f.kind === "userinfo") {
        const [user, password] = [
            f.text.slice(0, f.text.indexOf(":")),
            f.text.slice(f.text.indexOf(":") + 1),
        ];
        // `ci:Hunter2Pass@db.example.com:5432` with no path counts when its password looks like
        // one; `Maintainer:alice@example.com` and `mailto:bob@host` do not.
        const strong = password.length >= 8 && /\d/.test(password) && /[a-z]/i.test(password);
        const named = /^(?:mailto|xmpp|sip|tel|news)$/i.test(user);
        return (
            TOKEN_LIKE.test(user) ||
            ((f.scheme !== undefined || f.path! || (f.hostOnly! && strong && !named)) &&
                !isPlaceholder(password))
        );
    }
    if (isPlaceholder(f.text)) return false;
    // A bare `key`, `auth` or `code` is often something else (`?key=models`, `&auth=oidc`).
    // A slug (`?key=iris-classifier-v2`) is none; a UUID is one.
    if (/^(?:key|auth|code)$/i.test(f.name!)) {
        const slug = /^[a-z0-9]+(?:-[a-z0-9]+)+$/.test(f.text) && /[g-z]/.test(f.text);
        return TOKEN_LIKE.test(f.text) && !slug;
    }
    if (f.kind === "variable") return variableCounts(f, true);
    return f.text.length >= 8 || /(?:pass|pwd|passw(?:or)?d|secret)$/i.test(f.name!);
}

/**
 * Whether a variable's value counts as a credential. Never: a placeholder, the name's own word
 * (`POSTGRES_PASSWORD=postgres`), an expression (`os.environ[`, `logits.argmax(-1)`,
 * `sys.argv[1])`), a path (`/run/secrets/db`, `./hf_token.txt`), a setting
 * (`--secret=id=hf_token`). Code (`DB_PASSWORD=…`): a password's or a secret's value from 6
 * characters. Otherwise, in a gallery text (`strict`), where prose names things (`token:
 * gpt2-medium`, `max_token: 512tokens`), only what looks like a secret; in any other value, all
 * but a version, a port (`registry-token:5000/ml/iris`) or a plain word (`HF_TOKEN:required`).
 */
function variableCounts(f: Found, strict: boolean): boolean {
    const value = f.text;
    if (f.command && strict) return false;
    if (isPlaceholder(value) || f.name!.toLowerCase().includes(value.toLowerCase())) return false;
    // A chain of names, calls and indexes (`outputs.logits[0].argmax(-1)`, `getPassword()`,
    // `Path(f).read_text()`, `os.environ[`): letters only when nothing is called, and a
    // capitalised call only with a member after it (`Hunter(2)`, `Hunter2.Secret99` are not).
    const chain = /^[A-Za-z_]\w*(?:\.[A-Za-z_]\w*|\([^()]*\)|\[[^\][]*\])*(?:[([]\S*)?\)?$/;
    // Called first by a lower-case name of letters (`getPassword(`) or a hash's or codec's
    // (`sha256(`, `b64decode(`), after a member (`os.urandom(`), or with a member after the
    // call (`Path(f).read_text`); not `hunter2(x)` or `Hunter(2)`.
    const called =
        /^[a-z_][A-Za-z_]*[([]|^(?:sha\d+|md5|crc32|blake2\w*|b\d+\w*|base\d+\w*|\w*utf\d+\w*|\w+_v\d+)[([]|^[A-Za-z_]\w*\.[A-Za-z_]|^\w+[([][^)\]]*[)\]]\./.test(
            value,
        ) && /[([]/.test(value);
    const expression =
        chain.test(value) && (called || /^[A-Za-z_]+(?:\.[A-Za-z_]+)+\)?$/.test(value));
    const path = /^(?:~|\.)?\/(?:[a-z0-9._-]+\/)+[a-z0-9._-]*$|^(?:~|\.)?\/[a-z0-9_-]+\.[a-z0-9]+$/;
    const setting = f.sign === "=" && /^\w+=\w/.test(value);
    if (expression || path.test(value) || setting) return false;
    if (f.sign === "=" && /(?:pass|pwd|passw(?:or)?d|secret)$/i.test(f.name!)) {
        return value.length >= 6;
    }
    if (!strict) {
        const word = f.sign === ":" && /^[a-z]+$/.test(value); // HF_TOKEN:required
        return value.length >= 4 && !word && !/^v?\d+(?:\.\d+)*(?:\/|$)/.test(value);
    }
    const named =
        /^\d+[a-z]*$|^\d+\/|^v?\d+(?:\.\d+)+|^[a-z][a-z0-9]*(?:[-.][a-z0-9]+)+$|^[a-z0-9._-]*(?:\/[a-z0-9._-]+)+$/.test(
            value,
        );
    return !named && value.length >= 8 && /\d/.test(value) && /[a-z]/i.test(value);
}

/**
 * The credentials in a free text (a gallery text, which anyone can read), in any word that is or
 * holds a URL, with or without scheme; only what looks real: a password that is no placeholder,
 * a user that looks like a token, a token parameter's value (8 characters or more; a bare `key`,
 * `auth` or `code` only when it looks like a token).
 */
export function credentialsInText(text: string): string[] {
    const urls = candidatesOf(text).map(userinfoOf);
    const found = [...urls, ...parametersOf(text.slice(0, 51_200)), ...variablesOf(text)];
    const real = found.flatMap((f) => (f && looksReal(f) ? [f.text] : []));
    return [...new Set([...real, ...wellKnown(text)])];
}
