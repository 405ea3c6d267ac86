import { PolicyPack } from "@pulumi/policy";
import {
    DEFAULT_PROD_STACK_PATTERN,
    imageTagsAreSemver,
    privateEcrTagsImmutable,
    prodRepositoriesKeepImages,
    prodStacksOnlyPromote,
} from "./rules";

/** The production-stack pattern both production rules take from the pack's config. */
const prodStackConfig = {
    properties: {
        prodStackPattern: {
            type: "string" as const,
            default: DEFAULT_PROD_STACK_PATTERN,
            description:
                "Regular expression for the names of production stacks, matched without regard to case.",
        },
    },
};

new PolicyPack("model-registry", {
    policies: [
        {
            name: "image-tags-are-semver",
            description:
                "Container image tags are SemVer versions, never `latest` and never left out.",
            enforcementLevel: "mandatory",
            validateResource: (args, reportViolation) => imageTagsAreSemver(args, reportViolation),
        },
        {
            name: "prod-repositories-keep-images",
            description: "Repositories of production stacks do not set forceDestroy.",
            enforcementLevel: "mandatory",
            configSchema: prodStackConfig,
            validateResource: (args, reportViolation) =>
                prodRepositoriesKeepImages(
                    args,
                    reportViolation,
                    args.getConfig<{ prodStackPattern?: string }>().prodStackPattern,
                ),
        },
        {
            name: "private-ecr-tags-immutable",
            description: "Private ECR repositories use IMMUTABLE image tags.",
            enforcementLevel: "mandatory",
            validateResource: (args, reportViolation) =>
                privateEcrTagsImmutable(args, reportViolation),
        },
        {
            name: "prod-stacks-only-promote",
            description:
                "Production stacks promote an image another stack built (promoteFrom); they do not build.",
            // Optional: a warning unless the pack's config makes it mandatory.
            enforcementLevel: "advisory",
            configSchema: prodStackConfig,
            validateResource: (args, reportViolation) =>
                prodStacksOnlyPromote(
                    args,
                    reportViolation,
                    args.getConfig<{ prodStackPattern?: string }>().prodStackPattern,
                ),
        },
    ],
});
