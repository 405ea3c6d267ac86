/**
 * The AWS IAM actions this program needs, derived from what it registers: each custom resource
 * type and each invoke maps to the actions its provider calls, and each resource that talks to the
 * registry (docker push, the tag guard, the publication record, a promotion) maps to registry
 * operations, which map to IAM actions per registry. `iam/deployer-*.json` must grant exactly the
 * union of these for every configuration (test/iamPolicy.test.ts), so a new resource or invoke
 * cannot reach AWS without its actions being added here first.
 *
 * Sources: the AWS provider's CRUD code (hashicorp/terraform-provider-aws,
 * `internal/service/ecrpublic/{repository,repository_policy,tags_gen}.go` and
 * `internal/service/ecr/{repository,lifecycle_policy,repository_policy}.go`, which @pulumi/aws
 * wraps), the ECR and ECR Public service authorization reference (CreateRepository with tags also
 * authorizes `TagResource`; GetAuthorizationToken takes no resource ARN), the ECR Public API
 * reference (GetAuthorizationToken "requires the ecr-public:GetAuthorizationToken and
 * sts:GetServiceBearerToken permissions"), and the ECR user guide, "Encryption at rest: Required
 * IAM permissions" (`kms:CreateGrant`, `kms:RetireGrant`, `kms:DescribeKey` for a repository
 * encrypted with a customer managed key).
 */

/** A registry this program can publish to through AWS. */
export type AwsTarget = "ecr-public" | "ecr-private";

/** What an action can be scoped to in a policy's `Resource`. */
export type ActionScope = "repository" | "kms-key" | "unscoped";

/** The AWS actions one resource type's provider calls in each step of its life. */
export interface ResourceActions {
    readonly target: AwsTarget;
    readonly create: readonly string[];
    readonly read: readonly string[];
    readonly update: readonly string[];
    readonly delete: readonly string[];
    /** Further actions that only some inputs need (a customer managed KMS key). */
    readonly byInputs?: (inputs: Record<string, unknown>) => readonly string[];
}

/** An operation of the OCI Distribution API against the stack's own repository. */
export type RegistryOperation = "push" | "pull";

const PUBLIC_REPOSITORY_READ = [
    "ecr-public:DescribeRepositories",
    "ecr-public:GetRepositoryCatalogData",
    "ecr-public:ListTagsForResource",
];

const PRIVATE_REPOSITORY_READ = ["ecr:DescribeRepositories", "ecr:ListTagsForResource"];

/** Actions a repository encrypted with a customer managed key needs, on that key. */
export const KMS_KEY_ACTIONS = ["kms:CreateGrant", "kms:DescribeKey", "kms:RetireGrant"] as const;

/** True when an `aws.ecr.Repository`'s inputs encrypt it with a KMS key. */
function usesKms(inputs: Record<string, unknown>): boolean {
    const configs = inputs.encryptionConfigurations;
    const list = Array.isArray(configs) ? configs : configs ? [configs] : [];
    return list.some(
        (c) =>
            typeof c === "object" &&
            c !== null &&
            String((c as Record<string, unknown>).encryptionType ?? "").startsWith("KMS"),
    );
}

