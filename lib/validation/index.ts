/**
 * Validation rules for everything a user can type into stack config.
 *
 * Plain functions over plain values: each returns `undefined` when the value is fine, or a
 * `Problem` that says what is allowed and how to fix it. The config loader turns problems into one
 * error message; components use the same rules for their args. Imports nothing of the project's.
 * Here: versions, repository names, the gallery's limits, tags, platforms, ARNs; in their own
 * files: `Problem` (problem.ts), image references, credentials in a value, printed commands.
 */

import * as semver from "semver";
import { credentialsIn, credentialsInText } from "./credentials";
import { Problem, plural } from "./problem";

export {
    credentialsIn,
    credentialsInReference,
    credentialsInText,
    credentialsInWords,
} from "./credentials";
export { checkImageReference } from "./imageReference";
export type { Problem } from "./problem";
export { plural } from "./problem";
export { shellWord, withStack } from "./shell";

/** OCI distribution spec: the longest tag a registry must accept. */
const MAX_TAG_LENGTH = 128;

/**
 * A model version is a SemVer 2.0.0 version without build metadata, which is also a valid OCI
 * tag. `latest`, a leading `v` and two-part versions are refused: each version has exactly one
 * spelling, so `1.2.0` and `v1.2.0` can never be two tags for the same release.
 */
