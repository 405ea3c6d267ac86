import * as docker from "@pulumi/docker";
import * as pulumi from "@pulumi/pulumi";
import { ModelBuildSpec, modelBuildSpec } from "../lib/buildSpec";
import { checkModelVersion, checkPlatform } from "../lib/validation";
import { RegistryTarget } from "./registry";
import { TagGuard } from "./tagGuard";

export interface ModelImageArgs {
    /** Where the image is pushed and how to authenticate; see `ModelRepository.registry`. */
    readonly registry: RegistryTarget;
    /** The model version, used as the image tag: SemVer 2.0.0 without build metadata. */
    readonly version: string;
    /** Build context directory, relative to the Pulumi project directory. */
    readonly context: string;
    /** Dockerfile path relative to the context. Defaults to `Dockerfile`. */
    readonly dockerfile?: string;
    /** Build platform. Defaults to `linux/amd64`. */
    readonly platform?: string;
    /** Base image, passed as the `BASE_IMAGE` build arg. Defaults to the Dockerfile's own default. */
    readonly baseImage?: string;
    /** Source URL for the `org.opencontainers.image.source` label. Defaults to empty. */
    readonly sourceUrl?: string;
    /** Source revision for the `org.opencontainers.image.revision` label. Defaults to empty. */
    readonly revision?: string;
}

/**
 * Builds the model image and pushes it as `<repositoryUri>:<version>`.
 *
 * A `TagGuard` checks the registry first and refuses to overwrite a published version; the image
 * depends on it, so a refusal stops the build and the push.
 *
 * The pushed tag is kept whatever happens to this resource: `docker.Image` never deletes tags
 * (its provider's Delete is a no-op), and the image is registered with `retainOnDelete`, so neither a version bump
 * (which updates the image to a new tag) nor a `pulumi destroy` removes a published version.
 * Consumers should pin `imageRef` (the digest), not `imageUri` (the tag).
 */
export class ModelImage extends pulumi.ComponentResource {
    /** `<repositoryUri>:<version>`. */
    public readonly imageUri: pulumi.Output<string>;
    /** `<repositoryUri>@sha256:<digest>` of the pushed image. */
    public readonly imageRef: pulumi.Output<string>;
    /** The published version (the tag). */
    public readonly version: pulumi.Output<string>;
    /** sha256 of the build context, also the image's `model-registry.model.sha256` label. */
    public readonly modelSha256: pulumi.Output<string>;

    constructor(name: string, args: ModelImageArgs, opts?: pulumi.ComponentResourceOptions) {
        super("model-registry:index:ModelImage", name, {}, opts);

        const platform = args.platform ?? "linux/amd64";
        const versionProblem = checkModelVersion(args.version);
        if (versionProblem) {
            throw new pulumi.InputPropertyError({
                propertyPath: "version",
                reason: versionProblem.reason,
            });
        }
        const platformProblem = checkPlatform(platform);
        if (platformProblem) {
            throw new pulumi.InputPropertyError({
                propertyPath: "platform",
                reason: platformProblem.reason,
            });
        }

        const spec: pulumi.Output<ModelBuildSpec> = pulumi.output(
            modelBuildSpec({
                context: args.context,
                dockerfile: args.dockerfile,
                version: args.version,
                platform,
                baseImage: args.baseImage,
                sourceUrl: args.sourceUrl,
                revision: args.revision,
            }),
        );
        const credentials = pulumi.output(args.registry.credentials);
        const imageUri = pulumi.interpolate`${args.registry.repositoryUri}:${args.version}`;

        // Before anything is built or pushed: refuse a tag that exists elsewhere, or that this
        // stack published with other content (ECR Public has no tag immutability of its own).
        const guard = new TagGuard(
            `${name}-guard`,
            {
                repositoryUri: args.registry.repositoryUri,
                tag: args.version,
                fingerprint: spec.fingerprint,
                apiUrl: args.registry.apiUrl ?? pulumi.interpolate`https://${args.registry.server}`,
                // The repository path is the reference without its registry host.
                repositoryPath: pulumi
                    .output(args.registry.repositoryUri)
                    .apply((uri) => uri.slice(uri.indexOf("/") + 1)),
                credentials,
                caCertificate: args.registry.caCertificate,
            },
            { parent: this },
        );

        const image = new docker.Image(
            `${name}-image`,
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
                skipPush: false,
            },
            { parent: this, retainOnDelete: true, dependsOn: [guard] },
        );

        this.imageUri = imageUri;
        this.imageRef = image.repoDigest;
        this.version = pulumi.output(args.version);
        this.modelSha256 = spec.modelSha256;
        this.registerOutputs({
            imageUri: this.imageUri,
            imageRef: this.imageRef,
            version: this.version,
            modelSha256: this.modelSha256,
        });
    }
}
