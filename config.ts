import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import {
    CATALOG_LIMITS,
    PLATFORMS,
    Problem,
    checkCatalogList,
    checkCatalogText,
    checkImageReference,
    checkModelVersion,
    checkPlatform,
    checkPrincipalArn,
    checkRepositoryName,
    editDistance,
    firstDuplicate,
    normalizePlatform,
    toRepositoryName,
} from "./lib/validation";
import { PromotionSource, parsePromotionSource } from "./lib/publication/promotion";
import { withoutCredentials } from "./lib/oci/errors";
import { isLoopbackHost } from "./lib/oci/proxy";

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

/** The registries a stack can publish to. */
export const REGISTRY_KINDS = ["ecr-public", "ecr-private", "local"] as const;
export type RegistryKind = (typeof REGISTRY_KINDS)[number];

type Kind = "string" | "boolean" | "array" | "integer";

interface KeySpec {
    readonly kind: Kind;
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

/** Keys declared `secret: true` in Pulumi.yaml: read with `getSecret`, never shown in messages. */
export const SECRET_KEYS: ReadonlySet<ConfigKey> = new Set<ConfigKey>(["registryPassword"]);

/** Raw config text by key, as `pulumi.Config.get` returns it (arrays are JSON text). */
export type RawConfig = Partial<Record<ConfigKey, string>>;

interface ConfigProblem extends Problem {
    /** The key as written in the stack's config (an unknown key is reported as it is spelt). */
    readonly key: string;
    /** The value as the user wrote it; undefined when the key is not set. */
    readonly value: string | undefined;
    /** Replaces `= "<value>"` / `is not set` after the key (an unknown key's value is not read). */
    readonly shown?: string;
    /** The whole fix, when it is not one `pulumi config set` of the key (several commands, `rm`). */
    readonly fix?: string;
}

/** Reads the current stack's config, as the CLI hands it over. Throws a `RunError` on bad input. */
export function loadConfig(): StackConfig {
    return readConfig(pulumi.runtime.allConfig(), isSecretConfig, {
        project: pulumi.getProject(),
        stack: pulumi.getStack(),
    });
}

/**
 * The stack's config from the text of every key the CLI passed (`<namespace>:<key>`, with each
 * declared default written in) and which of them the user set as secrets.
 */
export function readConfig(
    all: Readonly<Record<string, string>>,
    isSecret: (fullKey: string) => boolean,
    ctx: { project: string; stack: string },
): StackConfig {
    const raw: RawConfig = {};
    for (const key of Object.keys(CONFIG_KEYS) as ConfigKey[]) {
        const value = all[`${ctx.project}:${key}`];
        if (value !== undefined && !SECRET_KEYS.has(key)) raw[key] = value;
    }
    // A value the user set with --secret on any key is never shown in a message.
    const secretValues = new Set(
        (Object.keys(CONFIG_KEYS) as ConfigKey[]).filter((key) =>
            isSecret(`${ctx.project}:${key}`),
        ),
    );
    // The password becomes a secret Output, so it stays encrypted in the state and masked in
    // output. Its declared default, "", is no password.
    const password = all[`${ctx.project}:registryPassword`] ?? "";
    // Only the names of the keys that are set: a misspelt key is reported by name, its value
    // (which may be a secret) is never read.
    return parseConfig(
        raw,
        ctx,
        password === "" ? undefined : pulumi.secret(password),
        Object.keys(all),
        secretValues,
    );
}

/**
 * Whether the user set `<namespace>:<key>` with `--secret`. The engine passes those keys to the
 * program (PULUMI_CONFIG_SECRET_KEYS); the SDK reads them with `isConfigSecret`, which it does
 * not export in its typings, so the environment variable is the fallback.
 */
function isSecretConfig(fullKey: string): boolean {
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const runtimeConfig = require("@pulumi/pulumi/runtime/config") as {
        isConfigSecret?: (key: string) => boolean;
    };
    if (typeof runtimeConfig.isConfigSecret === "function") {
        return runtimeConfig.isConfigSecret(fullKey);
    }
    try {
        const keys: unknown = JSON.parse(process.env.PULUMI_CONFIG_SECRET_KEYS ?? "[]");
        return Array.isArray(keys) && keys.includes(fullKey);
    } catch {
        return false;
    }
}

/**
 * Validates raw config text and applies defaults. Every problem is collected, so the user sees
 * all of them in one message, each with the command that fixes it.
 *
 * `setKeys` are the full names of every key set for the stack (`<namespace>:<key>`, as
 * `pulumi.runtime.allConfig()` lists them); a key of this project's namespace that the program
 * does not read (`model-registry:modelversion`) is reported with the key that was probably meant.
 */
export function parseConfig(
    raw: RawConfig,
    ctx: { project: string; stack: string },
    registryPassword?: pulumi.Output<string>,
    setKeys: readonly string[] = [],
    secretValues: ReadonlySet<string> = new Set(),
): StackConfig {
    const problems: ConfigProblem[] = [];
    const fail = (
        key: ConfigKey,
        value: string | undefined,
        p: Problem & { fix?: string },
        index?: number,
    ) => problems.push({ ...p, key, value, index: index ?? p.index });

    // The CLI writes every declared default into the config, so a value equal to its default
    // is as good as not set.
    const isSet = (key: ConfigKey): boolean =>
        key === "registryPassword"
            ? registryPassword !== undefined
            : raw[key] !== undefined && !isDefault(key, raw[key]);

    // Keys of this project that the program does not read: most likely misspelt.
    const unknown = unknownKeyProblems(setKeys, ctx.project, isSet);
    problems.push(...unknown.problems);

    if (registryPassword !== undefined && !secretValues.has("registryPassword")) {
        problems.push({
            key: "registryPassword",
            value: undefined,
            shown: "is set in plain text",
            reason: "a password is kept only as a secret (encrypted in the stack file, masked in output); set it again with --secret, which prompts for it",
            fix: "pulumi config set --secret registryPassword",
        });
    }

    const str = (key: ConfigKey): string => {
        const spec = CONFIG_KEYS[key];
        return raw[key] ?? (typeof spec.default === "string" ? spec.default : "");
    };
    const bool = (key: ConfigKey): boolean => {
        const text = raw[key];
        if (text === undefined) return (CONFIG_KEYS[key] as KeySpec).default === true;
        if (text === "true" || text === "false") return text === "true";
        fail(key, text, { reason: "expected true or false", suggestion: booleanMeant(text) });
        return false;
    };
    const list = (key: ConfigKey): string[] => {
        const text = raw[key];
        const fallback = CONFIG_KEYS[key].default;
        if (text === undefined) return Array.isArray(fallback) ? [...fallback] : [];
        let parsed: unknown;
        try {
            parsed = JSON.parse(text);
        } catch {
            parsed = undefined;
        }
        if (!Array.isArray(parsed) || !parsed.every((x) => typeof x === "string")) {
            // A plain value where a list belongs: the list of that one value was meant.
            const item = typeof parsed === "string" ? parsed : parsed === undefined ? text : "";
            fail(key, text, {
                reason: "expected a list of strings (set items with --path, as below)",
                fix:
                    `pulumi config rm ${key} && pulumi config set --path '${key}[0]' ` +
                    (item.trim() !== "" ? shellWord(item) : CONFIG_KEYS[key].placeholder),
            });
            return [];
        }
        return parsed as string[];
    };

    // modelVersion: required, SemVer.
    const modelVersion = raw.modelVersion;
    if (modelVersion === undefined) {
        // A misspelt modelVersion is reported above, with the fix that moves its value.
        if (!unknown.meant.has("modelVersion")) {
            fail("modelVersion", undefined, {
                reason: "every stack publishes exactly one model version, so it must be set explicitly (a SemVer version such as 1.0.0)",
            });
        }
    } else {
        const p = checkModelVersion(modelVersion);
        if (p) fail("modelVersion", modelVersion, p);
    }

    // repositoryName: default derived from project and stack.
    let repositoryName = str("repositoryName");
    if (repositoryName === "") {
        const derived = toRepositoryName(`${ctx.project}-${ctx.stack}`);
        if (derived === undefined) {
            fail("repositoryName", undefined, {
                reason: `no valid repository name can be derived from project "${ctx.project}" and stack "${ctx.stack}"; set one`,
            });
        }
        repositoryName = derived ?? "";
    } else {
        const p = checkRepositoryName(repositoryName);
        if (p) fail("repositoryName", repositoryName, p);
    }

    // promoteFrom: a promoting stack copies another stack's image and builds nothing.
    const promotion = parsePromotionSource(str("promoteFrom"), ctx);
    if (promotion.problem) fail("promoteFrom", raw.promoteFrom, promotion.problem);
    if (promotion.source?.kind === "stack" && !promotion.source.name.includes("/")) {
        const p = checkStackFile(promotion.source.name);
        if (p) fail("promoteFrom", raw.promoteFrom, p);
    }
    const promoting = promotion.source !== undefined || promotion.problem !== undefined;

    // The build context and Dockerfile are checked here, before any resource is registered;
    // the image component would only find out after the repository had been created. A
    // promoting stack does not build, so it needs neither.
    const modelContext = str("modelContext");
    // An absolute path differs between machines (CI runners), and docker.Image, which compares
    // its build inputs as given, would build and push the version again on each.
    const absolute = !promoting && path.isAbsolute(modelContext);
    if (absolute) {
        fail("modelContext", modelContext, {
            reason: "an absolute path differs from machine to machine, and the image would be built and pushed again on each; give the path relative to the project",
            suggestion: path.relative(process.cwd(), modelContext) || ".",
        });
    }
    const contextIsDir = promoting || absolute || isKind(modelContext, "dir");
    // The whole context goes to the Docker engine: it stays inside the project, symlinks
    // resolved (modelContext=../../etc, or a link to ~/.ssh, would ship those files).
    const escapes = !promoting && !absolute && contextIsDir && outsideProject(modelContext);
    if (escapes) {
        fail("modelContext", modelContext, {
            reason: `it resolves to ${JSON.stringify(fs.realpathSync(modelContext))}, outside the project ${JSON.stringify(process.cwd())}, and the whole build context is sent to the Docker engine; give a directory inside the project`,
        });
    }
    if (!contextIsDir) {
        fail(
            "modelContext",
            modelContext,
            contextProblem(modelContext, isSet("dockerfile") ? raw.dockerfile : undefined),
        );
    }
    const dockerfile = str("dockerfile");
    if (!promoting && path.isAbsolute(dockerfile)) {
        // It would be joined to modelContext ("model//abs/Dockerfile"), and differ between machines.
        const relative = path.relative(path.resolve(modelContext), dockerfile);
        const inside = relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative);
        fail("dockerfile", dockerfile, {
            reason:
                "an absolute path is read relative to modelContext, so it names no file, and it would differ " +
                `from machine to machine; give the Dockerfile's path relative to modelContext (${JSON.stringify(modelContext)})`,
            suggestion: inside ? relative.split(path.sep).join("/") : undefined,
        });
    } else if (!promoting && contextIsDir && !isKind(path.join(modelContext, dockerfile), "file")) {
        fail("dockerfile", dockerfile, {
            reason: `no file ${JSON.stringify(path.join(modelContext, dockerfile))}; expected a Dockerfile path relative to modelContext`,
        });
    } else if (
        !promoting &&
        contextIsDir &&
        !escapes &&
        outsideProject(path.join(modelContext, dockerfile))
    ) {
        fail("dockerfile", dockerfile, {
            reason: `it resolves to ${JSON.stringify(fs.realpathSync(path.join(modelContext, dockerfile)))}, outside the project; give a Dockerfile inside it, relative to modelContext`,
        });
    }

