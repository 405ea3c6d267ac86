import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { ModelBuildInput, ModelBuildSpec, modelBuildSpec } from "../lib/publication/buildSpec";
import { credentialsIn, credentialsInReference } from "../lib/validation";
import { PublicationRecord, PublishedVersion } from "./publicationRecord";
import {
    RegistryTarget,
    apiUrlOf,
    checkImageArgs,
    repositoryPathOf,
    throwFirstProblem,
} from "./registry";
import { PublishedBefore, TagGuard } from "./tagGuard";

/** What ModelImage and PromotedImage give the stack: the same outputs, whichever published. */
export abstract class PublishedImage extends pulumi.ComponentResource {
    /** `<repositoryUri>:<version>`. */
    public readonly imageUri!: pulumi.Output<string>;
    /** `<repositoryUri>@sha256:<digest>`: what the registry holds under the tag, verified. */
    public readonly imageRef!: pulumi.Output<string>;
    /** The published version (the tag). */
    public readonly version!: pulumi.Output<string>;
    /** The model checksum: the `model-registry.model.sha256` label (of the source, if promoted). */
    public readonly modelSha256!: pulumi.Output<string>;
    /** Every version this stack published (built or promoted) to the repository, with digests. */
    public readonly publishedVersions!: pulumi.Output<Record<string, PublishedVersion>>;

    /** Sets the outputs from `step`, the resource that recorded the version (record or promotion). */
    protected publish(
        registry: RegistryTarget,
        version: string,
        step: Pick<PublicationRecord, "digest" | "history">,
        modelSha256: pulumi.Output<string>,
    ): void {
        const outputs = {
            imageUri: pulumi.interpolate`${registry.repositoryUri}:${version}`,
            imageRef: pulumi.interpolate`${registry.repositoryUri}@${step.digest}`,
            version: pulumi.output(version),
            modelSha256,
            publishedVersions: step.history,
        };
        Object.assign(this, outputs);
        this.registerOutputs(outputs);
    }
}

/**
 * The registry-facing inputs of the guard, the record and the promotion, for `version` in
 * `registry` (`platform` defaults to `linux/amd64`). A bad version or platform is refused first.
 */
export function targetInputs(registry: RegistryTarget, version: string, platform = "linux/amd64") {
    checkImageArgs(version, platform);
    return {
        repositoryUri: registry.repositoryUri,
        apiUrl: apiUrlOf(registry),
        repositoryPath: repositoryPathOf(registry.repositoryUri),
        tag: version,
        platform,
        credentials: registry.credentials,
        caCertificate: registry.caCertificate,
        recordKey: registry.recordKey,
        stack: pulumi.getStack(),
    };
}

/** The image's build (see `ModelBuildInput`), where it goes, and what this stack published. */
export interface ModelImageArgs extends Omit<
    ModelBuildInput,
    "platform" | "parallelLayers" | "layersDir" | "publisher"
> {
    /** Where the image is pushed and how to authenticate; see `ModelRepository.registry`. */
    readonly registry: RegistryTarget;
    /** The model version, used as the image tag: SemVer 2.0.0 without build metadata. */
    readonly version: string;
    /** Build platform. Defaults to `linux/amd64`. */
    readonly platform?: string;
    /**
     * What this stack published before this run. Defaults to the stack's own last outputs
     * (`repository_uri` and `published_versions`, as index.ts exports them), read through a
     * StackReference to this stack: every version is known to the guard from the moment its
     * publishing run ended, even when its tag was deleted since.
     */
    readonly published?: pulumi.Input<PublishedBefore | undefined>;
    /**
     * Old versions found deleted or overwritten that the user acknowledged: version -> what the
     * registry holds now (its digest, or `absent`). Those only warn; any other stops the run.
     */
    readonly acknowledgedTampering?: pulumi.Input<Record<string, string> | undefined>;
}

/**
 * Builds the model image and pushes it as `<repositoryUri>:<version>`, never moving a published tag.
 *
 * Three steps, in order:
 * 1. A `TagGuard` asks the registry what the tag holds, in every preview and up. A tag that holds
 *    other content is refused before anything is built; a tag that already holds this content (a
 *    push that landed in an interrupted run, or a rollback to a version already published) is
 *    adopted.
 * 2. `docker.Image` builds and pushes, or only builds when the guard found the tag holding this
 *    content (`skipPush`). There is one image resource per version; its `skipPush` is taken when
 *    it is created, right after the guard, and never changed afterwards (`ignoreChanges`):
 *    flipping it later would make docker.Image build again.
 * 3. A `PublicationRecord` reads the registry after the push: the digest under the tag must be the
 *    one docker.Image pushed (or, when adopted, an image with this content's fingerprint). It keeps
 *    the stack's history of versions and digests, and `imageRef` comes from it.
 *
 * Nothing here deletes a tag: docker.Image's delete is a no-op and the images are retained.
 * Consumers should pin `imageRef` (the digest), not `imageUri` (the tag).
 */
