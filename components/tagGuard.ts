import * as pulumi from "@pulumi/pulumi";
import { Publication, decideFromRegistry, decideFromState } from "../lib/guard";
import { RegistryEndpoint, headManifest } from "../lib/registryClient";

/** The guard's inputs as the dynamic provider sees them (plain values). */
export interface TagGuardInputs {
    readonly repositoryUri: string;
    readonly tag: string;
    readonly fingerprint: string;
    /** Registry API base URL, e.g. `https://public.ecr.aws`. */
    readonly apiUrl: string;
    /** Repository path inside the registry (the URI without its server). */
    readonly repositoryPath: string;
    readonly credentials?: { readonly username: string; readonly password: string };
    readonly caCertificate?: string;
}

export interface TagGuardArgs {
    /** `<server>/<path>` of the repository. */
    readonly repositoryUri: pulumi.Input<string>;
    /** The version tag about to be pushed. */
    readonly tag: pulumi.Input<string>;
    /** Content fingerprint of the image about to be pushed. */
    readonly fingerprint: pulumi.Input<string>;
    /** Registry API base URL. */
    readonly apiUrl: pulumi.Input<string>;
    /** Repository path inside the registry. */
    readonly repositoryPath: pulumi.Input<string>;
    /** Credentials to read tags with; kept secret. Defaults to anonymous access. */
    readonly credentials?: pulumi.Input<{ username: string; password: string } | undefined>;
    /** PEM CA to trust for the registry API. Defaults to the system roots. */
    readonly caCertificate?: pulumi.Input<string | undefined>;
}

/** What the engine passes for a value not known yet (a preview before the repository exists). */
const UNKNOWN = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";

/**
 * Checks a publication against this stack's record (`previous`, the guard's last inputs) and the
 * registry. Returns the reasons to refuse it (empty: allowed). An unreachable registry refuses
 * too: the guard never passes silently.
 */
export async function guardFailures(
    previous: Partial<TagGuardInputs> | undefined,
    wanted: TagGuardInputs,
): Promise<string[]> {
    const keys: (keyof TagGuardInputs)[] = [
        "repositoryUri",
        "tag",
        "fingerprint",
        "apiUrl",
        "repositoryPath",
    ];
    if (keys.some((k) => wanted[k] === UNKNOWN || wanted[k] === undefined)) {
        // Only in a preview before the repository exists: it holds no tags yet, and the check runs
        // again, with every value known, right before the image is pushed.
        return [];
    }
    const publication = (p: Partial<TagGuardInputs>): Publication => ({
        repositoryUri: p.repositoryUri ?? "",
        tag: p.tag ?? "",
        fingerprint: p.fingerprint ?? "",
    });
    // This stack's last publication: the guard's previous inputs, when it has any.
    const recorded = previous?.tag ? publication(previous) : undefined;
    let decision = decideFromState(recorded, publication(wanted));
    if (decision.action === "lookup") {
        const endpoint: RegistryEndpoint = {
            apiUrl: wanted.apiUrl,
            repository: wanted.repositoryPath,
            credentials: wanted.credentials?.username ? wanted.credentials : undefined,
            caCertificate: wanted.caCertificate || undefined,
        };
        try {
            decision = decideFromRegistry(
                recorded,
                publication(wanted),
                await headManifest(endpoint, wanted.tag),
            );
        } catch (e) {
            return [
                `cannot check whether ${wanted.repositoryUri}:${wanted.tag} is already published, so it is not pushed: ` +
                    `${(e as Error).message}`,
            ];
        }
    }
    return decision.action === "refuse" ? [decision.message] : [];
}

/**
 * The guard's dynamic provider. `check` runs in every preview and update, before anything is
 * built: that is where a publication is refused. `create` and `update` check again right before
 * the push; `delete` never touches the registry. The guard is never replaced (see `diff`).
 */
export const tagGuardProvider: pulumi.dynamic.ResourceProvider = {
    async check(olds: Partial<TagGuardInputs>, news: TagGuardInputs) {
        const reasons = await guardFailures(olds, news);
        return { inputs: news, failures: reasons.map((reason) => ({ property: "tag", reason })) };
    },

    async diff(_id: string, olds: TagGuardInputs, news: TagGuardInputs) {
        // A new tag, repository or content is an in-place update, never a replacement: the guard
        // inherits `protect` from a protected stack, and Pulumi refuses to replace a protected
        // resource, so a replacement would block every version bump in prod. `update` checks the
        // new publication exactly as `create` would. Credentials rotate (ECR tokens last 12
        // hours) and are not part of what was published, so they are not compared.
        const keys = ["repositoryUri", "tag", "fingerprint"] as const;
        return { changes: keys.some((k) => olds[k] !== news[k]), replaces: [] };
    },

    async create(inputs: TagGuardInputs) {
        const reasons = await guardFailures(undefined, inputs);
        if (reasons.length > 0) throw new Error(reasons.join("\n"));
        return { id: `${inputs.repositoryUri}:${inputs.tag}`, outs: publishedOuts(inputs) };
    },

    async update(_id: string, olds: TagGuardInputs, news: TagGuardInputs) {
        const reasons = await guardFailures(olds, news);
        if (reasons.length > 0) throw new Error(reasons.join("\n"));
        return { outs: publishedOuts(news) };
    },

    async delete() {
        // A published version is never deleted by this program.
    },
};

function publishedOuts(inputs: TagGuardInputs) {
    return {
        repositoryUri: inputs.repositoryUri,
        tag: inputs.tag,
        fingerprint: inputs.fingerprint,
    };
}

/**
 * Refuses to let a version tag change content. The model image depends on it, so when it refuses
 * nothing is built or pushed, and the stack's state keeps the last good publication.
 */
export class TagGuard extends pulumi.dynamic.Resource {
    public readonly repositoryUri!: pulumi.Output<string>;
    public readonly tag!: pulumi.Output<string>;
    public readonly fingerprint!: pulumi.Output<string>;

    constructor(name: string, args: TagGuardArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            tagGuardProvider,
            name,
            {
                ...args,
                credentials: args.credentials ? pulumi.secret(args.credentials) : undefined,
            },
            opts,
            "model-registry",
            "TagGuard",
        );
    }
}
