import * as pulumi from "@pulumi/pulumi";
import { PromotionDecision, PromotionSource, TagState, decidePromotion } from "../lib/promotion";
import { RegistryInputs, checkInputs, endpointOf, recordKeyOf } from "../lib/publishInputs";
import {
    RegistryEndpoint,
    checkSameRegistry,
    getImageConfig,
    headManifest,
} from "../lib/registryClient";
import { CopyProgress, copyImage } from "../lib/registryCopy";
import { PublishedVersion } from "./publicationRecord";
import {
    RegistryCredentials,
    RegistryTarget,
    apiUrlOf,
    checkImageArgs,
    repositoryPathOf,
    serverOf,
} from "./registry";

/** The image label with the build context's checksum (see model/Dockerfile). */
const MODEL_SHA256_LABEL = "model-registry.model.sha256";

/**
 * The source of a promotion as `promoteFrom` names it: a repository as is, or another stack's
 * `repository_uri` output through a `StackReference` (a bare stack name is this project's, in
 * this organization).
 */
export function promotionSourceArgs(
    source: PromotionSource,
    opts?: pulumi.CustomResourceOptions,
): PromotionSourceArgs {
    if (source.kind === "repository") {
        return { repositoryUri: source.repositoryUri, name: source.repositoryUri };
    }
    const qualified = source.name.includes("/")
        ? source.name
        : `${pulumi.getOrganization()}/${pulumi.getProject()}/${source.name}`;
    const ref = new pulumi.StackReference(
        `promote-from-${source.name.replace(/\//g, "-")}`,
        { name: qualified },
        opts,
    );
    return {
        // A stack that was never deployed (or by another program) has no repository_uri: ""
        // here, which the source check refuses with the fix, before anything is created.
        repositoryUri: ref
            .getOutput("repository_uri")
            .apply((uri) => (typeof uri === "string" ? uri : "")),
        // A local stack's own registry takes its login (a secret output of that stack), for
        // that registry only: the promotion sends source credentials to the source's API alone.
        credentials: ref.getOutput("registry_login").apply((login) => credentialsOf(login)),
        // The source stack's registry API (http for a local registry); a stack that predates
        // this output is on ECR Public, whose API is https://<server>.
        apiUrl: ref
            .getOutput("registry_api_url")
            .apply((url) => (typeof url === "string" ? url : "")),
        name: `stack ${source.name}`,
        // What the source stack recorded as published: promote that, not whatever its tag
        // holds now (a tag pushed by hand into its repository is not a publication).
        publishedVersions: ref
            .getOutput("published_versions")
            .apply((h) => (h ?? {}) as Record<string, { digest: string }>),
    };
}

/** Where a promotion copies from. */
export interface PromotionSourceArgs {
    /** `<server>/<path>` of the source repository, e.g. another stack's `repository_uri`. */
    readonly repositoryUri: pulumi.Input<string>;
    /** For messages: `stack dev`, or the repository. */
    readonly name: string;
    /** Registry API base URL. Defaults to `https://<server>`. */
    readonly apiUrl?: pulumi.Input<string>;
    /** Pull credentials. Defaults to anonymous (ECR Public images pull anonymously). */
    readonly credentials?: pulumi.Input<RegistryCredentials | undefined>;
    /** PEM CA to trust for the source registry. Defaults to the system roots. */
    readonly caCertificate?: pulumi.Input<string | undefined>;
    /**
     * The source stack's `published_versions`: the digest it published for each version. A
     * version it has not recorded is not promoted, and a tag that moved since is refused. Absent
     * for a repository source, whose tag is taken as it is.
     */
    readonly publishedVersions?: pulumi.Input<Record<string, { digest: string }>>;
}

function credentialsOf(value: unknown): RegistryCredentials | undefined {
    const login = value as Partial<RegistryCredentials> | undefined;
    return typeof login?.username === "string" && typeof login.password === "string"
        ? { username: login.username, password: login.password }
        : undefined;
}