    // One spelling per platform: linux/arm64/v8 builds, fingerprints and is looked up as
    // linux/arm64, so respelling it never changes the content fingerprint of a version.
    const platformText = str("platform");
    const platform = normalizePlatform(platformText);
    const platformProblem = checkPlatform(platform);
    if (platformProblem) fail("platform", platformText, platformProblem);

    const baseImage = str("baseImage");
    if (baseImage !== "") {
        const p = checkImageReference(baseImage);
        if (p) fail("baseImage", baseImage, p);
    }

    const text = (key: "description" | "aboutText" | "usageText") => {
        const value = str(key);
        const p = checkCatalogText(value, CATALOG_LIMITS[key]);
        if (p) fail(key, value, { ...p, suggestion: undefined });
        return value;
    };
    const description = text("description");
    const aboutText = text("aboutText");
    const usageText = text("usageText");

    const catalogList = (key: "architectures" | "operatingSystems") => {
        const values = list(key);
        const p = checkCatalogList(values);
        if (p) fail(key, raw[key], p);
        return values;
    };
    // An empty architectures list (its default) derives the badge from the platform. An empty
    // operatingSystems list, whose default is ["Linux"], was set on purpose: no badge.
    const badge = PLATFORMS[platform];
    const architecturesSet = catalogList("architectures");
    const architectures = architecturesSet.length > 0 ? architecturesSet : badge ? [badge] : [];
    const operatingSystems = catalogList("operatingSystems");

