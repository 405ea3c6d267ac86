import * as pulumi from "@pulumi/pulumi";
import { StackConfig } from "./config";
import { LAYER_CAPS } from "./lib/publication/layers";
import {
    LocalModelRegistry,
    ModelImage,
    ModelRepository,
    PrivateModelRepository,
    PromotedImage,
    PromotionSourceArgs,
    PromotionSourceCheck,
    RegistryCredentials,
    apiUrlOf,
    ecrPrivateCredentials,
    promotionSourceArgs,
    publishedBefore,
    secretCredentials,
    serverOf,
} from "./components";

/**
 * The whole stack as a function of its config: the repository of the registry target, the image
 * (built, or promoted from another stack), and what consumers read. index.ts calls it with the
 * stack's config; the tests call it under one set of mocks.
 */
export function modelRegistry(config: StackConfig) {
    // One token for the account's private registry, when the stack publishes there: the repository
    // pushes with it, and a promotion reads a source in the same registry with it.
    const ecrPrivate = config.registry === "ecr-private" ? ecrPrivateCredentials() : undefined;

    // A stack with promoteFrom publishes that source's exact image by digest; the others build. A
    // version the source has not published stops the run before anything is created.
    const source = config.promoteFrom
        ? withSourceCredentials(promotionSourceArgs(config.promoteFrom), config, ecrPrivate)
        : undefined;
    const sourceCheck = source
        ? new PromotionSourceCheck("model-source", { source, version: config.modelVersion })
        : undefined;

    const repository = repositoryFor(config, ecrPrivate, {
        protect: config.protect,
        dependsOn: sourceCheck ? [sourceCheck] : [],
    });

    // This stack's own last outputs, read before anything is published: every version it
    // published, in every repository it ever published to (see ModelImageArgs.published). A
    // promoting stack reads them too: the versions it built before are never replaced.
    const before = publishedBefore("model");
    const publication = {
        registry: repository.registry,
        version: config.modelVersion,
        platform: config.platform,
        acknowledgedTampering: config.acknowledgedTampering,
        published: before,
    };
    const image = source
        ? new PromotedImage("model", { ...publication, source }, { protect: config.protect })
        : new ModelImage(
              "model",
              {
                  ...publication,
                  context: config.modelContext,
                  dockerfile: config.dockerfile,
                  baseImage: config.baseImage || undefined,
                  sourceUrl: config.sourceUrl,
                  revision: config.modelRevision,
                  // The target registry's layer cap: no model layer is laid out above it.
                  maxLayerBytes: LAYER_CAPS[config.registry],
              },
              { protect: config.protect },
          );

    return {
        registry: config.registry,
        registry_api_url: apiUrlOf(repository.registry),
        repository_uri: repository.repositoryUri,
        repository_name: repository.repositoryName,
        model_version: image.version,
        image_uri: image.imageUri,
        image_ref: image.imageRef,
        model_sha256: image.modelSha256,
        published_versions: image.publishedVersions,
        // Every repository this stack published to, by record key: never dropped, so a switch
        // back to an earlier repository finds what it published there.
        published_by_repository: pulumi
            .all([
                before.apply((b) => b.byRepository ?? {}),
                repository.registry.recordKey ?? "",
                repository.repositoryUri,
                image.publishedVersions,
            ])
            .apply(([earlier, key, uri, versions]) => ({
                ...earlier,
                [key || uri]: { ...earlier[key || uri], ...versions },
            })),
        registry_login:
            repository instanceof LocalModelRegistry ? repository.credentials : undefined,
    };
}

type EcrPrivate = ReturnType<typeof ecrPrivateCredentials>;

/** The repository of the stack's registry target, and where its images are pushed. */
function repositoryFor(
    c: StackConfig,
    ecrPrivate: EcrPrivate | undefined,
    opts: pulumi.ComponentResourceOptions,
) {
    switch (c.registry) {
        case "ecr-private":
            return new PrivateModelRepository(
                "model",
                {
                    repositoryName: c.repositoryName,
                    forceDestroy: c.forceDestroy,
                    pushPrincipals: c.pushPrincipals,
                    kmsKey: c.kmsKey,
                    credentials: ecrPrivate?.credentials,
                },
                opts,
            );
        case "local":
            return new LocalModelRegistry(
                "model",
                {
                    repositoryName: c.repositoryName,
                    registryUrl: c.registryUrl,
                    credentials: localCredentials(c),
                    image: c.localRegistry.image,
                    port: c.localRegistry.port,
                    forceDestroy: c.forceDestroy,
                },
                opts,
            );
        case "ecr-public":
            return new ModelRepository(
                "model",
                {
                    repositoryName: c.repositoryName,
                    catalog: c.catalog,
                    forceDestroy: c.forceDestroy,
                    pushPrincipals: c.pushPrincipals,
                },
                opts,
            );
    }
}

/**
 * Pull credentials for a promotion source in this stack's own registry (private ECR of the same
 * account and region, or the local registry the user runs): the credentials this stack pushes
 * with. Any other source is read anonymously, as ECR Public allows.
 */
function withSourceCredentials(
    s: PromotionSourceArgs,
    c: StackConfig,
    ecrPrivate: EcrPrivate | undefined,
): PromotionSourceArgs {
    // The API origin this stack's credentials belong to: they are sent to a source only there.
    let access: { origin: pulumi.Input<string>; credentials: pulumi.Input<RegistryCredentials> };
    if (ecrPrivate) {
        access = {
            origin: pulumi.interpolate`https://${ecrPrivate.server}`,
            credentials: ecrPrivate.credentials,
        };
    } else if (c.registry === "local" && c.registryUrl && c.registryCredentials) {
        access = { origin: new URL(c.registryUrl).origin, credentials: localCredentials(c)! };
    } else {
        return s;
    }
    // Where the source is read: the API URL its stack exports, else https://<server>. The same
    // host under another scheme (http://) is another origin and gets no credentials.
    const sourceApi = apiUrlOf({ apiUrl: s.apiUrl, server: serverOf(s.repositoryUri) });
    return {
        ...s,
        // Else the source's own login, if its stack exports one (a local stack's registry).
        credentials: pulumi
            .all([sourceApi, access.origin, access.credentials, s.credentials])
            .apply(([api, origin, credentials, sourceLogin]) =>
                originOf(api) === originOf(origin) ? credentials : sourceLogin,
            ),
    };
}

/** `scheme://host[:port]` of a URL, with the default port dropped; "" when it is not a URL. */
function originOf(url: string): string {
    return URL.canParse(url) ? new URL(url).origin : "";
}

/** The credentials for a registry the user runs, as one secret. */
function localCredentials(c: StackConfig): pulumi.Output<RegistryCredentials> | undefined {
    if (!c.registryCredentials) return undefined;
    return secretCredentials(c.registryCredentials.username, c.registryCredentials.password);
}