export class ModelImage extends PublishedImage {
    constructor(name: string, args: ModelImageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("model-registry:index:ModelImage", name, {}, opts);

        const target = targetInputs(args.registry, args.version, args.platform);
        // The labels are public: anyone who pulls the image reads them. The build's inputs are
        // kept in the state and shown in diffs and Docker's errors; a path's `@` is no
        // credential (`models/iris@v2`), only a URL's (a remote context).
        const label = "an image label that anyone who pulls the image can read";
        const input = "a build input, kept in the stack's state and shown in its diffs";
        const holding = (found: boolean, where: string) =>
            found
                ? {
                      reason: `it holds credentials (a user name and password, or a token), and it becomes ${where}; give it without them`,
                  }
                : undefined;
        const url = (v = "") => v.includes("://") && credentialsInReference(v).length > 0;
        throwFirstProblem([
            ["sourceUrl", holding(credentialsIn(args.sourceUrl ?? "").length > 0, label)],
            ["revision", holding(credentialsIn(args.revision ?? "").length > 0, label)],
            ["baseImage", holding(credentialsInReference(args.baseImage ?? "").length > 0, input)],
            ["context", holding(url(args.context), input)],
            ["dockerfile", holding(url(args.dockerfile), input)],
        ]);
        const publisher = `${pulumi.getProject()}/${pulumi.getStack()}`;

        const spec: pulumi.Output<ModelBuildSpec> = pulumi.output(
            // By name: a field the build reads but ModelImage does not take (layersDir) would
            // change the fingerprint, and so the guard's verdict, if a caller's object held it.
            modelBuildSpec({
                context: args.context,
                dockerfile: args.dockerfile,
                version: args.version,
                platform: target.platform,
                baseImage: args.baseImage,
                sourceUrl: args.sourceUrl,
                revision: args.revision,
                publisher,
                maxLayerBytes: args.maxLayerBytes,
            }),
        );
        const credentials = pulumi.output(args.registry.credentials);
        const imageUri = pulumi.interpolate`${args.registry.repositoryUri}:${args.version}`;
        const registryInputs = { ...target, fingerprint: spec.fingerprint, credentials };

        const guard = new TagGuard(
            `${name}-guard`,
            {
                ...registryInputs,
                publisher,
                published: args.published ?? publishedBefore(name, { parent: this }),
                acknowledged: args.acknowledgedTampering,
            },
            { parent: this },
        );
        guard.warnings.apply((ws) => (ws ?? []).forEach((w) => pulumi.log.warn(w, this)));

        // The guard has just refused any content but this one, so a tag it found holding this
        // content is adopted, not pushed. Its record is fresh whenever the version's image is
        // about to be created (see the guard's diff); a record of another tag (stale outputs, as
        // under `--target`) never skips a push. In a preview the value is only shown: the docker
        // provider's Check cannot take an unknown skipPush, and the guard's outputs are unknown
        // there whenever it changes.
        const skipPush = pulumi.runtime.isDryRun()
            ? false
            : pulumi
                  .all([guard.tag, guard.verifiedDigest])
                  .apply(([tag, digest]) => tag === args.version && (digest ?? "") !== "");

        const image = new docker.Image(
            `${name}-image-${args.version}`,
            {
                imageName: imageUri,
                build: spec.apply((s) => ({
                    context: s.context,
                    dockerfile: s.dockerfile,
                    platform: s.platform,
                    args: { ...s.args },
                })),
                // The ECR token is new on every run; the docker provider's diff ignores username
                // and password changes (only `server` counts), so that causes no rebuild or push.
                registry: {
                    server: args.registry.server,
                    // Only the password is secret; a secret username would hide the whole
                    // registry block in diffs.
                    username: pulumi.unsecret(credentials.apply((c) => c?.username ?? "")),
                    password: pulumi.secret(credentials.apply((c) => c?.password ?? "")),
                },
                skipPush,
            },
            {
                parent: this,
                dependsOn: [guard],
                retainOnDelete: true,
                // Decided once, when this version's image is created; see the class comment.
                ignoreChanges: ["skipPush"],
                // A new address (another port or server) replaces the image resource instead of
                // updating it, which would build and push the version again: the replacement is
                // created with the guard's decision now (skipPush true for a tag it adopted).
                // "registry", not "registry.server": the docker provider's diff names the whole
                // block, and only for a server change.
                replaceOnChanges: ["imageName", "registry"],
                // One image resource per version: a version bump creates the new version's image
                // and drops the old one from the state (retained: nothing is deleted anywhere).
                // Protection would block that and protects nothing, so it is off here.
                protect: false,
            },
        );

        const record = new PublicationRecord(
            `${name}-record`,
            {
                ...registryInputs,
                repoDigest: image.repoDigest.apply((d) => d ?? ""),
                acknowledged: args.acknowledgedTampering,
            },
            { parent: this, dependsOn: [image] },
        );

        this.publish(args.registry, args.version, record, spec.modelSha256);
    }
}

/**
 * This stack's own last outputs, through a StackReference to itself: `repository_uri` and
 * `published_versions` (the current repository's), and `published_by_repository` (all of them).
 */
export function publishedBefore(
    name: string,
    opts?: pulumi.CustomResourceOptions,
): pulumi.Output<PublishedBefore> {
    const self = new pulumi.StackReference(
        `${name}-published-before`,
        { name: `${pulumi.getOrganization()}/${pulumi.getProject()}/${pulumi.getStack()}` },
        opts,
    );
    return pulumi
        .all([
            self.getOutput("repository_uri"),
            self.getOutput("published_versions"),
            self.getOutput("published_by_repository"),
        ])
        .apply(([uri, versions, byRepository]) => ({
            repositoryUri: typeof uri === "string" ? uri : "",
            versions: (versions ?? {}) as Record<string, PublishedVersion>,
            byRepository: (byRepository ?? {}) as Record<string, Record<string, PublishedVersion>>,
        }));
}