    const forceDestroy = bool("forceDestroy");
    const protect = bool("protect");
    if (forceDestroy && protect) {
        fail("forceDestroy", "true", {
            reason: "protect is true for this stack, and a protected repository must not be destroyable with its images",
            suggestion: "false",
        });
    }

    // registry: where the stack publishes, and the settings only that target reads.
    const registryText = str("registry");
    const registry = (REGISTRY_KINDS as readonly string[]).includes(registryText)
        ? (registryText as RegistryKind)
        : undefined;
    if (!registry) {
        fail("registry", registryText, {
            reason: `expected one of ${REGISTRY_KINDS.join(", ")} (local runs a registry on this machine, no AWS account needed)`,
            suggestion: REGISTRY_KINDS.find((k) => k === registryText.trim().toLowerCase()),
        });
    }

    const pushPrincipals = list("pushPrincipals");
    pushPrincipals.forEach((arn, index) => {
        const p = checkPrincipalArn(arn, { ecrPublic: registry === "ecr-public" });
        if (p) fail("pushPrincipals", arn, p, index);
    });
    const duplicate = firstDuplicate(pushPrincipals);
    if (duplicate) {
        fail(
            "pushPrincipals",
            pushPrincipals[duplicate.index],
            {
                reason: `it repeats item ${duplicate.first}; each principal is listed once`,
                fix: `pulumi config rm --path 'pushPrincipals[${duplicate.index}]'`,
            },
            duplicate.index,
        );
    }