/** Every AWS resource type the program may register, with the actions its provider calls. */
export const RESOURCE_ACTIONS: Readonly<Record<string, ResourceActions>> = {
    // Create sends the tags with CreateRepository, which authorizes TagResource as well; every
    // create and update ends with a read. Update: PutRepositoryCatalogData, and the tags diff
    // (UntagResource for removed keys, TagResource for the rest). Delete: DeleteRepository
    // (with `force` from forceDestroy: no image is listed or deleted first), then
    // DescribeRepositories until the repository is gone.
    "aws:ecrpublic/repository:Repository": {
        target: "ecr-public",
        create: [
            "ecr-public:CreateRepository",
            "ecr-public:TagResource",
            ...PUBLIC_REPOSITORY_READ,
        ],
        read: PUBLIC_REPOSITORY_READ,
        update: [
            "ecr-public:PutRepositoryCatalogData",
            "ecr-public:TagResource",
            "ecr-public:UntagResource",
            ...PUBLIC_REPOSITORY_READ,
        ],
        delete: ["ecr-public:DeleteRepository", "ecr-public:DescribeRepositories"],
    },
    // Create and update are one SetRepositoryPolicy, then a read.
    "aws:ecrpublic/repositoryPolicy:RepositoryPolicy": {
        target: "ecr-public",
        create: ["ecr-public:SetRepositoryPolicy", "ecr-public:GetRepositoryPolicy"],
        read: ["ecr-public:GetRepositoryPolicy"],
        update: ["ecr-public:SetRepositoryPolicy", "ecr-public:GetRepositoryPolicy"],
        delete: ["ecr-public:DeleteRepositoryPolicy"],
    },
    // Create: CreateRepository carries tag mutability, scan on push, encryption and tags. Update:
    // PutImageTagMutability, PutImageScanningConfiguration, the tags diff; encryption changes
    // replace the repository. Delete: DeleteRepository (`force` from forceDelete), then
    // DescribeRepositories until it is gone.
    "aws:ecr/repository:Repository": {
        target: "ecr-private",
        create: ["ecr:CreateRepository", "ecr:TagResource", ...PRIVATE_REPOSITORY_READ],
        read: PRIVATE_REPOSITORY_READ,
        update: [
            "ecr:PutImageTagMutability",
            "ecr:PutImageScanningConfiguration",
            "ecr:TagResource",
            "ecr:UntagResource",
            ...PRIVATE_REPOSITORY_READ,
        ],
        delete: ["ecr:DeleteRepository", "ecr:DescribeRepositories"],
        // ECR creates two grants on the key at creation and retires them at deletion, in the
        // caller's name.
        byInputs: (inputs) => (usesKms(inputs) ? KMS_KEY_ACTIONS : []),
    },
    // No update: a new policy text replaces the resource.
    "aws:ecr/lifecyclePolicy:LifecyclePolicy": {
        target: "ecr-private",
        create: ["ecr:PutLifecyclePolicy", "ecr:GetLifecyclePolicy"],
        read: ["ecr:GetLifecyclePolicy"],
        update: [],
        delete: ["ecr:DeleteLifecyclePolicy"],
    },
    "aws:ecr/repositoryPolicy:RepositoryPolicy": {
        target: "ecr-private",
        create: ["ecr:SetRepositoryPolicy", "ecr:GetRepositoryPolicy"],
        read: ["ecr:GetRepositoryPolicy"],
        update: ["ecr:SetRepositoryPolicy", "ecr:GetRepositoryPolicy"],
        delete: ["ecr:DeleteRepositoryPolicy"],
    },
};

/** Every AWS invoke the program may call, with the actions it needs. */
export const INVOKE_ACTIONS: Readonly<Record<string, readonly string[]>> = {
    "aws:ecrpublic/getAuthorizationToken:getAuthorizationToken": [
        "ecr-public:GetAuthorizationToken",
        "sts:GetServiceBearerToken",
    ],
    "aws:ecr/getAuthorizationToken:getAuthorizationToken": ["ecr:GetAuthorizationToken"],
};

/**
 * Custom resources that are not AWS resources, with the registry operations they perform on the
 * stack's repository. A promotion's source check and copy also read the source repository: ECR
 * Public sources anonymously; a private source needs its own read grant unless it matches the
 * policy's repository pattern.
 */
export const REGISTRY_OPERATIONS: Readonly<Record<string, readonly RegistryOperation[]>> = {
    "docker:index/image:Image": ["push"],
    "pulumi-nodejs:dynamic/model-registry:TagGuard": ["pull"],
    "pulumi-nodejs:dynamic/model-registry:PublicationRecord": ["pull"],
    "pulumi-nodejs:dynamic/model-registry:ImagePromotion": ["push", "pull"],
    "pulumi-nodejs:dynamic/model-registry:PromotionSourceCheck": ["pull"],
    "pulumi:pulumi:StackReference": [],
    // The `local` target: a registry container on the Docker engine, no AWS.
    "docker:index/container:Container": [],
    "docker:index/volume:Volume": [],
    "docker:index/remoteImage:RemoteImage": [],
};

/**
 * The IAM actions behind each registry operation. ECR Public repositories are readable by anyone
 * (ECR Public has no pull actions at all); a private repository needs BatchGetImage (manifests)
 * and GetDownloadUrlForLayer (blobs). Pushing checks layers, uploads them and puts the manifest.
 */
export const REGISTRY_ACTIONS: Readonly<
    Record<AwsTarget, Readonly<Record<RegistryOperation, readonly string[]>>>
> = {
    "ecr-public": {
        push: [
            "ecr-public:BatchCheckLayerAvailability",
            "ecr-public:CompleteLayerUpload",
            "ecr-public:InitiateLayerUpload",
            "ecr-public:PutImage",
            "ecr-public:UploadLayerPart",
        ],
        pull: [],
    },
    "ecr-private": {
        push: [
            "ecr:BatchCheckLayerAvailability",
            "ecr:CompleteLayerUpload",
            "ecr:InitiateLayerUpload",
            "ecr:PutImage",
            "ecr:UploadLayerPart",
        ],
        pull: ["ecr:BatchGetImage", "ecr:GetDownloadUrlForLayer"],
    },
};

