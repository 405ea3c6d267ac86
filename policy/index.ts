import { PolicyPack, ReportViolation, ResourceValidationArgs } from "@pulumi/policy";
import {
    DEFAULT_PROD_STACK_PATTERN,
    imageTagsAreSemver,
    privateEcrTagsImmutable,
    prodRepositoriesKeepImages,
    prodStacksOnlyPromote,
} from "./rules";

/** A production rule's config (the production-stack pattern), and the rule run with it. */
function prodStackRule(rule: typeof prodStacksOnlyPromote) {
    return {
        configSchema: {
            properties: {
                prodStackPattern: {
                    type: "string" as const,
                    default: DEFAULT_PROD_STACK_PATTERN,
                    description:
                        "Regular expression for the names of production stacks, matched without regard to case.",
                },
            },
        },
        validateResource: (args: ResourceValidationArgs, reportViolation: ReportViolation) =>
            rule(
                args,
                reportViolation,
                args.getConfig<{ prodStackPattern?: string }>().prodStackPattern,
            ),
    };
}

new PolicyPack("model-registry", {
    policies: [
        {
            name: "image-tags-are-semver",
            description:
                "Container image tags are SemVer versions, never `latest` and never left out.",
            enforcementLevel: "mandatory",
            validateResource: imageTagsAreSemver,
        },
        {
            name: "prod-repositories-keep-images",
            description: "Repositories of production stacks do not set forceDestroy.",
            enforcementLevel: "mandatory",
            ...prodStackRule(prodRepositoriesKeepImages),
        },
        {
            name: "private-ecr-tags-immutable",
            description: "Private ECR repositories use IMMUTABLE image tags.",
            enforcementLevel: "mandatory",
            validateResource: privateEcrTagsImmutable,
        },
        {
            name: "prod-stacks-only-promote",
            description:
                "Production stacks promote an image another stack built (promoteFrom); they do not build.",
            // Optional: a warning unless the pack's config makes it mandatory.
            enforcementLevel: "advisory",
            ...prodStackRule(prodStacksOnlyPromote),
        },
    ],
});