export function checkModelVersion(value: string): Problem | undefined {
    const allowed = "a SemVer version such as 1.0.0 or 1.1.0-rc.1 (MAJOR.MINOR.PATCH[-PRERELEASE])";
    if (value.trim() === "") {
        return { reason: `it is empty; expected ${allowed}` };
    }
    if (/\s/.test(value)) {
        return {
            reason: `it contains white space; expected ${allowed}`,
            suggestion: repairVersion(value.trim()),
        };
    }
    if (value.toLowerCase() === "latest") {
        // Nothing to derive a version from: which one is meant only the user knows.
        return {
            reason:
                "`latest` is a moving tag, and this project publishes every model version under an " +
                `immutable tag; expected ${allowed}`,
        };
    }
    if (value.length > MAX_TAG_LENGTH) {
        return {
            reason: `it is ${plural(value.length, "character")} long; an image tag holds at most ${MAX_TAG_LENGTH}`,
        };
    }
    if (/^[vV]\d/.test(value)) {
        return {
            reason: `versions are written without a leading "v", so that one release has one tag; expected ${allowed}`,
            suggestion: repairVersion(value),
        };
    }
    const build = /^(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\+[0-9A-Za-z.-]+$/.exec(value);
    if (build) {
        return {
            reason:
                "SemVer build metadata (+...) is not allowed: `+` is not a valid character in an image tag; " +
                "use a pre-release (-...) instead",
            suggestion: repairVersion(build[1]),
        };
    }
    const numbers = /^(\d+)\.(\d+)\.(\d+)(-|$)/.exec(value)?.slice(1, 4) ?? [];
    if (numbers.some((n) => !Number.isSafeInteger(Number(n)))) {
        return {
            reason: `its numbers must be at most ${Number.MAX_SAFE_INTEGER}, so that versions can be ordered`,
        };
    }
    // SemVer 2.0.0 as `semver` reads it, spelt as it prints it: no `v`, `=`, space or `+build`.
    if (semver.valid(value) !== value) {
        return { reason: `it is not ${allowed}`, suggestion: repairVersion(value) };
    }
    return undefined;
}

/**
 * The version meant, where only one can be meant: `v1.2.0` -> `1.2.0`, `1.2` -> `1.2.0`,
 * `1` -> `1.0.0`, `2.3.0-rc_1` -> `2.3.0-rc.1` (`_` is not allowed in a pre-release; `.`
 * separates its identifiers). Anything else (leading zeros, empty identifiers) has no obvious
 * repair: undefined.
 */
export function repairVersion(value: string): string | undefined {
    const m =
        /^[vV]?(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?(?:\.(0|[1-9]\d*))?(?:-([0-9A-Za-z._-]+))?$/.exec(
            value,
        );
    if (!m) return undefined;
    const [, major, minor, patch, pre] = m;
    if (patch === undefined && pre !== undefined && minor === undefined) return undefined;
    const core = `${major}.${minor ?? "0"}.${patch ?? "0"}`;
    const repaired = pre === undefined ? core : `${core}-${pre.replace(/_/g, ".")}`;
    return semver.valid(repaired) === repaired ? repaired : undefined;
}

// ECR repository names (botocore model for ecr-public CreateRepository).
const REPOSITORY_NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
const REPOSITORY_NAME_MIN = 2;
const REPOSITORY_NAME_MAX = 205;

/** An ECR (public or private) repository name: 2-205 characters of `a-z0-9`, separators `._-/`. */
export function checkRepositoryName(value: string): Problem | undefined {
    const allowed =
        `${REPOSITORY_NAME_MIN}-${REPOSITORY_NAME_MAX} characters: lower-case letters and digits, ` +
        "separated by single '.', '_', '-' or '/' (for example my-model, team/my-model or team/my_model)";
    // A suggestion derived from credentials would print them.
    const suggestion = credentialsIn(value).length > 0 ? undefined : suggestRepositoryName(value);
    if (value.length < REPOSITORY_NAME_MIN || value.length > REPOSITORY_NAME_MAX) {
        return {
            reason: `it is ${plural(value.length, "character")} long; expected ${allowed}`,
            suggestion,
        };
    }
    if (!REPOSITORY_NAME.test(value)) {
        return {
            reason: `${repositoryNameFaults(value).join("; ")}; expected ${allowed}`,
            suggestion,
        };
    }
    return undefined;
}

/**
 * What is wrong with a repository name, each fault named with its character and position
 * (1-based): the first upper-case letter, the first character outside `[a-z0-9._/-]`, a
 * leading or trailing separator, two separators in a row.
 */
function repositoryNameFaults(value: string): string[] {
    const at = (i: number) => `at position ${i + 1}`;
    const faults: string[] = [];
    const upper = value.search(/[A-Z]/);
    if (upper !== -1) {
        const count = (value.match(/[A-Z]/g) ?? []).length;
        faults.push(
            count === 1
                ? `it has an upper-case letter ('${value[upper]}' ${at(upper)})`
                : `it has ${count} upper-case letters (the first, '${value[upper]}', ${at(upper)})`,
        );
    }
    const other = [...value].findIndex((c) => !/[A-Za-z0-9._/-]/.test(c));
    if (other !== -1) {
        const ch = [...value][other];
        const shown = /\s/.test(ch) ? `white space (${JSON.stringify(ch)})` : `'${ch}'`;
        faults.push(`${shown} ${at(other)} is not allowed (only a-z, 0-9, '.', '_', '-' and '/')`);
    }
    // Separators, judged on the name with the other faults set aside (upper case counts as a letter).
    const isSep = (c: string | undefined) => c !== undefined && /[._/-]/.test(c);
    if (isSep(value[0])) faults.push(`it starts with the separator '${value[0]}'`);
    const last = value.length - 1;
    if (last > 0 && isSep(value[last])) {
        faults.push(`it ends with the separator '${value[last]}'`);
    }
    for (let i = 1; i < value.length; i++) {
        if (isSep(value[i]) && isSep(value[i - 1])) {
            faults.push(
                `'${value.slice(i - 1, i + 1)}' ${at(i - 1)} is two separators in a row (one separator between letters or digits)`,
            );
            break;
        }
    }
    return faults.length > 0 ? faults : ["it is not a valid repository name"];
}

/**
 * The repository name a user most likely meant: lower case, every run of characters that are
 * not allowed (white space, `!`, ...) turned into `-`, runs of separators reduced to their first
 * one, and no separator at either end of a path component. `.` and `_` are kept as written:
 * `Team/My_Model` -> `team/my_model`. Undefined when nothing valid is left.
 */
export function suggestRepositoryName(text: string): string | undefined {
    return repositoryNameOf(text, (part) =>
        part
            .replace(/[^a-z0-9._-]+/g, "-")
            .replace(/[._-]{2,}/g, (run) => run[0])
            .replace(/^[._-]+|[._-]+$/g, ""),
    );
}

/**
 * Turns arbitrary text (a project or stack name) into a valid repository name, or `undefined`
 * when nothing usable is left.
 */
export function toRepositoryName(text: string): string | undefined {
    return repositoryNameOf(text, (part) =>
        part.replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, ""),
    );
}

/** The lower-cased text's path components, each as `clean` makes it, joined into a valid name. */
function repositoryNameOf(text: string, clean: (part: string) => string): string | undefined {
    const name = text
        .toLowerCase()
        .split("/")
        .map(clean)
        .filter((part) => part !== "")
        .join("/")
        .slice(0, REPOSITORY_NAME_MAX)
        .replace(/[^a-z0-9]+$/, "");
    return REPOSITORY_NAME.test(name) && name.length >= REPOSITORY_NAME_MIN ? name : undefined;
}

/** Catalog data limits of ECR Public (botocore shapes for RepositoryCatalogDataInput). */
export const CATALOG_LIMITS = {
    description: 1024,
    aboutText: 25600,
    usageText: 25600,
    listItems: 50,
    listItemLength: 50,
} as const;

/** Length in characters (code points), which is what the AWS limits count. */
export function charLength(text: string): number {
    return [...text].length;
}

/**
 * A catalog text field (`description`, `aboutText`, `usageText`): within its limit, and with no
 * credentials, which the public gallery would show to anyone. The reason never quotes the text.
 */
export function checkCatalogText(value: string, limit: number): Problem | undefined {
    const length = charLength(value);
    if (length > limit) {
        return {
            reason: `it is ${plural(length, "character")} long; ECR Public allows at most ${limit} (shorten it by ${plural(length - limit, "character")})`,
        };
    }
    const found = credentialsInText(value);
    if (found.length > 0) {
        // Where, so the user finds it in a long text that is not shown.
        const first = Math.min(...found.map((c) => value.indexOf(c)));
        const at = charLength(value.slice(0, first)) + 1;
        return {
            reason: `it holds credentials (a password or a token; the first at character ${at}) that the ECR Public gallery would show to anyone; remove them`,
        };
    }
    return undefined;
}

/** A catalog list (`architectures`, `operatingSystems`): at most 50 items of 1-50 characters. */
export function checkCatalogList(values: readonly string[]): Problem | undefined {
    const { listItems, listItemLength } = CATALOG_LIMITS;
    if (values.length > listItems) {
        return {
            reason: `it has ${plural(values.length, "item")}; ECR Public allows at most ${listItems}`,
        };
    }
    for (const [index, item] of values.entries()) {
        if (credentialsInText(item).length > 0) {
            return {
                reason: `item ${index} holds credentials; the gallery shows its badges to anyone`,
                index,
            };
        }
        const length = charLength(item);
        if (length < 1 || length > listItemLength) {
            return {
                reason: `item ${index} is ${plural(length, "character")} long; each item must be 1-${listItemLength} characters`,
                index,
            };
        }
    }
    return undefined;
}

/** Resource tags: at most 50, keys up to 128 characters, values up to 256. */
export function checkTags(tags: Readonly<Record<string, string>>): Problem | undefined {
    const entries = Object.entries(tags);
    if (entries.length > 50) {
        return { reason: `there are ${plural(entries.length, "tag")}; AWS allows at most 50` };
    }
    for (const [key, value] of entries) {
        if (charLength(key) < 1 || charLength(key) > 128) {
            return { reason: `tag key ${JSON.stringify(key)} must be 1-128 characters` };
        }
        if (charLength(value) > 256) {
            return {
                reason: `the value of tag ${JSON.stringify(key)} is longer than 256 characters`,
            };
        }
    }
    return undefined;
}

/**
 * The platforms an image can be built for, with the ECR Public gallery's architecture badge for
 * each (the gallery shows badges only for `ARM`, `ARM 64`, `x86` and `x86-64`).
 */
export const PLATFORMS: Readonly<Record<string, string>> = {
    "linux/amd64": "x86-64",
    "linux/arm64": "ARM 64",
    "linux/arm/v7": "ARM",
    "linux/arm/v6": "ARM",
    "linux/386": "x86",
    "linux/ppc64le": "ppc64le",
    "linux/s390x": "s390x",
    "linux/riscv64": "riscv64",
};

/**
 * The one spelling of a platform that Docker also writes another way: `linux/arm64/v8` is
 * `linux/arm64`, `linux/amd64/v1` is `linux/amd64` and `linux/arm` is `linux/arm/v7` (the
 * defaults containerd fills in). Any other value is returned as it is. The program builds,
 * fingerprints and looks up images with this spelling only, so respelling a platform in config
 * never changes an image's content fingerprint.
 */
export function normalizePlatform(value: string): string {
    const equivalent: Record<string, string> = {
        "linux/arm64/v8": "linux/arm64",
        "linux/amd64/v1": "linux/amd64",
        "linux/arm": "linux/arm/v7",
    };
    return equivalent[value] ?? value;
}

/** Architecture names (`uname -m`, Go, Debian) for the platforms above, without the `linux/`. */
const ARCHITECTURE_ALIASES: Readonly<Record<string, string>> = {
    amd64: "linux/amd64",
    x86_64: "linux/amd64",
    "x86-64": "linux/amd64",
    x64: "linux/amd64",
    arm64: "linux/arm64",
    aarch64: "linux/arm64",
    armv8: "linux/arm64",
    arm: "linux/arm/v7",
    armv7: "linux/arm/v7",
    armv7l: "linux/arm/v7",
    armhf: "linux/arm/v7",
    armv6: "linux/arm/v6",
    armv6l: "linux/arm/v6",
    armel: "linux/arm/v6",
    "386": "linux/386",
    i386: "linux/386",
    i686: "linux/386",
    x86: "linux/386",
    ppc64le: "linux/ppc64le",
    ppc64el: "linux/ppc64le",
    s390x: "linux/s390x",
    riscv64: "linux/riscv64",
};

/**
 * One build platform, `os/arch[/variant]`, from the list above, in its one spelling. Another
 * spelling of a listed platform (`linux/arm64/v8`) is refused here with the spelling to use:
 * callers that accept it (the config loader) pass `normalizePlatform(value)`. Case and
 * architecture aliases (`Linux/AMD64`, `x86_64`, `aarch64`) are refused with the platform meant.
 */
export function checkPlatform(value: string): Problem | undefined {
    if (value in PLATFORMS) return undefined;
    const expected = `expected one of ${Object.keys(PLATFORMS).join(", ")}`;
    const canonical = normalizePlatform(value);
    if (canonical in PLATFORMS) {
        return {
            reason: `it is ${canonical} written another way; write it ${canonical}, the one spelling the image's content fingerprint is computed from`,
            suggestion: canonical,
        };
    }
    const lower = value.trim().toLowerCase();
    const [os, arch, ...rest] = lower.split("/");
    const meant =
        normalizePlatform(lower) in PLATFORMS
            ? normalizePlatform(lower)
            : arch === undefined
              ? ARCHITECTURE_ALIASES[os]
              : os === "linux" && rest.length === 0
                ? ARCHITECTURE_ALIASES[arch]
                : os === "linux" && arch === "arm64" && /^v?8$/.test(rest.join("/"))
                  ? "linux/arm64"
                  : undefined;
    return { reason: `it is not a known build platform; ${expected}`, suggestion: meant };
}

const IAM_PRINCIPAL_ARN =
    /^arn:(aws(?:-[a-z]+)*):iam::\d{12}:(?:root|user\/[\w+=,.@/-]+|role\/[\w+=,.@/-]+)$/;

/** A KMS key's ARN, as private ECR's encryption takes it (not an alias). */
export function checkKmsKeyArn(value: string): Problem | undefined {
    return /^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/.test(value)
        ? undefined
        : { reason: "expected the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<key id>)" };
}

/**
 * An IAM principal allowed to push: an account root, user or role ARN. With `ecrPublic`, only a
 * principal of the `aws` partition: ECR Public exists only there (us-east-1), so a principal of
 * `aws-cn` or `aws-us-gov` can never be granted access to its repositories. Private ECR exists in
 * every partition.
 */
export function checkPrincipalArn(
    value: string,
    options: { ecrPublic?: boolean } = {},
): Problem | undefined {
    const m = IAM_PRINCIPAL_ARN.exec(value);
    if (m && options.ecrPublic && m[1] !== "aws") {
        return {
            reason: `it is a principal of the ${m[1]} partition, and ECR Public exists only in the aws partition (us-east-1), so it cannot be granted access there; use a principal of an aws-partition account, or publish to ecr-private in ${m[1]}`,
        };
    }
    if (m) return undefined;
    const account = /^\d{12}$/.test(value) ? `arn:aws:iam::${value}:root` : undefined;
    return {
        reason: "it is not an IAM principal ARN; expected arn:aws:iam::<12-digit account>:root, :user/<name> or :role/<name>",
        suggestion: account,
    };
}

/** The index of an earlier item equal to each item, for the first repeated item; undefined when all differ. */
export function firstDuplicate(
    values: readonly string[],
): { index: number; first: number } | undefined {
    const seen = new Map<string, number>();
    for (const [index, value] of values.entries()) {
        const first = seen.get(value);
        if (first !== undefined) return { index, first };
        seen.set(value, index);
    }
    return undefined;
}

/** A list with a repeated item, as a problem naming both positions. */
export function duplicateOf(values: readonly string[]): Problem | undefined {
    const d = firstDuplicate(values);
    return d
        ? { reason: `item ${d.index} repeats item ${d.first} (${values[d.index]})` }
        : undefined;
}

/** Edit distance with transpositions (optimal string alignment), for "did you mean". */
export function editDistance(a: string, b: string): number {
    const d: number[][] = Array.from({ length: a.length + 1 }, (_, i) =>
        Array.from({ length: b.length + 1 }, (_, j) => (i === 0 ? j : j === 0 ? i : 0)),
    );
    for (let i = 1; i <= a.length; i++) {
        for (let j = 1; j <= b.length; j++) {
            const cost = a[i - 1] === b[j - 1] ? 0 : 1;
            d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
            if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) {
                d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
            }
        }
    }
    return d[a.length][b.length];
}
