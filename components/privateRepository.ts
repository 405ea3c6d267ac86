import * as aws from "@pulumi/aws";
import * as pulumi from "@pulumi/pulumi";
import { checkKmsKeyArn, checkRepositoryName, checkTags } from "../lib/validation";
import {
    RegistryCredentials,
    RegistryTarget,
    principalChecks,
    pushOnlyPolicy,
    secretCredentials,
    serverOf,
    throwFirstProblem,
} from "./registry";

export interface PrivateModelRepositoryArgs {
    /** Repository name: lower case, separators `._-/`. */
    readonly repositoryName: string;
    /**
     * Let `pulumi destroy` delete the repository while it still holds images (and so every
     * published version). Defaults to `false`: destroy fails with `RepositoryNotEmptyException`.
     */
    readonly forceDestroy?: boolean;
    /** IAM principal ARNs allowed to push, through a repository policy. Defaults to none. */
    readonly pushPrincipals?: readonly string[];
    /** ARN of the KMS key that encrypts the repository. Defaults to AES256 (an AWS owned key). */
    readonly kmsKey?: string;
    /** Days after which an untagged image (never a version tag) expires. Defaults to 14. */
    readonly untaggedExpiryDays?: number;
    /** AWS resource tags for the repository: at most 50. Defaults to none. */
    readonly tags?: Readonly<Record<string, string>>;
    /**
     * Push credentials, when the caller already holds a token for the account's registry (see
     * `ecrPrivateCredentials`). Defaults to a token fetched here.
     */
    readonly credentials?: pulumi.Input<RegistryCredentials>;
}

/** The repository policy actions a pusher needs, and nothing else. */
export const PRIVATE_PUSH_ACTIONS = [
    "ecr:BatchCheckLayerAvailability",
    "ecr:CompleteLayerUpload",
    "ecr:InitiateLayerUpload",
    "ecr:PutImage",
    "ecr:UploadLayerPart",
] as const;

/**
 * A private ECR repository for one model, in the stack's `aws:region`, with the registry's own
 * tag immutability: `IMMUTABLE` makes ECR refuse any push that would move a tag, whatever pushes
 * it. The program's guard still runs first, so such a push is refused before the build with a
 * message that says why, instead of ECR's late `ImageTagAlreadyExistsException`.
 *
 * Images are scanned on push and encrypted (AES256, or the KMS key given). A lifecycle policy
 * expires only untagged images (layers of interrupted or superseded pushes): its one rule selects
 * `tagStatus: untagged`, which never matches an image that carries a tag.
 */
export class PrivateModelRepository extends pulumi.ComponentResource {
    /** `<account>.dkr.ecr.<region>.amazonaws.com/<name>`. */
    public readonly repositoryUri: pulumi.Output<string>;
    public readonly repositoryName: pulumi.Output<string>;
    public readonly arn: pulumi.Output<string>;
    public readonly registryId: pulumi.Output<string>;
    /** Where images for this repository are pushed, and with which credentials. */
    public readonly registry: RegistryTarget;

    constructor(
        name: string,
        args: PrivateModelRepositoryArgs,
        opts?: pulumi.ComponentResourceOptions,
    ) {
        super("model-registry:index:PrivateModelRepository", name, {}, opts);

        const pushPrincipals = args.pushPrincipals ?? [];
        const expiryDays = args.untaggedExpiryDays ?? 14;
        validate(args, pushPrincipals, expiryDays);

        const repository = new aws.ecr.Repository(
            `${name}-repo`,
            {
                name: args.repositoryName,
                imageTagMutability: "IMMUTABLE",
                imageScanningConfiguration: { scanOnPush: true },
                encryptionConfigurations: [
                    args.kmsKey
                        ? { encryptionType: "KMS", kmsKey: args.kmsKey }
                        : { encryptionType: "AES256" },
                ],
                forceDelete: args.forceDestroy ?? false,
                tags: args.tags ? { ...args.tags } : undefined,
            },
            { parent: this },
        );

        new aws.ecr.LifecyclePolicy(
            `${name}-lifecycle`,
            {
                repository: repository.name,
                policy: JSON.stringify(untaggedOnlyLifecyclePolicy(expiryDays)),
            },
            { parent: this },
        );

        if (pushPrincipals.length > 0) {
            new aws.ecr.RepositoryPolicy(
                `${name}-push-policy`,
                {
                    repository: repository.name,
                    policy: JSON.stringify(pushOnlyPolicy(pushPrincipals, PRIVATE_PUSH_ACTIONS)),
                },
                { parent: this },
            );
        }

        this.repositoryUri = repository.repositoryUrl;
        this.repositoryName = repository.name;
        this.arn = repository.arn;
        this.registryId = repository.registryId;
        this.registry = {
            server: serverOf(repository.repositoryUrl),
            repositoryUri: repository.repositoryUrl,
            credentials: args.credentials ?? ecrPrivateCredentials(this).credentials,
        };

        this.registerOutputs({
            repositoryUri: this.repositoryUri,
            repositoryName: this.repositoryName,
            arn: this.arn,
            registryId: this.registryId,
        });
    }
}

/**
 * Push and pull credentials for the account's private registry in the stack's region: a 12-hour
 * token from `ecr:GetAuthorizationToken`, and the registry server that token is for.
 */
export function ecrPrivateCredentials(parent?: pulumi.Resource): {
    credentials: pulumi.Output<RegistryCredentials>;
    server: pulumi.Output<string>;
} {
    const token = aws.ecr.getAuthorizationTokenOutput({}, parent ? { parent } : undefined);
    return {
        credentials: secretCredentials(token.userName, token.password),
        server: token.proxyEndpoint.apply((endpoint) => endpoint.replace(/^https?:\/\//, "")),
    };
}

/** A lifecycle policy whose only rule expires untagged images: a version tag is never selected. */
export function untaggedOnlyLifecyclePolicy(days: number) {
    return {
        rules: [
            {
                rulePriority: 1,
                description: `Expire untagged images ${days} days after push; tagged versions are never selected`,
                selection: {
                    tagStatus: "untagged",
                    countType: "sinceImagePushed",
                    countUnit: "days",
                    countNumber: days,
                },
                action: { type: "expire" },
            },
        ],
    };
}

function validate(
    args: PrivateModelRepositoryArgs,
    principals: readonly string[],
    expiryDays: number,
): void {
    throwFirstProblem([
        ["repositoryName", checkRepositoryName(args.repositoryName)],
        ["tags", checkTags(args.tags ?? {})],
        [
            "untaggedExpiryDays",
            Number.isInteger(expiryDays) && expiryDays >= 1
                ? undefined
                : { reason: "expected a whole number of days, at least 1" },
        ],
        ["kmsKey", args.kmsKey === undefined ? undefined : checkKmsKeyArn(args.kmsKey)],
        ...principalChecks(principals),
    ]);
}