    const sourceUrl = str("sourceUrl");
    const sourceWithCredentials = sourceUrl.includes("@") ? withoutUserinfo(sourceUrl) : undefined;
    if (sourceWithCredentials !== undefined) {
        // It becomes an image label, readable by anyone who can pull the image.
        fail("sourceUrl", sourceUrl, {
            reason: "it holds credentials (user:password@ or a token), and it becomes the org.opencontainers.image.source label that anyone who pulls the image can read; give the URL without them",
            suggestion: sourceWithCredentials || undefined,
        });
    } else if (sourceUrl !== "" && !/^[a-z][a-z0-9+.-]*:\/\/\S+$/i.test(sourceUrl)) {
        fail("sourceUrl", sourceUrl, {
            reason: "expected an absolute URL such as https://example.com/team/model",
            suggestion: /^[\w-]+(\.[\w-]+)+(\/\S*)?$/.test(sourceUrl)
                ? `https://${sourceUrl}`
                : undefined,
        });
    }
    const modelRevision = str("modelRevision");
    if (/\s/.test(modelRevision)) {
        fail("modelRevision", modelRevision, {
            reason: "a revision (for example a git commit) has no white space",
            suggestion: /^\S+$/.test(modelRevision.trim()) ? modelRevision.trim() : undefined,
        });
    }

    // A setting of another target is refused as such, and not checked further (one problem each).
    const ignored = new Set<ConfigKey>();
    const onlyFor = (key: ConfigKey, target: RegistryKind, why: string) => {
        if (isSet(key) && registry && registry !== target) {
            ignored.add(key);
            fail(key, raw[key], {
                reason: `${why}, so it is only read when registry is ${target} (this stack's registry is ${registry}); remove it`,
                fix: `pulumi config rm ${key}`,
            });
        }
    };
    onlyFor("registryUrl", "local", "it names a registry you run yourself");
    onlyFor("registryUsername", "local", "it is the user name for registryUrl");
    onlyFor("localRegistryImage", "local", "it is the image of the registry a local stack runs");
    onlyFor("localRegistryPort", "local", "it is the port of the registry a local stack runs");
    onlyFor("kmsKey", "ecr-private", "it encrypts a private ECR repository");
    for (const key of [
        "description",
        "aboutText",
        "usageText",
        "architectures",
        "operatingSystems",
    ] as const) {
        onlyFor(
            key,
            "ecr-public",
            "it is shown in the ECR Public gallery, which other registries do not have",
        );
    }
    if (registry === "local" && pushPrincipals.length > 0) {
        fail("pushPrincipals", raw.pushPrincipals, {
            reason: "a local registry has no IAM principals; remove pushPrincipals or publish to ecr-public or ecr-private",
            fix: "pulumi config rm pushPrincipals",
        });
    }