/** The digest the source recorded for `version` ("" when none), or undefined without a record. */
function publishedDigestOf(source: PromotionSourceArgs, version: string) {
    return source.publishedVersions === undefined
        ? undefined
        : pulumi.output(source.publishedVersions).apply((h) => h?.[version]?.digest ?? "");
}

export interface PromotedImageArgs {
    /** Where the image is published; see `ModelRepository.registry`. */
    readonly registry: RegistryTarget;
    /** The version to promote: the same tag in the source and here. */
    readonly version: string;
    /** The repository the version is copied from. */
    readonly source: PromotionSourceArgs;
    /** Platform whose image config is read for the model checksum label. Defaults to `linux/amd64`. */
    readonly platform?: string;
}

/** The promotion's inputs as its dynamic provider sees them (plain values). */
export interface ImagePromotionInputs
    // The destination: what the guard and the record get (no fingerprint: nothing is built).
    extends
        Omit<RegistryInputs, "fingerprint">,
        // The source: what the source check gets.
        Omit<PromotionSourceCheckInputs, "passedTags"> {
    /** Set by `check`: what the destination held under the tag ("" when absent). */
    readonly destinationDigest?: string;
    /** Set by `check`, carried from run to run: every tag this stack promoted, with its digest. */
    readonly promotedHistory?: Readonly<Record<string, string>>;
}

export interface ImagePromotionOutputs {
    readonly repositoryUri: string;
    readonly tag: string;
    readonly sourceRepositoryUri: string;
    /** Manifest digest under the tag: the same in the source and here. */
    readonly digest: string;
    /** The source image's build context checksum label. */
    readonly modelSha256: string;
    /** Every version this stack promoted to this repository. */
    readonly history: Readonly<Record<string, PublishedVersion & { readonly source: string }>>;
    /** The key `history` follows, when it is not `repositoryUri` (see `RegistryInputs`). */
    readonly recordKey?: string;
}

const PROMOTION_INPUTS = [
    "repositoryUri",
    "apiUrl",
    "repositoryPath",
    "tag",
    "platform",
    "sourceName",
    "sourceRepositoryUri",
    "sourceApiUrl",
    "sourceRepositoryPath",
] as const;

function sourceEndpoint(
    i: Pick<
        ImagePromotionInputs,
        "sourceApiUrl" | "sourceRepositoryPath" | "sourceCredentials" | "sourceCaCertificate"
    >,
): RegistryEndpoint {
    return {
        apiUrl: i.sourceApiUrl,
        repository: i.sourceRepositoryPath,
        credentials: i.sourceCredentials?.username ? i.sourceCredentials : undefined,
        caCertificate: i.sourceCaCertificate || undefined,
    };
}

function destinationEndpoint(i: ImagePromotionInputs): RegistryEndpoint {
    return endpointOf({ ...i, fingerprint: "" });
}

function problemsOf(i: ImagePromotionInputs, phase: "check" | "apply") {
    const checked = checkInputs({ ...i }, phase, PROMOTION_INPUTS);
    if (checked.unknown || checked.problems.length > 0) return checked;
    const problems = [...checked.problems];
    const mismatch = checkSameRegistry(i.sourceApiUrl, i.sourceRepositoryUri);
    if (mismatch) problems.push(`source: ${mismatch}`);
    if (i.sourceRepositoryUri === i.repositoryUri) {
        problems.push(
            `the source ${i.sourceRepositoryUri} is this stack's own repository: a stack cannot promote from itself`,
        );
    }
    return { unknown: false, problems };
}

async function tagState(endpoint: RegistryEndpoint, tag: string): Promise<TagState> {
    const found = await headManifest(endpoint, tag);
    return found.exists ? { exists: true, digest: found.digest } : { exists: false };
}

