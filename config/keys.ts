/**
 * The keys the program reads, each with the type and default Pulumi.yaml declares for it, and the
 * validated config they become (`StackConfig`).
 */
import * as pulumi from "@pulumi/pulumi";
import { PromotionSource } from "../lib/publication/promotion";

/** The stack's configuration, validated, with every default applied. */
export interface StackConfig {
    /** The version to publish, also the image tag (SemVer 2.0.0). */
    readonly modelVersion: string;
    /** ECR Public repository name. */
    readonly repositoryName: string;
    /** Path of the model image's build context, relative to the project directory. */
    readonly modelContext: string;
    /** Path of the Dockerfile, relative to the build context. */
    readonly dockerfile: string;
    /** Build platform, `os/arch[/variant]`, in its one spelling (`linux/arm64/v8` is `linux/arm64`). */
    readonly platform: string;
    /** Base image passed as the `BASE_IMAGE` build arg; empty keeps the Dockerfile's default. */
    readonly baseImage: string;
    /** Catalog data shown in the ECR Public gallery. */
    readonly catalog: {
        readonly description: string;
        readonly aboutText: string;
        /** Empty: the repository component writes a `docker pull` example. */
        readonly usageText: string;
        readonly architectures: readonly string[];
        readonly operatingSystems: readonly string[];
    };
    /** Let `pulumi destroy` delete the repository with its images. */
    readonly forceDestroy: boolean;
    /** Protect the repository and image resources from deletion by Pulumi. */
    readonly protect: boolean;
    /** IAM principal ARNs allowed to push to the repository. */
    readonly pushPrincipals: readonly string[];
    /** URL of the source the image is built from (label `org.opencontainers.image.source`). */
    readonly sourceUrl: string;
    /** Revision of that source (label `org.opencontainers.image.revision`). */
    readonly modelRevision: string;
    /** Where this stack promotes versions from instead of building; undefined: it builds. */
    readonly promoteFrom: PromotionSource | undefined;
    /** Which kind of registry the stack publishes to. */
    readonly registry: RegistryKind;
    /** `local` only: a registry the user already runs (its API URL); undefined: the stack runs one. */
    readonly registryUrl: string | undefined;
    /** `local` with `registryUrl` only: credentials for that registry; undefined: anonymous. */
    readonly registryCredentials: { username: string; password: pulumi.Output<string> } | undefined;
    /** `local` only: the registry image the stack runs, and the 127.0.0.1 port it listens on. */
    readonly localRegistry: { readonly image: string; readonly port: number };
    /** `ecr-private` only: KMS key ARN for the repository's encryption; undefined: AES256. */
    readonly kmsKey: string | undefined;
    /** Tampered versions the user accepts, by version: what the registry holds now. */
    readonly acknowledgedTampering: Readonly<Record<string, string>>;
}

/** The project and the stack whose config is read. */
export interface StackName {
    readonly project: string;
    readonly stack: string;
}

/** The registries a stack can publish to. */
export const REGISTRY_KINDS = ["ecr-public", "ecr-private", "local"] as const;
export type RegistryKind = (typeof REGISTRY_KINDS)[number];

export interface KeySpec {
    readonly kind: "string" | "boolean" | "array" | "integer";
    /** The default, as the engine would pass it (Pulumi.yaml declares the same). */
    readonly default: string | boolean | number | readonly string[] | undefined;
    /**
     * What the fix shows after `pulumi config set <key>` when no value can be derived from the
     * bad one: a placeholder in angle brackets, never an example value (which could be the
     * opposite of what the user meant).
     */
    readonly placeholder: string;
}

/**
 * Every key the program reads, with its default. `Pulumi.yaml` declares the same keys and
 * defaults (a test holds the two together). The CLI writes each declared default into the
 * config it hands the program, so a default and an unset key look the same here: a value equal
 * to its default counts as not set.
 */
export const CONFIG_KEYS = {
    modelVersion: { kind: "string", default: undefined, placeholder: "<version>" },
    repositoryName: { kind: "string", default: "", placeholder: "<name>" },
    modelContext: { kind: "string", default: "model", placeholder: "<directory>" },
    dockerfile: { kind: "string", default: "Dockerfile", placeholder: "<file>" },
    platform: { kind: "string", default: "linux/amd64", placeholder: "<os/arch>" },
    baseImage: { kind: "string", default: "", placeholder: "<image>" },
    description: { kind: "string", default: "", placeholder: "<text>" },
    aboutText: { kind: "string", default: "", placeholder: "<markdown>" },
    usageText: { kind: "string", default: "", placeholder: "<markdown>" },
    architectures: { kind: "array", default: [], placeholder: "<badge>" },
    operatingSystems: { kind: "array", default: ["Linux"], placeholder: "<badge>" },
    forceDestroy: { kind: "boolean", default: false, placeholder: "<true|false>" },
    protect: { kind: "boolean", default: false, placeholder: "<true|false>" },
    pushPrincipals: { kind: "array", default: [], placeholder: "<principal-arn>" },
    sourceUrl: { kind: "string", default: "", placeholder: "<url>" },
    modelRevision: { kind: "string", default: "", placeholder: "<revision>" },
    promoteFrom: { kind: "string", default: "", placeholder: "<stack-or-repository>" },
    registry: {
        kind: "string",
        default: "ecr-public",
        placeholder: "<ecr-public|ecr-private|local>",
    },
    registryUrl: { kind: "string", default: "", placeholder: "<url>" },
    registryUsername: { kind: "string", default: "", placeholder: "<user>" },
    registryPassword: { kind: "string", default: "", placeholder: "<password>" },
    localRegistryImage: { kind: "string", default: "registry:2", placeholder: "<image>" },
    localRegistryPort: { kind: "integer", default: 5000, placeholder: "<port>" },
    kmsKey: { kind: "string", default: "", placeholder: "<kms-key-arn>" },
    acknowledgedTampering: {
        kind: "array",
        default: [],
        placeholder: "<version>=<sha256:digest|absent|unclaim:hex>",
    },
} as const satisfies Record<string, KeySpec>;

export type ConfigKey = keyof typeof CONFIG_KEYS;

/** Keys declared `secret: true` in Pulumi.yaml: read as a secret Output, never shown in messages. */
export const SECRET_KEYS: ReadonlySet<ConfigKey> = new Set<ConfigKey>(["registryPassword"]);

/** Raw config text by key, as `pulumi.Config.get` returns it (arrays are JSON text). */
export type RawConfig = Partial<Record<ConfigKey, string>>;