    const registryUrlText = str("registryUrl");
    let registryUrl: string | undefined;
    if (registryUrlText !== "" && !ignored.has("registryUrl")) {
        const p = checkRegistryUrl(registryUrlText);
        if (p) fail("registryUrl", registryUrlText, p);
        else registryUrl = registryUrlText.replace(/\/+$/, "");
    }
    const username = str("registryUsername");
    let registryCredentials: StackConfig["registryCredentials"];
    if (registry === "local") {
        if (username !== "" && registryPassword === undefined) {
            fail("registryPassword", undefined, {
                reason: `registryUsername is set, so the registry at registryUrl needs its password too; set it as a secret`,
            });
        } else if (username === "" && registryPassword !== undefined) {
            fail("registryUsername", undefined, {
                reason: "registryPassword is set, so set the user name it belongs to",
            });
        } else if (
            (username !== "" || registryPassword !== undefined) &&
            registryUrl === undefined
        ) {
            fail("registryUrl", undefined, {
                reason: "credentials are only for a registry you run yourself; the registry this stack runs takes none. Set registryUrl or remove registryUsername and registryPassword",
            });
        }
        if (username !== "" && registryPassword !== undefined) {
            registryCredentials = { username, password: registryPassword };
        }
    } else if (registryPassword !== undefined && registry) {
        fail("registryPassword", "[secret]", {
            reason: `it is the password for registryUrl, so it is only read when registry is local (this stack's registry is ${registry}); remove it`,
            fix: "pulumi config rm registryPassword",
        });
    }

    const localImage = str("localRegistryImage");
    const localImageProblem = checkImageReference(localImage);
    if (localImageProblem && !ignored.has("localRegistryImage")) {
        fail("localRegistryImage", localImage, localImageProblem);
    }
    const portText = raw.localRegistryPort;
    const port = portText === undefined ? 5000 : Number(portText);
    const portValid = /^\d+$/.test(portText ?? "5000") && port >= 1 && port <= 65535;
    if (!portValid && !ignored.has("localRegistryPort")) {
        fail("localRegistryPort", portText, { reason: "expected a TCP port from 1 to 65535" });
    }

    const kmsText = str("kmsKey");
    if (
        kmsText !== "" &&
        !ignored.has("kmsKey") &&
        !/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/.test(kmsText)
    ) {
        fail("kmsKey", kmsText, {
            reason: "expected the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<key id>); leave it empty for AES256 encryption",
        });
    }

    // Each `<version>=<digest|absent|unclaim:<12 hex>>` once: the guard looks a version up by name.
    const acknowledgedTampering: Record<string, string> = {};
    list("acknowledgedTampering").forEach((item, index) => {
        const m = /^([^=\s]+)=(sha256:[0-9a-f]{64}|absent|unclaim:[0-9a-f]{12})$/.exec(item);
        const version = m?.[1] ?? "";
        const problem = m
            ? checkModelVersion(version)
            : {
                  reason: "expected <version>=<digest>, such as 1.0.0=sha256:<64 hex>, 1.0.0=absent or 1.0.0=unclaim:<12 hex>, as the run's message gives it",
              };
        if (problem) {
            fail("acknowledgedTampering", item, { reason: problem.reason }, index);
        } else if (Object.hasOwn(acknowledgedTampering, version)) {
            fail(
                "acknowledgedTampering",
                item,
                {
                    reason: `${version} is acknowledged in an earlier item too; keep one (the state the registry holds now)`,
                    fix: `pulumi config rm --path 'acknowledgedTampering[${index}]'`,
                },
                index,
            );
        } else {
            acknowledgedTampering[version] = m![2];
        }
    });