/** Asks both registries (two requests on an unchanged run) and decides. */
export async function evaluatePromotion(
    i: ImagePromotionInputs,
    recorded: string | undefined,
): Promise<PromotionDecision> {
    const [source, destination] = await Promise.all([
        tagState(sourceEndpoint(i), i.tag),
        tagState(destinationEndpoint(i), i.tag),
    ]);
    return decidePromotion({
        tag: i.tag,
        sourceName: i.sourceName,
        sourceUri: i.sourceRepositoryUri,
        destinationUri: i.repositoryUri,
        source,
        destination,
        published: i.sourcePublished,
        recorded,
    });
}

/** A progress line for each large blob: started, every 256 MiB, and done. */
function progressLogger(ref: string): (e: CopyProgress) => void {
    const step = 256 * 1024 * 1024;
    const next = new Map<string, number>();
    const mib = (n: number) => `${(n / 1024 / 1024).toFixed(0)} MiB`;
    return (e) => {
        if (e.total < 64 * 1024 * 1024) return;
        const short = e.digest.slice(0, 19);
        const due = next.get(e.digest) ?? 0;
        if (e.phase === "uploading" && e.bytes >= due) {
            next.set(e.digest, due + step);
            process.stderr.write(`promoting ${ref}: ${short} ${mib(e.bytes)} of ${mib(e.total)}\n`);
        } else if (e.phase !== "uploading") {
            process.stderr.write(`promoting ${ref}: ${short} ${e.phase} (${mib(e.total)})\n`);
        }
    };
}

/** Runs the promotion right before it is recorded: decides again, copies when needed. */
export async function promote(
    i: ImagePromotionInputs,
    previous: Partial<ImagePromotionOutputs> | undefined,
): Promise<ImagePromotionOutputs> {
    const checked = problemsOf(i, "apply");
    if (checked.problems.length > 0) throw new Error(checked.problems.join("\n"));
    const sameRepository = previous !== undefined && recordKeyOf(previous) === recordKeyOf(i);
    const history = sameRepository ? (previous?.history ?? {}) : {};
    const decision = await evaluatePromotion(i, history[i.tag]?.digest);
    if (decision.action === "refuse") throw new Error(decision.message);
    const ref = `${i.repositoryUri}:${i.tag}`;
    let config: Awaited<ReturnType<typeof getImageConfig>>;
    if (decision.action === "copy") {
        // Before anything is written: the image for this stack's platform, and its labels.
        try {
            config = await getImageConfig(sourceEndpoint(i), decision.digest, i.platform);
        } catch (e) {
            throw new Error(
                `${i.sourceRepositoryUri}@${decision.digest} cannot be promoted as ${ref}: ` +
                    `${(e as Error).message}. Nothing was copied. Fix: set platform to one the ` +
                    `source image has, or publish the version for ${i.platform} there.`,
            );
        }
        const result = await copyImage(
            sourceEndpoint(i),
            decision.digest,
            destinationEndpoint(i),
            i.tag,
            { onProgress: progressLogger(ref) },
        );
        if (result.digest !== decision.digest) {
            throw new Error(
                `${ref} was copied as ${result.digest}, not the source's ${decision.digest}; the copy is not exact.`,
            );
        }
    } else {
        // Already here (rollback): the labels from this stack's own copy.
        config = await getImageConfig(destinationEndpoint(i), decision.digest, i.platform).catch(
            () => undefined,
        );
    }
    return {
        repositoryUri: i.repositoryUri,
        tag: i.tag,
        sourceRepositoryUri: i.sourceRepositoryUri,
        digest: decision.digest,
        modelSha256: config?.labels[MODEL_SHA256_LABEL] ?? "",
        history: {
            ...history,
            [i.tag]: {
                fingerprint: config?.labels["model-registry.fingerprint"] ?? "",
                digest: decision.digest,
                source: i.sourceRepositoryUri,
            },
        },
        ...(i.recordKey ? { recordKey: i.recordKey } : {}),
    };
}

