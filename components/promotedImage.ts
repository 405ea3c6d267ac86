import * as pulumi from "@pulumi/pulumi";
import { PromotionSource, notPublished } from "../lib/publication/promotion";
import { checkInputs, checkResult, endpointOf } from "../lib/publication/publishInputs";
import { headManifest } from "../lib/oci/client";
import { ModelImageArgs, PublishedImage, targetInputs } from "./modelImage";
import {
    ImagePromotion,
    PromotionSourceCheckInputs,
    SOURCE_INPUTS,
    sourceRegistry,
} from "./imagePromotion";
import { ProviderResource } from "./publicationRecord";
import { RegistryCredentials, apiUrlOf, repositoryPathOf, serverOf } from "./registry";

// test/support/engine.ts serializes the promotion's provider from this file, as `pulumi up` does.
export { imagePromotionProvider } from "./imagePromotion";

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

/**
 * What a promotion takes: the version, its source, and `ModelImage`'s `registry`, `platform` (here
 * the one whose image config gives the model checksum label), `acknowledgedTampering` (promoted
 * versions found moved or deleted) and `published` (the versions this stack built in this
 * repository before it promoted are never replaced, and are re-verified).
 */
export interface PromotedImageArgs extends Pick<
    ModelImageArgs,
    "registry" | "platform" | "acknowledgedTampering" | "published"
> {
    /** The version to promote: the same tag in the source and here. */
    readonly version: string;
    /** The repository the version is copied from. */
    readonly source: PromotionSourceArgs;
}

/** The reason to stop before anything is created, or undefined when the source has the version. */
async function sourceProblem(i: PromotionSourceCheckInputs, phase: "check" | "apply") {
    if (i.sourceRepositoryUri === "") {
        return (
            `${i.sourceName} has no repository_uri output: it has not been deployed yet, so there ` +
            `is nothing to promote, and nothing was created or copied. Fix: run \`pulumi up\` on ` +
            `that stack first (it publishes the version), then \`pulumi up\` here again.`
        );
    }
    const checked = checkInputs({ ...i, ...sourceRegistry(i) }, phase, ["tag", ...SOURCE_INPUTS]);
    if (checked.unknown) return undefined;
    if (checked.problems.length > 0) return checked.problems.join("\n");
    // A stack source's own record says what it published (the promotion then checks that the
    // registry still holds it); a repository source is asked whether it has the tag.
    let exists = true;
    if (i.sourcePublished === undefined) {
        try {
            exists = (await headManifest(endpointOf(sourceRegistry(i)), i.tag)).exists;
        } catch (e) {
            return `cannot check ${i.sourceRepositoryUri}:${i.tag}, so nothing is created or copied: ${(e as Error).message}`;
        }
    }
    const { sourceName, sourceRepositoryUri: sourceUri, tag, sourcePublished: published } = i;
    return notPublished({ sourceName, sourceUri, tag, published }, exists);
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
        if (problem) return checkResult(news, [problem]);
        if (!passed.includes(news.tag)) passed.push(news.tag);
        return checkResult({ ...news, passedTags: passed });
    },
    async diff(_id: string, olds: PromotionSourceCheckInputs, news: PromotionSourceCheckInputs) {
        const keys = ["tag", "sourceRepositoryUri"] as const;
        return { changes: keys.some((k) => olds[k] !== news[k]), replaces: [] };
    },
    async create(inputs: PromotionSourceCheckInputs) {
        const outs = await sourceChecked(inputs);
        return { id: `${outs.sourceRepositoryUri}:${outs.tag}`, outs };
    },
    async update(_id: string, _olds: PromotionSourceCheckInputs, news: PromotionSourceCheckInputs) {
        return { outs: await sourceChecked(news) };
    },
    async delete() {},
};

/** The source check's outputs once the source has the version (not checked again if `check` passed it). */
async function sourceChecked(i: PromotionSourceCheckInputs) {
    const problem = i.passedTags?.includes(i.tag) ? undefined : await sourceProblem(i, "apply");
    if (problem) throw new Error(problem);
    return { tag: i.tag, sourceRepositoryUri: i.sourceRepositoryUri };
}

/** Refuses a promotion whose source does not have the version, before anything is created. */
export class PromotionSourceCheck extends ProviderResource {
    constructor(
        name: string,
        args: { source: PromotionSourceArgs; version: string },
        opts?: pulumi.CustomResourceOptions,
    ) {
        const inputs = { tag: args.version, ...sourceInputs(args.source, args.version) };
        const outputs = ["passedTags"];
        super(promotionSourceCheckProvider, "PromotionSourceCheck", name, inputs, outputs, opts);
    }
}

/** The source's inputs of the source check and the promotion (`apiUrl` defaults to `https://<server>`). */
function sourceInputs(source: PromotionSourceArgs, version: string) {
    return {
        sourceName: source.name,
        sourceRepositoryUri: source.repositoryUri,
        sourceApiUrl: apiUrlOf({ apiUrl: source.apiUrl, server: serverOf(source.repositoryUri) }),
        sourceRepositoryPath: repositoryPathOf(source.repositoryUri),
        sourceCredentials: source.credentials ? pulumi.secret(source.credentials) : undefined,
        sourceCaCertificate: source.caCertificate,
        sourcePublished:
            source.publishedVersions === undefined
                ? undefined
                : pulumi.output(source.publishedVersions).apply((h) => h?.[version]?.digest ?? ""),
    };
}

/**
 * Publishes another repository's image of `version` here, by digest, without building: the
 * blobs and the exact manifest bytes are copied, so `imageRef` has the same digest as the source
 * (dev's tested image is what reaches prod). A destination tag that already holds that digest is
 * left alone (rollback copies nothing); one that holds anything else is refused. Nothing here
 * deletes a tag. Same outputs as `ModelImage`.
 */
export class PromotedImage extends PublishedImage {
    constructor(name: string, args: PromotedImageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("model-registry:index:PromotedImage", name, {}, opts);

        const promotion = new ImagePromotion(
            `${name}-promotion`,
            {
                ...targetInputs(args.registry, args.version, args.platform),
                ...sourceInputs(args.source, args.version),
                acknowledged: args.acknowledgedTampering,
                published: args.published,
            },
            { parent: this },
        );
        promotion.warnings.apply((ws) => (ws ?? []).forEach((w) => pulumi.log.warn(w, this)));

        this.publish(args.registry, args.version, promotion, promotion.modelSha256);
    }
}