    if (problems.length > 0) {
        throw new pulumi.RunError(formatProblems(problems, ctx, secretValues));
    }
    return {
        modelVersion: modelVersion as string,
        repositoryName,
        modelContext,
        dockerfile,
        platform,
        baseImage,
        catalog: { description, aboutText, usageText, architectures, operatingSystems },
        forceDestroy,
        protect,
        pushPrincipals,
        sourceUrl,
        modelRevision,
        promoteFrom: promotion.source,
        registry: registry as RegistryKind,
        registryUrl,
        registryCredentials,
        localRegistry: { image: localImage, port },
        kmsKey: kmsText || undefined,
        acknowledgedTampering,
    };
}

/** `yes`, `On`, `1` -> `true`; `no`, `off`, `0` -> `false`; anything else: undefined. */
function booleanMeant(text: string): string | undefined {
    const word = text.trim().toLowerCase();
    if (["true", "yes", "y", "on", "1"].includes(word)) return "true";
    if (["false", "no", "n", "off", "0"].includes(word)) return "false";
    return undefined;
}

/**
 * A stack of this project named in promoteFrom has a stack file here: every stack of the project
 * sets modelVersion, which lives in its `Pulumi.<stack>.yaml`. A misspelt name is caught here,
 * before the run looks for a stack that does not exist.
 */
function checkStackFile(stack: string): Problem | undefined {
    const stacks = fs
        .readdirSync(".")
        .map((f) => /^Pulumi\.(.+)\.(yaml|yml|json)$/.exec(f)?.[1])
        .filter((s): s is string => s !== undefined);
    if (stacks.includes(stack)) return undefined;
    const near = stacks.find(
        (s) => s.toLowerCase() === stack.toLowerCase() || editDistance(s, stack) <= 2,
    );
    return {
        reason: `this project has no stack "${stack}" (no Pulumi.${stack}.yaml here; its stacks: ${stacks.join(", ")})${near ? `; did you mean ${near}?` : ""}`,
        suggestion: near,
    };
}

/** Whether a key's text is its declared default, as the CLI writes it (lists as JSON). */
function isDefault(key: ConfigKey, text: string): boolean {
    const declared: KeySpec["default"] = CONFIG_KEYS[key].default;
    if (declared === undefined) return false;
    if (!Array.isArray(declared)) return text === String(declared);
    try {
        return JSON.stringify(JSON.parse(text)) === JSON.stringify(declared);
    } catch {
        return false;
    }
}

/** What is wrong with a modelContext that is not a directory, and the fix when one is clear. */
function contextProblem(
    modelContext: string,
    dockerfileSet: string | undefined,
): Problem & { fix?: string } {
    const resolved = JSON.stringify(path.resolve(modelContext));
    if (modelContext.trim() === "") {
        return {
            reason: "it is empty; expected the model image's build context, a directory relative to the project",
        };
    }
    if (!isKind(modelContext, "file")) {
        return {
            reason: `no directory ${resolved}; expected the model image's build context, relative to the project`,
        };
    }
    const name = path.basename(modelContext);
    const reason = `${resolved} is a file, not a directory; modelContext is the build context (the directory the image is built from), and dockerfile names the Dockerfile in it`;
    if (!/(^|[.-])(dockerfile|containerfile)([.-]|$)/i.test(name)) return { reason };
    // A Dockerfile given as the context: its directory is the context, its name the dockerfile.
    const directory = path.dirname(modelContext).split(path.sep).join("/");
    // The default dockerfile is "Dockerfile": only another name needs setting.
    const setDockerfile =
        dockerfileSet === undefined && name === "Dockerfile"
            ? ""
            : ` && pulumi config set dockerfile ${shellWord(name)}`;
    return {
        reason: `${reason}; this file looks like a Dockerfile, so its directory is the context`,
        fix: `pulumi config set modelContext ${shellWord(directory)}${setDockerfile}`,
    };
}

