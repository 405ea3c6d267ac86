import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import {
    CATALOG_LIMITS,
    checkCatalogList,
    checkCatalogText,
    checkRepositoryName,
    checkTags,
} from "../lib/validation";
import {
    ECR_PUBLIC_REGION,
    ECR_PUBLIC_SERVER,
    RegistryTarget,
    ecrPublicCredentials,
    principalChecks,
    pushOnlyPolicy,
    throwFirstProblem,
} from "./registry";

/**
 * Catalog data shown on the repository's ECR Public gallery page. Plain values: they are checked
 * against the AWS limits before anything is created.
 */
export interface ModelRepositoryCatalog {
    /** Short description, at most 1024 characters. Defaults to none. */
    readonly description?: string;
    /** Markdown "about" text, at most 25600 characters. Defaults to none. */
    readonly aboutText?: string;
    /**
     * Markdown usage text, at most 25600 characters. Defaults (also when empty) to a `docker pull`
     * example for this repository.
     */
    readonly usageText?: string;
    /** Architecture badges, at most 50 of 1-50 characters (`x86-64`, `ARM 64`, ...). Defaults to none. */
    readonly architectures?: readonly string[];
    /** Operating system badges, at most 50 of 1-50 characters (`Linux`, `Windows`). Defaults to none. */
    readonly operatingSystems?: readonly string[];
}

export interface ModelRepositoryArgs {
    /** ECR Public repository name: 2-205 characters, lower case, separators `._-/`. */
    readonly repositoryName: string;
    /** Gallery catalog data. Defaults to a usage text only. */
    readonly catalog?: ModelRepositoryCatalog;
    /**
     * Let `pulumi destroy` delete the repository while it still holds images (and so delete every
     * published version). Defaults to `false`: destroy fails with `RepositoryNotEmptyException`
     * instead, and no version is lost.
     */
    readonly forceDestroy?: boolean;
    /**
     * IAM principal ARNs (account root, user or role) allowed to push images, through a repository
     * policy that grants only the push actions. Defaults to none, and no policy is created.
     */
    readonly pushPrincipals?: readonly string[];
    /** AWS resource tags for the repository: at most 50. Defaults to none. */
    readonly tags?: Readonly<Record<string, string>>;
}

/** The repository policy actions a pusher needs, and nothing else. */
export const PUSH_ACTIONS = [
    "ecr-public:BatchCheckLayerAvailability",
    "ecr-public:CompleteLayerUpload",
    "ecr-public:InitiateLayerUpload",
    "ecr-public:PutImage",
    "ecr-public:UploadLayerPart",
] as const;

/**
 * An ECR Public repository for one model, with its gallery catalog data and optional push access.
 *
 * ECR Public exists only in us-east-1, so every resource and invoke here is pinned to that region
 * (the per-resource `region` of @pulumi/aws v7). This works from a stack whose `aws:region` is
 * elsewhere and keeps the stack's credentials settings (`aws:profile`, assumed roles), which a
 * separate explicit provider would not see. A provider passed in `opts` is used as is.
 */
export class ModelRepository extends pulumi.ComponentResource {
    /** `public.ecr.aws/<registry alias>/<name>`. */
    public readonly repositoryUri: pulumi.Output<string>;
    public readonly repositoryName: pulumi.Output<string>;
    public readonly arn: pulumi.Output<string>;
    public readonly registryId: pulumi.Output<string>;
    /** Where images for this repository are pushed, and with which credentials. */
    public readonly registry: RegistryTarget;

    constructor(name: string, args: ModelRepositoryArgs, opts?: pulumi.ComponentResourceOptions) {
        super("model-registry:index:ModelRepository", name, {}, opts);

        const catalog = args.catalog ?? {};
        const pushPrincipals = args.pushPrincipals ?? [];
        validate(args, catalog, pushPrincipals);

        // An empty usage text counts as not given (stack config passes "" for "use the default").
        const usageText = catalog.usageText
            ? catalog.usageText
            : defaultUsageText(args.repositoryName);
        const repository = new aws.ecrpublic.Repository(
            `${name}-repo`,
            {
                repositoryName: args.repositoryName,
                region: ECR_PUBLIC_REGION,
                forceDestroy: args.forceDestroy ?? false,
                catalogData: {
                    description: catalog.description || undefined,
                    aboutText: catalog.aboutText || undefined,
                    usageText: usageText || undefined,
                    architectures: catalog.architectures?.length
                        ? [...catalog.architectures]
                        : undefined,
                    operatingSystems: catalog.operatingSystems?.length
                        ? [...catalog.operatingSystems]
                        : undefined,
                },
                tags: args.tags ? { ...args.tags } : undefined,
            },
            { parent: this },
        );

        if (pushPrincipals.length > 0) {
            new aws.ecrpublic.RepositoryPolicy(
                `${name}-push-policy`,
                {
                    repositoryName: repository.repositoryName,
                    region: ECR_PUBLIC_REGION,
                    policy: JSON.stringify(pushOnlyPolicy(pushPrincipals, PUSH_ACTIONS)),
                },
                { parent: this },
            );
        }

        this.repositoryUri = repository.repositoryUri;
        this.repositoryName = repository.repositoryName;
        this.arn = repository.arn;
        this.registryId = repository.registryId;
        this.registry = {
            server: ECR_PUBLIC_SERVER,
            repositoryUri: repository.repositoryUri,
            credentials: ecrPublicCredentials(this),
        };

        this.registerOutputs({
            repositoryUri: this.repositoryUri,
            repositoryName: this.repositoryName,
            arn: this.arn,
            registryId: this.registryId,
        });
    }
}

/** The gallery usage text when none is given: how to pull a version, and to pin it by digest. */
export function defaultUsageText(repositoryName: string): string {
    const ref = `${ECR_PUBLIC_SERVER}/<registry-alias>/${repositoryName}`;
    return [
        "## Pulling a model version",
        "",
        "Every model version is published under its own tag, and a published tag never changes.",
        "",
        "```sh",
        `docker pull ${ref}:<version>`,
        "```",
        "",
        "For deployments, pin the digest that the publisher's `image_ref` output shows:",
        "",
        "```sh",
        `docker pull ${ref}@sha256:<digest>`,
        "```",
        "",
        "The container serves `GET /health` and `POST /predict` on port 8080.",
    ].join("\n");
}

function validate(
    args: ModelRepositoryArgs,
    catalog: ModelRepositoryCatalog,
    principals: readonly string[],
): void {
    throwFirstProblem([
        ["repositoryName", checkRepositoryName(args.repositoryName)],
        [
            "catalog.description",
            checkCatalogText(catalog.description ?? "", CATALOG_LIMITS.description),
        ],
        ["catalog.aboutText", checkCatalogText(catalog.aboutText ?? "", CATALOG_LIMITS.aboutText)],
        ["catalog.usageText", checkCatalogText(catalog.usageText ?? "", CATALOG_LIMITS.usageText)],
        ["catalog.architectures", checkCatalogList(catalog.architectures ?? [])],
        ["catalog.operatingSystems", checkCatalogList(catalog.operatingSystems ?? [])],
        ["tags", checkTags(args.tags ?? {})],
        ...principalChecks(principals, { ecrPublic: true }),
    ]);
}