/** Actions that accept no resource ARN (the service authorization reference lists none). */
const UNSCOPED_ACTIONS = new Set([
    "ecr-public:GetAuthorizationToken",
    "sts:GetServiceBearerToken",
    "ecr:GetAuthorizationToken",
]);

/** Where an action can be scoped: the repository, the KMS key, or nowhere (`"*"`). */
export function scopeOf(action: string): ActionScope {
    if (UNSCOPED_ACTIONS.has(action)) return "unscoped";
    if (action.startsWith("kms:")) return "kms-key";
    return "repository";
}

/**
 * The repository ARN pattern of each target's deployer policy. `ACCOUNT_ID` and `REGION` are
 * placeholders the user replaces; `model-registry-*` matches the derived repository names
 * (`<project>-<stack>`).
 */
export const REPOSITORY_ARN_PATTERN: Readonly<Record<AwsTarget, string>> = {
    "ecr-public": "arn:aws:ecr-public::ACCOUNT_ID:repository/model-registry-*",
    "ecr-private": "arn:aws:ecr:REGION:ACCOUNT_ID:repository/model-registry-*",
};

/** The customer managed key of an encrypted private repository (placeholders as above). */
export const KMS_KEY_ARN_PATTERN = "arn:aws:kms:REGION:ACCOUNT_ID:key/KMS_KEY_ID";

/** The placeholders in the policy files, each to be replaced by the user. */
export const PLACEHOLDERS = ["ACCOUNT_ID", "REGION", "KMS_KEY_ID"] as const;

/** A custom resource or an invoke the program registered. */
export interface Registered {
    readonly resources: readonly {
        readonly type: string;
        readonly custom: boolean;
        readonly inputs: Record<string, unknown>;
    }[];
    readonly invokes: readonly { readonly token: string }[];
}

/** Needed actions, each with what needs it. */
export type NeededActions = Map<string, string[]>;

/**
 * Every AWS action the registered resources and invokes need over their whole life (create,
 * read, update, delete), and the registry actions of the targets whose repository was
 * registered. Throws for a custom resource type or invoke that is not in the tables.
 */
export function requiredActions(registered: Registered): NeededActions {
    const needed: NeededActions = new Map();
    const add = (actions: readonly string[], why: string) => {
        for (const action of actions) needed.set(action, [...(needed.get(action) ?? []), why]);
    };
    const unknown: string[] = [];
    const targets = new Set<AwsTarget>();
    const operations: [RegistryOperation, string][] = [];

    for (const r of registered.resources) {
        if (!r.custom || r.type.startsWith("pulumi:providers:")) continue;
        const aws = RESOURCE_ACTIONS[r.type];
        if (aws) {
            targets.add(aws.target);
            for (const step of ["create", "read", "update", "delete"] as const) {
                add(aws[step], `${r.type} ${step}`);
            }
            add(aws.byInputs?.(r.inputs) ?? [], `${r.type} inputs`);
            continue;
        }
        const ops = REGISTRY_OPERATIONS[r.type];
        if (ops && !r.type.startsWith("aws:")) {
            for (const op of ops) operations.push([op, r.type]);
            continue;
        }
        unknown.push(`resource ${r.type}`);
    }
    for (const i of registered.invokes) {
        const actions = INVOKE_ACTIONS[i.token];
        if (actions === undefined) unknown.push(`invoke ${i.token}`);
        else add(actions, `invoke ${i.token}`);
    }
    if (unknown.length > 0) {
        throw new Error(
            `no IAM actions are known for ${[...new Set(unknown)].join(", ")}: add its actions to ` +
                `the table in lib/iamActions.ts (and to iam/deployer-*.json)`,
        );
    }
    for (const target of targets) {
        for (const [op, type] of operations) add(REGISTRY_ACTIONS[target][op], `${type} ${op}`);
    }
    return needed;
}

/**
 * IAM's wildcard match for a `Resource` ARN: `*` matches any run of characters (also `/`), `?`
 * one character, everything else itself, case-sensitively.
 */
export function arnMatches(pattern: string, arn: string): boolean {
    const re = pattern
        .split("")
        .map((c) =>
            c === "*" ? ".*" : c === "?" ? "." : c.replace(/[.*+?^${}()|[\]\\/]/g, "\\$&"),
        )
        .join("");
    return new RegExp(`^${re}$`).test(arn);
}