/**
 * The promotion's dynamic provider. `check` (every preview and up) asks both registries and
 * refuses what would move a tag or promote a version the source does not have; `create` and
 * `update` decide again and copy; `delete` never touches a registry.
 */
export const imagePromotionProvider: pulumi.dynamic.ResourceProvider = {
    async check(olds: Partial<ImagePromotionInputs>, news: ImagePromotionInputs) {
        const checked = problemsOf(news, "check");
        const fail = (reasons: string[]) => ({
            inputs: news,
            failures: reasons.map((reason) => ({ property: "tag", reason })),
        });
        if (checked.unknown) return { inputs: news };
        if (checked.problems.length > 0) return fail(checked.problems);
        const history =
            recordKeyOf(olds) === recordKeyOf(news) ? { ...(olds.promotedHistory ?? {}) } : {};
        const recorded = history[news.tag] || undefined;
        let decision: PromotionDecision;
        try {
            decision = await evaluatePromotion(news, recorded);
        } catch (e) {
            return fail([
                `cannot check ${news.sourceRepositoryUri}:${news.tag} and ${news.repositoryUri}:${news.tag}, ` +
                    `so nothing is copied: ${(e as Error).message}`,
            ]);
        }
        if (decision.action === "refuse") return fail([decision.message]);
        const destinationDigest = decision.action === "unchanged" ? decision.digest : "";
        history[news.tag] = decision.digest;
        return { inputs: { ...news, destinationDigest, promotedHistory: history } };
    },

    async diff(_id: string, olds: ImagePromotionOutputs, news: ImagePromotionInputs) {
        const moved =
            olds.repositoryUri !== news.repositoryUri ||
            olds.tag !== news.tag ||
            olds.sourceRepositoryUri !== news.sourceRepositoryUri ||
            (news.destinationDigest ?? "") !== olds.digest;
        return { changes: moved, replaces: [] };
    },

    async create(inputs: ImagePromotionInputs) {
        return { id: inputs.repositoryUri, outs: await promote(inputs, undefined) };
    },

    async update(_id: string, olds: ImagePromotionOutputs, news: ImagePromotionInputs) {
        return { outs: await promote(news, olds) };
    },

    async delete() {
        // A published version is never deleted by this program.
    },
};

/** The source-side inputs: enough to ask the source whether it has the version. */
export interface PromotionSourceCheckInputs {
    readonly tag: string;
    readonly sourceName: string;
    readonly sourceRepositoryUri: string;
    readonly sourceApiUrl: string;
    readonly sourceRepositoryPath: string;
    readonly sourceCredentials?: { readonly username: string; readonly password: string };
    readonly sourceCaCertificate?: string;
    /** The digest the source stack published for the tag; "" for none; absent for a repository. */
    readonly sourcePublished?: string;
    /**
     * Set by `check`, carried from run to run: tags this check passed before. A rollback to one
     * of them is left to the promotion (this stack may hold it although the source lost it).
     */
    readonly passedTags?: readonly string[];
}

const SOURCE_CHECK_INPUTS = [
    "tag",
    "sourceName",
    "sourceRepositoryUri",
    "sourceApiUrl",
    "sourceRepositoryPath",
] as const;

