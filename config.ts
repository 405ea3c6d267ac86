import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import * as path from "path";
import {
    CATALOG_LIMITS,
    PLATFORMS,
    Problem,
    checkCatalogList,
    checkCatalogText,
    checkModelVersion,
    checkPlatform,
    checkPrincipalArn,
    checkRepositoryName,
    toRepositoryName,
} from "./lib/validation";
import { PromotionSource, parsePromotionSource } from "./lib/promotion";

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
    /** Build platform, `os/arch[/variant]`. */
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
}

/** The registries a stack can publish to. */
export const REGISTRY_KINDS = ["ecr-public", "ecr-private", "local"] as const;
export type RegistryKind = (typeof REGISTRY_KINDS)[number];

type Kind = "string" | "boolean" | "array" | "integer";

interface KeySpec {
    readonly kind: Kind;
    /** The default, as the engine would pass it (Pulumi.yaml declares the same). */
    readonly default: string | boolean | number | readonly string[] | undefined;
    /** What to put after `pulumi config set <key>` when no better fix can be derived. */
    readonly example: string;
}

/**
 * Every key the program reads, with its default. `Pulumi.yaml` declares the same keys and
 * defaults (a test holds the two together); defaults are applied here too because the engine
 * applies project defaults only when it runs the program, not in unit tests.
 */
export const CONFIG_KEYS = {
    modelVersion: { kind: "string", default: undefined, example: "1.0.0" },
    repositoryName: { kind: "string", default: "", example: "my-model" },
    modelContext: { kind: "string", default: "model", example: "model" },
    dockerfile: { kind: "string", default: "Dockerfile", example: "Dockerfile" },
    platform: { kind: "string", default: "linux/amd64", example: "linux/amd64" },
    baseImage: { kind: "string", default: "", example: "python:3.12-slim" },
    description: { kind: "string", default: "", example: '"A short description"' },
    aboutText: { kind: "string", default: "", example: '"About this model (Markdown)"' },
    usageText: { kind: "string", default: "", example: '"How to use this image (Markdown)"' },
    architectures: { kind: "array", default: [], example: '"x86-64"' },
    operatingSystems: { kind: "array", default: ["Linux"], example: '"Linux"' },
    forceDestroy: { kind: "boolean", default: false, example: "false" },
    protect: { kind: "boolean", default: false, example: "true" },
    pushPrincipals: { kind: "array", default: [], example: "arn:aws:iam::123456789012:role/ci" },
    sourceUrl: { kind: "string", default: "", example: "https://example.com/team/model" },
    modelRevision: { kind: "string", default: "", example: "0123abc" },
    promoteFrom: { kind: "string", default: "", example: "dev" },
    registry: { kind: "string", default: "ecr-public", example: "ecr-public" },
    registryUrl: { kind: "string", default: "", example: "http://127.0.0.1:5000" },
    registryUsername: { kind: "string", default: "", example: "ci" },
    registryPassword: { kind: "string", default: undefined, example: "--secret <password>" },
    localRegistryImage: { kind: "string", default: "registry:2", example: "registry:2" },
    localRegistryPort: { kind: "integer", default: 5000, example: "5000" },
    kmsKey: {
        kind: "string",
        default: "",
        example: "arn:aws:kms:us-west-2:123456789012:key/00000000-0000-0000-0000-000000000000",
    },
} as const satisfies Record<string, KeySpec>;

export type ConfigKey = keyof typeof CONFIG_KEYS;

/** Keys declared `secret: true` in Pulumi.yaml: read with `getSecret`, never shown in messages. */
export const SECRET_KEYS: ReadonlySet<ConfigKey> = new Set<ConfigKey>(["registryPassword"]);

/** Raw config text by key, as `pulumi.Config.get` returns it (arrays are JSON text). */
export type RawConfig = Partial<Record<ConfigKey, string>>;

interface ConfigProblem extends Problem {
    readonly key: ConfigKey;
    /** The value as the user wrote it; undefined when the key is not set. */
    readonly value: string | undefined;
    /** For list keys: which item is wrong, so the fix can use `--path`. */
    readonly index?: number;
}

