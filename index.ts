import { loadConfig } from "./config";
import {
    ModelImage,
    ModelRepository,
    PromotedImage,
    PromotionSourceCheck,
    promotionSourceArgs,
} from "./components";

const config = loadConfig();

// A stack with promoteFrom publishes that source's exact image by digest; the others build. A
// version the source has not published stops the run before anything is created.
const source = config.promoteFrom ? promotionSourceArgs(config.promoteFrom) : undefined;
const sourceCheck = source
    ? new PromotionSourceCheck("model-source", { source, version: config.modelVersion })
    : undefined;

const repository = new ModelRepository(
    "model",
    {
        repositoryName: config.repositoryName,
        catalog: config.catalog,
        forceDestroy: config.forceDestroy,
        pushPrincipals: config.pushPrincipals,
    },
    { protect: config.protect, dependsOn: sourceCheck ? [sourceCheck] : [] },
);

const image = source
    ? new PromotedImage(
          "model",
          {
              registry: repository.registry,
              version: config.modelVersion,
              platform: config.platform,
              source,
          },
          { protect: config.protect },
      )
    : new ModelImage(
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