/** The reason to stop before anything is created, or undefined when the source has the version. */
async function sourceProblem(i: PromotionSourceCheckInputs, phase: "check" | "apply") {
    if (i.sourceRepositoryUri === "") {
        return (
            `${i.sourceName} has no repository_uri output: it has not been deployed yet, so there ` +
            `is nothing to promote, and nothing was created or copied. Fix: run \`pulumi up\` on ` +
            `that stack first (it publishes the version), then \`pulumi up\` here again.`
        );
    }
    const checked = checkInputs(
        {
            ...i,
            repositoryUri: i.sourceRepositoryUri,
            apiUrl: i.sourceApiUrl,
            repositoryPath: i.sourceRepositoryPath,
        },
        phase,
        SOURCE_CHECK_INPUTS,
    );
    if (checked.unknown) return undefined;
    if (checked.problems.length > 0) return checked.problems.join("\n");
    const notPublished = (why: string) =>
        `${i.sourceName} has not published ${i.tag} (${why}), so there is nothing to promote, and ` +
        `nothing was created or copied. Fix: publish ${i.tag} there first, or set modelVersion to ` +
        `a version it has published.`;
    // A stack source: its own record says what it published (the promotion then checks that
    // the registry still holds it).
    if (i.sourcePublished !== undefined) {
        return i.sourcePublished === ""
            ? notPublished(`its published_versions output has no ${i.tag}`)
            : undefined;
    }
    try {
        if ((await headManifest(sourceEndpoint(i), i.tag)).exists) return undefined;
    } catch (e) {
        return `cannot check ${i.sourceRepositoryUri}:${i.tag}, so nothing is created or copied: ${(e as Error).message}`;
    }
    return notPublished(`${i.sourceRepositoryUri}:${i.tag} does not exist`);
}

/**
 * Checks, in every preview and up, that the source has the version: registered first, with the
 * repository depending on it, so a missing version stops the run before anything is created.
 */
export const promotionSourceCheckProvider: pulumi.dynamic.ResourceProvider = {
    async check(olds: Partial<PromotionSourceCheckInputs>, news: PromotionSourceCheckInputs) {
        const passed =
            olds.sourceRepositoryUri === news.sourceRepositoryUri
                ? [...(olds.passedTags ?? [])]
                : [];
        const problem = passed.includes(news.tag) ? undefined : await sourceProblem(news, "check");
        if (problem) return { inputs: news, failures: [{ property: "tag", reason: problem }] };
        if (!passed.includes(news.tag)) passed.push(news.tag);
        return { inputs: { ...news, passedTags: passed }, failures: [] };
    },
    async diff(_id: string, olds: PromotionSourceCheckInputs, news: PromotionSourceCheckInputs) {
        const keys = ["tag", "sourceRepositoryUri"] as const;
        return { changes: keys.some((k) => olds[k] !== news[k]), replaces: [] };
    },
    async create(inputs: PromotionSourceCheckInputs) {
        const problem = inputs.passedTags?.includes(inputs.tag)
            ? undefined
            : await sourceProblem(inputs, "apply");
        if (problem) throw new Error(problem);
        return {
            id: `${inputs.sourceRepositoryUri}:${inputs.tag}`,
            outs: { tag: inputs.tag, sourceRepositoryUri: inputs.sourceRepositoryUri },
        };
    },
    async update(_id: string, _olds: PromotionSourceCheckInputs, news: PromotionSourceCheckInputs) {
        const problem = news.passedTags?.includes(news.tag)
            ? undefined
            : await sourceProblem(news, "apply");
        if (problem) throw new Error(problem);
        return { outs: { tag: news.tag, sourceRepositoryUri: news.sourceRepositoryUri } };
    },
    async delete() {},
};

/** Refuses a promotion whose source does not have the version, before anything is created. */
export class PromotionSourceCheck extends pulumi.dynamic.Resource {
    constructor(
        name: string,
        args: { source: PromotionSourceArgs; version: string },
        opts?: pulumi.CustomResourceOptions,
    ) {
        super(
            promotionSourceCheckProvider,
            name,
            {
                tag: args.version,
                sourceName: args.source.name,
                sourceRepositoryUri: args.source.repositoryUri,
                sourceApiUrl: sourceApiUrlOf(args.source),
                sourceRepositoryPath: repositoryPathOf(args.source.repositoryUri),
                sourceCredentials: args.source.credentials
                    ? pulumi.secret(args.source.credentials)
                    : undefined,
                sourceCaCertificate: args.source.caCertificate,
                sourcePublished: publishedDigestOf(args.source, args.version),
                passedTags: undefined,
            },
            opts,
            "model-registry",
            "PromotionSourceCheck",
        );
    }
}