/** The known key closest to `key`: the same but for case, else within a small edit distance. */
export function closestKey(key: string): ConfigKey | undefined {
    const keys = Object.keys(CONFIG_KEYS) as ConfigKey[];
    const lower = key.toLowerCase();
    const sameButCase = keys.find((k) => k.toLowerCase() === lower);
    if (sameButCase) return sameButCase;
    let best: { key: ConfigKey; distance: number } | undefined;
    for (const k of keys) {
        const distance = editDistance(lower, k.toLowerCase());
        if (!best || distance < best.distance) best = { key: k, distance };
    }
    // At most 2 edits, and fewer than a third of the key: "kmsKeyId" is not "modelVersion".
    return best && best.distance <= 2 && best.distance * 3 < key.length ? best.key : undefined;
}

/**
 * Keys of the project's namespace that the program does not read, each with the key probably
 * meant and the commands that move its value there. Keys of other namespaces (`aws:region`) are
 * not the program's. `meant` holds the known keys a misspelling stands for.
 */
function unknownKeyProblems(
    setKeys: readonly string[],
    project: string,
    isSet: (key: ConfigKey) => boolean,
): { problems: ConfigProblem[]; meant: Set<ConfigKey> } {
    const problems: ConfigProblem[] = [];
    const meant = new Set<ConfigKey>();
    const prefix = `${project}:`;
    for (const full of [...setKeys].sort()) {
        if (!full.startsWith(prefix)) continue;
        const key = full.slice(prefix.length);
        if (Object.hasOwn(CONFIG_KEYS, key)) continue;
        const closest = closestKey(key);
        const shown = "is set";
        if (closest === undefined) {
            problems.push({
                key,
                value: undefined,
                shown,
                reason: "this program reads no such key (keys are case-sensitive; Pulumi.yaml lists the keys it reads), so the value is ignored",
                fix: `pulumi config rm ${shellWord(key)}`,
            });
            continue;
        }
        const alreadySet = isSet(closest);
        if (!alreadySet) meant.add(closest);
        const spec: KeySpec = CONFIG_KEYS[closest];
        let fix: string;
        if (spec.kind === "array") {
            // Read the items first: once the misspelt key is removed they are gone.
            fix = `pulumi config get ${shellWord(key)} (the items), then pulumi config set --path '${closest}[0]' ${spec.placeholder} for each, then pulumi config rm ${shellWord(key)}`;
        } else {
            // Moves the value without showing it here (it may be a secret).
            const secret = SECRET_KEYS.has(closest) ? "--secret " : "";
            fix = `pulumi config set ${secret}${closest} "$(pulumi config get ${shellWord(key)})" && pulumi config rm ${shellWord(key)}`;
        }
        problems.push({
            key,
            value: undefined,
            shown,
            // Both set: the misspelt one may well be the newer value (a bump typed wrong), so
            // the fix moves it, and dropping it is the alternative, not the default.
            reason: alreadySet
                ? `this program reads no such key (keys are case-sensitive), so the value is ignored; did you mean ${closest}? ${closest} is set too: if this value is the one you want, move it there (below); to keep ${closest} as it is, pulumi config rm ${shellWord(key)}`
                : `this program reads no such key (keys are case-sensitive), so the value is ignored and ${closest} is not set; did you mean ${closest}?`,
            fix,
        });
    }
    return { problems, meant };
}

/**
 * The URL without credentials when it carries some (`https://user:token@host/...`): "" when it
 * cannot be parsed; undefined when it carries none.
 */
function withoutUserinfo(text: string): string | undefined {
    let url: URL;
    try {
        url = new URL(text);
    } catch {
        return /^[^\s/]*@/.test(text) ? "" : undefined;
    }
    if (url.username === "" && url.password === "") return undefined;
    url.username = "";
    url.password = "";
    return url.toString();
}

/** A registry API base URL: http(s), a host and an optional port, nothing else. */
function checkRegistryUrl(text: string): Problem | undefined {
    let url: URL | undefined;
    try {
        url = new URL(text);
    } catch {
        url = undefined;
    }
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.host === "") {
        return {
            reason: "expected the registry's URL, http:// or https:// with a host and port, such as http://127.0.0.1:5000",
            suggestion: /^[\w.-]+(:\d+)?$/.test(text) ? `http://${text}` : undefined,
        };
    }
    // A password, or the token it buys, in cleartext is only safe on this machine.
    if (url.protocol === "http:" && url.hostname !== "localhost" && !isLoopbackHost(url.hostname)) {
        return {
            reason: "plain http:// is only for a registry on this machine (127.0.0.1, [::1], localhost): to another host, credentials and tokens would cross the network in cleartext; use https://",
            suggestion: `https://${url.host}`,
        };
    }
    if (url.pathname !== "/" || url.search || url.hash || url.username || url.password) {
        return {
            reason: "give only the scheme, host and port (no path, query or credentials: set registryUsername and registryPassword for those)",
            suggestion: `${url.protocol}//${url.host}`,
        };
    }
    return undefined;
}

