/**
 * Validation rules for everything a user can type into stack config.
 *
 * Plain functions over plain values: each returns `undefined` when the value is fine, or a
 * `Problem` that says what is allowed and how to fix it. The config loader turns problems into one
 * error message; components use the same rules for their args.
 */

/** One thing wrong with one value. */
export interface Problem {
    /** What the value must be, in a sentence. */
    readonly reason: string;
    /** A valid value to suggest in the fix, when one can be derived from the bad one. */
    readonly suggestion?: string;
}

// SemVer 2.0.0 (semver.org), without build metadata: `+` is not allowed in an OCI tag.
const SEMVER =
    /^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?$/;
const SEMVER_WITH_BUILD = /^(\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?)\+[0-9A-Za-z.-]+$/;

/** OCI distribution spec: the longest tag a registry must accept. */
export const MAX_TAG_LENGTH = 128;

/**
 * A model version is a SemVer 2.0.0 version without build metadata, which is also a valid OCI
 * tag. `latest`, a leading `v` and two-part versions are refused: each version has exactly one
 * spelling, so `1.2.0` and `v1.2.0` can never be two tags for the same release.
 */
export function checkModelVersion(value: string): Problem | undefined {
    const allowed = "a SemVer version such as 1.0.0 or 1.1.0-rc.1 (MAJOR.MINOR.PATCH[-PRERELEASE])";
    if (value.trim() === "") {
        return { reason: `it is empty; expected ${allowed}`, suggestion: "1.0.0" };
    }
    if (/\s/.test(value)) {
        return {
            reason: `it contains white space; expected ${allowed}`,
            suggestion: SEMVER.test(value.trim()) ? value.trim() : undefined,
        };
    }
    if (value.toLowerCase() === "latest") {
        return {
            reason:
                "`latest` is a moving tag, and this project publishes every model version under an " +
                `immutable tag; expected ${allowed}`,
            suggestion: "1.0.0",
        };
    }
    if (value.length > MAX_TAG_LENGTH) {
        return {
            reason: `it is ${value.length} characters long; an image tag holds at most ${MAX_TAG_LENGTH}`,
        };
    }
    if (/^[vV]\d/.test(value)) {
        const rest = value.slice(1);
        return {
            reason: `versions are written without a leading "v", so that one release has one tag; expected ${allowed}`,
            suggestion: SEMVER.test(rest) ? rest : completeVersion(rest),
        };
    }
    const build = SEMVER_WITH_BUILD.exec(value);
    if (build) {
        return {
            reason:
                "SemVer build metadata (+...) is not allowed: `+` is not a valid character in an image tag; " +
                "use a pre-release (-...) instead",
            suggestion: build[1],
        };
    }
    if (!SEMVER.test(value)) {
        return { reason: `it is not ${allowed}`, suggestion: completeVersion(value) };
    }
    return undefined;
}

/** `1` -> `1.0.0`, `1.2` -> `1.2.0`; anything else has no obvious completion. */
function completeVersion(value: string): string | undefined {
    const m = /^(0|[1-9]\d*)(?:\.(0|[1-9]\d*))?$/.exec(value);
    return m ? `${m[1]}.${m[2] ?? "0"}.0` : undefined;
}

// ECR repository names (botocore model for ecr-public CreateRepository).
const REPOSITORY_NAME = /^(?:[a-z0-9]+(?:[._-][a-z0-9]+)*\/)*[a-z0-9]+(?:[._-][a-z0-9]+)*$/;
export const REPOSITORY_NAME_MIN = 2;
export const REPOSITORY_NAME_MAX = 205;

/** An ECR (public or private) repository name: 2-205 characters of `a-z0-9`, separators `._-/`. */
export function checkRepositoryName(value: string): Problem | undefined {
    const allowed =
        `${REPOSITORY_NAME_MIN}-${REPOSITORY_NAME_MAX} characters: lower-case letters and digits, ` +
        "separated by single '.', '_', '-' or '/' (for example my-model or team/my-model)";
    const suggestion = toRepositoryName(value);
    if (value.length < REPOSITORY_NAME_MIN || value.length > REPOSITORY_NAME_MAX) {
        return { reason: `it is ${value.length} characters long; expected ${allowed}`, suggestion };
    }
    if (!REPOSITORY_NAME.test(value)) {
        const why = /[A-Z]/.test(value)
            ? "it has upper-case letters"
            : "it has characters or separators that are not allowed";
        return { reason: `${why}; expected ${allowed}`, suggestion };
    }
    return undefined;
}

/**
 * Turns arbitrary text (a project or stack name) into a valid repository name, or `undefined`
 * when nothing usable is left.
 */
export function toRepositoryName(text: string): string | undefined {
    const name = text
        .toLowerCase()
        .split("/")
        .map((part) => part.replace(/[^a-z0-9]+/g, "-").replace(/^-+|-+$/g, ""))
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

/** A catalog text field (`description`, `aboutText`, `usageText`) against its limit. */
export function checkCatalogText(value: string, limit: number): Problem | undefined {
    const length = charLength(value);
    if (length > limit) {
        return {
            reason: `it is ${length} characters long; ECR Public allows at most ${limit} (shorten it by ${length - limit})`,
        };
    }
    return undefined;
}

/** A catalog list (`architectures`, `operatingSystems`): at most 50 items of 1-50 characters. */
export function checkCatalogList(values: readonly string[]): Problem | undefined {
    const { listItems, listItemLength } = CATALOG_LIMITS;
    if (values.length > listItems) {
        return { reason: `it has ${values.length} items; ECR Public allows at most ${listItems}` };
    }
    for (const item of values) {
        const length = charLength(item);
        if (length < 1 || length > listItemLength) {
            return {
                reason: `item ${JSON.stringify(item)} is ${length} characters long; each item must be 1-${listItemLength} characters`,
            };
        }
    }
    return undefined;
}

/** Resource tags: at most 50, keys up to 128 characters, values up to 256. */
export function checkTags(tags: Readonly<Record<string, string>>): Problem | undefined {
    const entries = Object.entries(tags);
    if (entries.length > 50) {
        return { reason: `there are ${entries.length} tags; AWS allows at most 50` };
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

/** One build platform, `os/arch[/variant]`, from the list above. */
export function checkPlatform(value: string): Problem | undefined {
    if (value in PLATFORMS) return undefined;
    const lower = value.trim().toLowerCase();
    const aliases: Record<string, string> = {
        amd64: "linux/amd64",
        x86_64: "linux/amd64",
        "x86-64": "linux/amd64",
        arm64: "linux/arm64",
        aarch64: "linux/arm64",
        "linux/aarch64": "linux/arm64",
        "linux/x86_64": "linux/amd64",
    };
    return {
        reason: `it is not a known build platform; expected one of ${Object.keys(PLATFORMS).join(", ")}`,
        suggestion: lower in PLATFORMS ? lower : aliases[lower],
    };
}

const IAM_PRINCIPAL_ARN =
    /^arn:aws(?:-[a-z]+)*:iam::\d{12}:(?:root|user\/[\w+=,.@/-]+|role\/[\w+=,.@/-]+)$/;

/** An IAM principal allowed to push: an account root, user or role ARN. */
export function checkPrincipalArn(value: string): Problem | undefined {
    if (IAM_PRINCIPAL_ARN.test(value)) return undefined;
    const account = /^\d{12}$/.test(value) ? `arn:aws:iam::${value}:root` : undefined;
    return {
        reason: "it is not an IAM principal ARN; expected arn:aws:iam::<12-digit account>:root, :user/<name> or :role/<name>",
        suggestion: account,
    };
}
