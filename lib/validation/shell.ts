/** Commands printed in fixes, as a shell and the Pulumi CLI read them. */

/** `word` as one shell word in a copy-pasteable fix: as it is, or in single quotes when it needs them. */
export function shellWord(word: string): string {
    return /^[A-Za-z0-9._:/@=+-]+$/.test(word) ? word : `'${word.replace(/'/g, `'\\''`)}'`;
}

/**
 * Each `pulumi config set|rm|get` in `text` that starts a command (at the start, or after `: `,
 * `&& `, `or `, `then `, `(` or `$(`) and names no stack yet, with `--stack <stack>`; none inside
 * a value quoted with one of `quotes` (`"` in a reason, `'` in a shell command). A quote opens
 * and closes at a word's edge, so the apostrophe of "run's" is none. A fix may be pasted where
 * another stack is selected (`npm run release` selects the previous one again).
 */
export function withStack(text: string, stack: string, quotes = "'"): string {
    // A quoted word as `shellWord` writes it: `'it'\''s'` is one.
    const quoted = [...quotes]
        .map((q) => `(?<!\\w)${q}[^${q}]*${q}(?:\\\\${q}${q}[^${q}]*${q})*(?!\\w)`)
        .join("|");
    return text
        .split(new RegExp(`(${quoted})`))
        .map((part, i) =>
            i % 2 === 1
                ? part
                : part.replace(
                      /(?<=^|: |&& |or |then |\(|\$\()pulumi config (?:set|rm|get)(?= )(?! --stack)/gm,
                      `$& --stack ${shellWord(stack)}`,
                  ),
        )
        .join("");
}