/** Whether a path, symlinks resolved, is outside the project (the working directory). */
function outsideProject(p: string): boolean {
    const relative = path.relative(fs.realpathSync("."), fs.realpathSync(p));
    return relative.startsWith("..") || path.isAbsolute(relative);
}

function isKind(p: string, kind: "dir" | "file"): boolean {
    if (p.trim() === "") return false;
    const stat = fs.statSync(p, { throwIfNoEntry: false });
    return kind === "dir" ? stat?.isDirectory() === true : stat?.isFile() === true;
}

/** Shell-quotes a value for a copy-pasteable fix, when it needs it. */
function shellWord(value: string): string {
    return /^[A-Za-z0-9._:/@=+-]+$/.test(value) ? value : `'${value.replace(/'/g, `'\\''`)}'`;
}

/** The default as the fix names it: `model`, `empty`, `["Linux"]`. */
function describeDefault(value: string | boolean | number | readonly string[]): string {
    if (Array.isArray(value)) return JSON.stringify(value);
    return value === "" ? "empty" : String(value);
}

/**
 * The command that fixes a problem: the problem's own when it has one; else `pulumi config set`
 * with the value derived from the bad one; else, with no value to derive, `set` with a
 * placeholder, and `rm` for a key that has a default. Never a fixed example value.
 */
function fixFor(p: ConfigProblem): string {
    if (p.fix !== undefined) return p.fix;
    const spec: KeySpec = CONFIG_KEYS[p.key as ConfigKey];
    const secret = SECRET_KEYS.has(p.key as ConfigKey) ? "--secret " : "";
    const value = p.suggestion !== undefined ? shellWord(p.suggestion) : spec.placeholder;
    if (spec.kind === "array") {
        if (p.index !== undefined || p.suggestion !== undefined) {
            return `pulumi config set --path '${p.key}[${p.index ?? 0}]' ${value}`;
        }
        return `pulumi config rm ${p.key} (the default: ${describeDefault(spec.default ?? [])}), or set its items: pulumi config set --path '${p.key}[<index>]' ${spec.placeholder}`;
    }
    const set = `pulumi config set ${secret}${p.key} ${value}`;
    if (p.suggestion === undefined && p.value !== undefined && spec.default !== undefined) {
        return `${set}, or pulumi config rm ${p.key} for the default (${describeDefault(spec.default)})`;
    }
    return set;
}

function formatProblems(
    problems: readonly ConfigProblem[],
    ctx: { project: string; stack: string },
    secretValues: ReadonlySet<string> = new Set(),
): string {
    const lines = problems.map((problem) => {
        // A value set with --secret is never shown, nor a fix derived from it; credentials typed
        // into a URL are masked in the value and in the fix.
        const secret = secretValues.has(problem.key) && problem.value !== undefined;
        const p: ConfigProblem = secret
            ? { ...problem, value: undefined, suggestion: undefined, shown: "is set (a secret)" }
            : {
                  ...problem,
                  value:
                      problem.value === undefined ? undefined : withoutCredentials(problem.value),
                  suggestion:
                      problem.suggestion === undefined
                          ? undefined
                          : withoutCredentials(problem.suggestion),
              };
        const shown =
            p.shown ??
            (p.value === undefined
                ? "is not set"
                : `= ${JSON.stringify(p.value.length > 80 ? `${p.value.slice(0, 77)}...` : p.value)}`);
        const where = p.index !== undefined ? ` (item ${p.index})` : "";
        const reason = /[.?!]$/.test(p.reason) ? p.reason : `${p.reason}.`;
        return `  - ${ctx.project}:${p.key}${where} ${shown}: ${reason}\n    Fix: ${fixFor(p)}`;
    });
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    return (
        `Invalid configuration for stack "${ctx.stack}" (${count}); nothing was created or pushed.\n` +
        lines.join("\n")
    );
}