/** Reads the current stack's config through one `pulumi.Config`. Throws a `RunError` on bad input. */
export function loadConfig(): StackConfig {
    const config = new pulumi.Config();
    const raw: RawConfig = {};
    for (const key of Object.keys(CONFIG_KEYS) as ConfigKey[]) {
        if (SECRET_KEYS.has(key)) continue;
        const value = config.get(key);
        if (value !== undefined) raw[key] = value;
    }
    // A secret is read as a secret, so it stays encrypted in the state and masked in output.
    const password = config.getSecret("registryPassword");
    return parseConfig(raw, { project: pulumi.getProject(), stack: pulumi.getStack() }, password);
}

/**
 * Validates raw config text and applies defaults. Every problem is collected, so the user sees
 * all of them in one message, each with the `pulumi config set` that fixes it.
 */
export function parseConfig(
    raw: RawConfig,
    ctx: { project: string; stack: string },
    registryPassword?: pulumi.Output<string>,
): StackConfig {
    const problems: ConfigProblem[] = [];
    const fail = (key: ConfigKey, value: string | undefined, p: Problem, index?: number) =>
        problems.push({ key, value, index, ...p });

    const str = (key: ConfigKey): string => {
        const spec = CONFIG_KEYS[key];
        return raw[key] ?? (typeof spec.default === "string" ? spec.default : "");
    };
    const bool = (key: ConfigKey): boolean => {
        const text = raw[key];
        if (text === undefined) return (CONFIG_KEYS[key] as KeySpec).default === true;
        if (text === "true" || text === "false") return text === "true";
        fail(key, text, { reason: "expected true or false" });
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
            fail(key, text, {
                reason: "expected a list of strings (set items with --path, as below)",
            });
            return [];
        }
        return parsed as string[];
    };

    // modelVersion: required, SemVer.
    const modelVersion = raw.modelVersion;
    if (modelVersion === undefined) {
        fail("modelVersion", undefined, {
            reason: "every stack publishes exactly one model version, so it must be set explicitly",
            suggestion: "1.0.0",
        });
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
    if (!contextIsDir) {
        fail("modelContext", modelContext, {
            reason: `no directory ${JSON.stringify(path.resolve(modelContext))}; expected the model image's build context, relative to the project`,
        });
    }
    const dockerfile = str("dockerfile");
    if (!promoting && contextIsDir && !isKind(path.join(modelContext, dockerfile), "file")) {
        fail("dockerfile", dockerfile, {
            reason: `no file ${JSON.stringify(path.join(modelContext, dockerfile))}; expected a Dockerfile path relative to modelContext`,
        });
    }

    const platform = str("platform");
    const platformProblem = checkPlatform(platform);
    if (platformProblem) fail("platform", platform, platformProblem);

    const baseImage = str("baseImage");
    if (/\s/.test(baseImage)) {
        fail("baseImage", baseImage, { reason: "an image reference has no white space" });
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

    const catalogList = (key: "architectures" | "operatingSystems", fallback: string[]) => {
        const values = list(key);
        const p = checkCatalogList(values);
        if (p) fail(key, raw[key], p);
        return values.length > 0 ? values : fallback;
    };
    const badge = PLATFORMS[platform];
    const architectures = catalogList("architectures", badge ? [badge] : []);
    const operatingSystems = catalogList("operatingSystems", ["Linux"]);

    const forceDestroy = bool("forceDestroy");
    const protect = bool("protect");
    if (forceDestroy && protect) {
        fail("forceDestroy", "true", {
            reason: "protect is true for this stack, and a protected repository must not be destroyable with its images",
            suggestion: "false",
        });
    }

    const pushPrincipals = list("pushPrincipals");
    pushPrincipals.forEach((arn, index) => {
        const p = checkPrincipalArn(arn);
        if (p) fail("pushPrincipals", arn, p, index);
    });

    const sourceUrl = str("sourceUrl");
    if (sourceUrl !== "" && !/^[a-z][a-z0-9+.-]*:\/\/\S+$/i.test(sourceUrl)) {
        fail("sourceUrl", sourceUrl, {
            reason: "expected an absolute URL such as https://example.com/team/model",
        });
    }
    const modelRevision = str("modelRevision");
    if (/\s/.test(modelRevision)) {
        fail("modelRevision", modelRevision, {
            reason: "a revision (for example a git commit) has no white space",
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
    const onlyFor = (key: ConfigKey, target: RegistryKind, why: string) => {
        if (raw[key] !== undefined && raw[key] !== "" && registry && registry !== target) {
            fail(key, raw[key], {
                reason: `${why}, so it is only read when registry is ${target} (this stack's registry is ${registry}); remove it`,
            });
        }
    };
    onlyFor("registryUrl", "local", "it names a registry you run yourself");
    onlyFor("registryUsername", "local", "it is the user name for registryUrl");
    onlyFor("localRegistryImage", "local", "it is the image of the registry a local stack runs");
    onlyFor("localRegistryPort", "local", "it is the port of the registry a local stack runs");
    onlyFor("kmsKey", "ecr-private", "it encrypts a private ECR repository");
    if (registry === "local" && pushPrincipals.length > 0) {
        fail("pushPrincipals", raw.pushPrincipals, {
            reason: "a local registry has no IAM principals; remove pushPrincipals or publish to ecr-public or ecr-private",
        });
    }

    const registryUrlText = str("registryUrl");
    let registryUrl: string | undefined;
    if (registryUrlText !== "") {
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
            reason: `it is the password for registryUrl, so it is only read when registry is local (this stack's registry is ${registry}); remove it with \`pulumi config rm registryPassword\``,
        });
    }

    const localImage = str("localRegistryImage");
    if (localImage === "" || /\s/.test(localImage)) {
        fail("localRegistryImage", localImage, {
            reason: "expected an image reference such as registry:2",
        });
    }
    const portText = raw.localRegistryPort;
    const port = portText === undefined ? 5000 : Number(portText);
    if (!/^\d+$/.test(portText ?? "5000") || port < 1 || port > 65535) {
        fail("localRegistryPort", portText, { reason: "expected a TCP port from 1 to 65535" });
    }

    const kmsText = str("kmsKey");
    if (
        kmsText !== "" &&
        !/^arn:aws[a-z-]*:kms:[a-z0-9-]+:\d{12}:key\/[A-Za-z0-9-]+$/.test(kmsText)
    ) {
        fail("kmsKey", kmsText, {
            reason: "expected the ARN of a KMS key (arn:aws:kms:<region>:<account>:key/<key id>); leave it empty for AES256 encryption",
        });
    }

    if (problems.length > 0) {
        throw new pulumi.RunError(formatProblems(problems, ctx));
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
    };
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
    if (url.pathname !== "/" || url.search || url.hash || url.username || url.password) {
        return {
            reason: "give only the scheme, host and port (no path, query or credentials: set registryUsername and registryPassword for those)",
            suggestion: `${url.protocol}//${url.host}`,
        };
    }
    return undefined;
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

function fixFor(p: ConfigProblem): string {
    const spec = CONFIG_KEYS[p.key];
    const value = p.suggestion !== undefined ? shellWord(p.suggestion) : spec.example;
    if (spec.kind === "array") {
        return `pulumi config set --path '${p.key}[${p.index ?? 0}]' ${value}`;
    }
    const reset =
        spec.default !== undefined && p.suggestion === undefined
            ? ` (or \`pulumi config rm ${p.key}\` for the default)`
            : "";
    return `pulumi config set ${p.key} ${value}${reset}`;
}

function formatProblems(
    problems: readonly ConfigProblem[],
    ctx: { project: string; stack: string },
): string {
    const lines = problems.map((p) => {
        const shown =
            p.value === undefined
                ? "is not set"
                : `= ${JSON.stringify(p.value.length > 80 ? `${p.value.slice(0, 77)}...` : p.value)}`;
        const where = p.index !== undefined ? ` (item ${p.index})` : "";
        return `  - ${ctx.project}:${p.key}${where} ${shown}: ${p.reason}.\n    Fix: ${fixFor(p)}`;
    });
    const count = problems.length === 1 ? "1 problem" : `${problems.length} problems`;
    return (
        `Invalid configuration for stack "${ctx.stack}" (${count}); nothing was created or pushed.\n` +
        lines.join("\n")
    );
}
