/**
 * What the guard and the publication record need to reach a registry, checked the same way by
 * both. Plain functions over plain values: the two dynamic providers carry them through Pulumi's
 * closure serialization.
 */
import { RegistryEndpoint, checkSameRegistry } from "../oci/client";
import { credentialsInReference, withStack } from "../validation";

/** The registry-facing inputs of the guard and the record (plain values, as a provider sees them). */
export interface RegistryInputs {
    /** `<server>/<path>` of the repository: where docker pushes. */
    readonly repositoryUri: string;
    /** Registry API base URL, e.g. `https://public.ecr.aws`. */
    readonly apiUrl: string;
    /** Repository path inside the registry (the URI without its server). */
    readonly repositoryPath: string;
    /** The version tag. */
    readonly tag: string;
    /** Content fingerprint of the image (`ModelBuildSpec.fingerprint`). */
    readonly fingerprint: string;
    /** Build platform, to pick the image out of an index. */
    readonly platform: string;
    readonly credentials?: { readonly username: string; readonly password: string };
    readonly caCertificate?: string;
    /** What the carried histories follow (see `RegistryTarget.recordKey`); absent: `repositoryUri`. */
    readonly recordKey?: string;
    /** Versions whose tampering the user acknowledged: version -> what the registry holds now. */
    readonly acknowledged?: Readonly<Record<string, string>>;
    /** The stack's name: the `--stack` of the `pulumi config` fixes in messages. */
    readonly stack?: string;
}

/** The key the carried histories follow: `recordKey`, else `repositoryUri`. */
export function recordKeyOf(
    i: Partial<Pick<RegistryInputs, "repositoryUri" | "recordKey">> | undefined,
): string | undefined {
    return i ? i.recordKey || i.repositoryUri : undefined;
}

/** What the engine passes for a value not known yet: only ever in a preview. */
export const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/** The inputs every build-side provider needs. */
export const REQUIRED_INPUTS = [
    "repositoryUri",
    "apiUrl",
    "repositoryPath",
    "tag",
    "fingerprint",
    "platform",
] as const;

/**
 * Checks the inputs: each of `required` must be a non-empty string, and `apiUrl` must name the
 * registry of `repositoryUri`. `phase` is `check` (preview or up: the engine's unknown placeholder means
 * "not known yet", as in a preview before the repository exists) or `apply` (create or update:
 * every value must be known). An undefined or empty required value is a problem in every phase: it
 * must never read as "nothing to check". Returns whether a value is unknown, and the problems.
 */
export function checkInputs(
    inputs: Partial<RegistryInputs> | Readonly<Record<string, unknown>>,
    phase: "check" | "apply",
    required: readonly string[],
) {
    const problems: string[] = [];
    let unknown = false;
    for (const key of required) {
        const value = (inputs as Record<string, unknown>)[key];
        if (value === UNKNOWN) {
            if (phase === "check") unknown = true;
            else problems.push(`${key} is still unknown when the registry must be checked`);
        } else if (typeof value !== "string" || value === "") {
            problems.push(
                `${key} is ${value === undefined ? "missing" : JSON.stringify(value)}; it must be a ` +
                    "non-empty string (a RegistryTarget whose Output resolved to nothing?)",
            );
        } else if (/(Uri|Url)$/i.test(key) && credentialsInReference(value).length > 0) {
            // Never shown, nor the fields derived from it: they would print them.
            const reason = `${key} holds credentials (not shown); a registry reference has none: give them as the registry target's credentials`;
            return { unknown: false, problems: [reason] };
        } else if (/(Uri|Url|Path|tag)$/i.test(key) && /[\s\x00-\x1f\x7f]/.test(value)) {
            // Another stack's outputs may set these: never let one reach a message raw.
            problems.push(
                `${key} has white space or control characters (at character ${value.search(/[\s\x00-\x1f\x7f]/) + 1}); ` +
                    "a registry reference has none",
            );
        }
    }
    if (unknown || problems.length > 0) return { unknown, problems };

    const i = inputs as RegistryInputs;
    const mismatch = checkSameRegistry(i.apiUrl, i.repositoryUri);
    if (mismatch) problems.push(mismatch);
    if (!i.repositoryUri.endsWith(`/${i.repositoryPath}`)) {
        problems.push(
            `repositoryPath ${JSON.stringify(i.repositoryPath)} is not the path of repositoryUri ` +
                JSON.stringify(i.repositoryUri),
        );
    }
    return { unknown: false, problems };
}

/** The registry client's endpoint for these inputs. */
export function endpointOf(
    inputs: Pick<RegistryInputs, "apiUrl" | "repositoryPath" | "credentials" | "caCertificate">,
): RegistryEndpoint {
    return {
        apiUrl: inputs.apiUrl,
        repository: inputs.repositoryPath,
        credentials: inputs.credentials?.username ? inputs.credentials : undefined,
        caCertificate: inputs.caCertificate || undefined,
    };
}

/**
 * A dynamic provider's `check` result: `inputs`, refused for `reasons` (none: accepted). Each
 * `pulumi config` fix names the stack: the user may have run `pulumi up --stack prod` with
 * another stack selected.
 */
export function checkResult<T extends object>(inputs: T, reasons: readonly string[] = []) {
    const failures = reasons.map((reason) => ({
        property: "tag",
        reason: forStack(inputs, reason),
    }));
    return { inputs, failures };
}

/**
 * `text` with `--stack` in its `pulumi config` fixes, when the inputs name the stack; none inside
 * a quoted value (a label or digest the registry holds).
 */
export function forStack(inputs: object, text: string): string {
    const stack = (inputs as { readonly stack?: unknown }).stack;
    return typeof stack === "string" && stack !== "" ? withStack(text, stack, `'"`) : text;
}
