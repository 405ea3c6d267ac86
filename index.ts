import { loadConfig } from "./config";
import { ModelImage, ModelRepository } from "./components";

const config = loadConfig();

const repository = new ModelRepository(
    "model",
    {
        repositoryName: config.repositoryName,
        catalog: config.catalog,
        forceDestroy: config.forceDestroy,
        pushPrincipals: config.pushPrincipals,
    },
    { protect: config.protect },
);

const image = new ModelImage(
    "model",
    {
        registry: repository.registry,
        version: config.modelVersion,
        context: config.modelContext,
        dockerfile: config.dockerfile,
        platform: config.platform,
        baseImage: config.baseImage || undefined,
        sourceUrl: config.sourceUrl,
        revision: config.modelRevision,
    },
    { protect: config.protect },
);

export const repository_uri = repository.repositoryUri;
export const repository_name = repository.repositoryName;
export const model_version = image.version;
export const image_uri = image.imageUri;
export const image_ref = image.imageRef;
export const model_sha256 = image.modelSha256;
export const published_versions = image.publishedVersions;