/** `apiUrl` of the source, defaulting to `https://<server>` on the resolved value. */
function sourceApiUrlOf(source: PromotionSourceArgs): pulumi.Output<string> {
    return apiUrlOf({ apiUrl: source.apiUrl, server: serverOf(source.repositoryUri) });
}

/** Copies one version from the source repository into this one, by digest. */
export class ImagePromotion extends pulumi.dynamic.Resource {
    declare public readonly digest: pulumi.Output<string>;
    declare public readonly modelSha256: pulumi.Output<string>;
    declare public readonly history: pulumi.Output<Record<string, PublishedVersion>>;

    constructor(
        name: string,
        args: Record<string, pulumi.Input<unknown>>,
        opts?: pulumi.CustomResourceOptions,
    ) {
        super(
            imagePromotionProvider,
            name,
            { ...args, digest: undefined, modelSha256: undefined, history: undefined },
            opts,
            "model-registry",
            "ImagePromotion",
        );
    }
}

/**
 * Publishes another repository's image of `version` here, by digest, without building: the
 * blobs and the exact manifest bytes are copied, so `imageRef` has the same digest as the source
 * (dev's tested image is what reaches prod). A destination tag that already holds that digest is
 * left alone (rollback copies nothing); one that holds anything else is refused. Nothing here
 * deletes a tag. Same outputs as `ModelImage`.
 */
export class PromotedImage extends pulumi.ComponentResource {
    /** `<repositoryUri>:<version>`. */
    public readonly imageUri: pulumi.Output<string>;
    /** `<repositoryUri>@sha256:<digest>`: the source's digest. */
    public readonly imageRef: pulumi.Output<string>;
    public readonly version: pulumi.Output<string>;
    /** The model checksum, read from the source image's `model-registry.model.sha256` label. */
    public readonly modelSha256: pulumi.Output<string>;
    /** Every version this stack promoted to the repository. */
    public readonly publishedVersions: pulumi.Output<Record<string, PublishedVersion>>;

    constructor(name: string, args: PromotedImageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("model-registry:index:PromotedImage", name, {}, opts);

        const platform = args.platform ?? "linux/amd64";
        checkImageArgs(args.version, platform);
        const apiUrl = apiUrlOf(args.registry);
        const sourceApiUrl = sourceApiUrlOf(args.source);

        const promotion = new ImagePromotion(
            `${name}-promotion`,
            {
                repositoryUri: args.registry.repositoryUri,
                apiUrl,
                repositoryPath: repositoryPathOf(args.registry.repositoryUri),
                tag: args.version,
                platform,
                credentials: args.registry.credentials
                    ? pulumi.secret(args.registry.credentials)
                    : undefined,
                caCertificate: args.registry.caCertificate,
                recordKey: args.registry.recordKey,
                sourceName: args.source.name,
                sourceRepositoryUri: args.source.repositoryUri,
                sourceApiUrl,
                sourceRepositoryPath: repositoryPathOf(args.source.repositoryUri),
                sourceCredentials: args.source.credentials
                    ? pulumi.secret(args.source.credentials)
                    : undefined,
                sourceCaCertificate: args.source.caCertificate,
                sourcePublished: publishedDigestOf(args.source, args.version),
                destinationDigest: undefined,
                promotedHistory: undefined,
            },
            { parent: this },
        );

        this.imageUri = pulumi.interpolate`${args.registry.repositoryUri}:${args.version}`;
        this.imageRef = pulumi.interpolate`${args.registry.repositoryUri}@${promotion.digest}`;
        this.version = pulumi.output(args.version);
        this.modelSha256 = promotion.modelSha256;
        this.publishedVersions = promotion.history;
        this.registerOutputs({
            imageUri: this.imageUri,
            imageRef: this.imageRef,
            version: this.version,
            modelSha256: this.modelSha256,
            publishedVersions: this.publishedVersions,
        });
    }
}
