/**
 * Where a stack publishes: the registry kind, the repository's name and settings, the ECR Public
 * gallery's catalog data, the principals that may push, and the settings only one kind of
 * registry reads (a registry URL and its credentials, the local registry, the KMS key).
 */
import {
    CATALOG_LIMITS,
    PLATFORMS,
    Problem,
    checkCatalogList,
    checkCatalogText,
    checkImageReference,
    checkKmsKeyArn,
    checkPrincipalArn,
    checkRepositoryName,
    firstDuplicate,
    toRepositoryName,
} from "../lib/validation";
import { isLoopbackHost } from "../lib/oci/proxy";
import { ConfigKey, REGISTRY_KINDS, RegistryKind, StackConfig, StackName } from "./keys";
import { ConfigReader } from "./reader";

/** By default derived from project and stack. */
export function readRepositoryName(r: ConfigReader, ctx: StackName): string {
    const repositoryName = r.str("repositoryName");
    if (repositoryName !== "") {
        r.fail("repositoryName", repositoryName, checkRepositoryName(repositoryName));
        return repositoryName;
    }
    const derived = toRepositoryName(`${ctx.project}-${ctx.stack}`);
    if (derived === undefined) {
        r.fail("repositoryName", undefined, {
            reason: `no valid repository name can be derived from project "${ctx.project}" and stack "${ctx.stack}"; set one`,
        });
    }
    return derived ?? "";
}

/** The gallery's texts and badges, within ECR Public's limits. */
export function readCatalog(r: ConfigReader, platform: string): StackConfig["catalog"] {
    // On another registry these keys are refused as such (readTargetSettings), not checked further.
    const registry = r.str("registry");
    const checked =
        registry === "ecr-public" || !(REGISTRY_KINDS as readonly string[]).includes(registry);
    const text = (key: "description" | "aboutText" | "usageText") => {
        const value = r.str(key);
        if (!checked) return value;
        // Its reasons never quote the text.
        const problem = checkCatalogText(value, CATALOG_LIMITS[key]);
        r.fail(key, value, problem && { ...problem, redacted: true });
        return value;
    };
    const description = text("description");
    const aboutText = text("aboutText");
    const usageText = text("usageText");

    const list = (key: "architectures" | "operatingSystems") => {
        const values = r.list(key);
        if (checked) r.fail(key, r.raw[key], checkCatalogList(values));
        return values;
    };
    // An empty architectures list (its default) derives the badge from the platform. An empty
    // operatingSystems list, whose default is ["Linux"], was set on purpose: no badge.
    const badge = PLATFORMS[platform];
    const architecturesSet = list("architectures");
    const architectures = architecturesSet.length > 0 ? architecturesSet : badge ? [badge] : [];
    const operatingSystems = list("operatingSystems");
    return { description, aboutText, usageText, architectures, operatingSystems };
}

/** The repository's protection, the registry kind, and who may push. */
export function readRepository(r: ConfigReader) {
    const forceDestroy = r.bool("forceDestroy");
    const protect = r.bool("protect");
    if (forceDestroy && protect) {
        r.fail("forceDestroy", "true", {
            mentions: ["protect"],
            reason: "protect is true for this stack, and a protected repository must not be destroyable with its images",
            suggestion: "false",
        });
    }

    const registryText = r.str("registry");
    const registry = (REGISTRY_KINDS as readonly string[]).includes(registryText)
        ? (registryText as RegistryKind)
        : undefined;
    if (!registry) {
        r.fail("registry", registryText, {
            reason: `expected one of ${REGISTRY_KINDS.join(", ")} (local runs a registry on this machine, no AWS account needed)`,
            suggestion: REGISTRY_KINDS.find((k) => k === registryText.trim().toLowerCase()),
        });
    }

    const pushPrincipals = r.list("pushPrincipals");
    pushPrincipals.forEach((arn, index) => {
        const p = checkPrincipalArn(arn, { ecrPublic: registry === "ecr-public" });
        r.fail("pushPrincipals", arn, p && { ...p, mentions: ["registry"] }, index);
    });
    const duplicate = firstDuplicate(pushPrincipals);
    if (duplicate) {
        r.fail(
            "pushPrincipals",
            pushPrincipals[duplicate.index],
            {
                reason: `it repeats item ${duplicate.first}; each principal is listed once`,
                fix: `pulumi config rm --path 'pushPrincipals[${duplicate.index}]'`,
            },
            duplicate.index,
        );
    }
    return { forceDestroy, protect, registry, pushPrincipals };
}

/**
 * The settings only one kind of registry reads. A setting of another kind is refused as such,
 * and not checked further (one problem each). `registry` is undefined when it was refused.
 */
export function readTargetSettings(
    r: ConfigReader,
    registry: RegistryKind | undefined,
    pushPrincipals: readonly string[],
) {
    const ignored = new Set<ConfigKey>();
    const onlyFor = (key: ConfigKey, target: RegistryKind, why: string, value = r.raw[key]) => {
        if (r.isSet(key) && registry && registry !== target) {
            ignored.add(key);
            r.fail(key, value, {
                presence: true,
                mentions: ["registry"],
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
        r.fail("pushPrincipals", r.raw.pushPrincipals, {
            presence: true,
            mentions: ["registry"],
            reason: "a local registry has no IAM principals; remove pushPrincipals or publish to ecr-public or ecr-private",
            fix: "pulumi config rm pushPrincipals",
        });
    }

    const registryUrlText = r.str("registryUrl");
    let registryUrl: string | undefined;
    if (registryUrlText !== "" && !ignored.has("registryUrl")) {
        const p = checkRegistryUrl(registryUrlText);
        // Its suggestions are built from the URL's scheme and host alone.
        if (p) r.fail("registryUrl", registryUrlText, { ...p, redacted: true });
        else registryUrl = registryUrlText.replace(/\/+$/, "");
    }
    const username = r.str("registryUsername");
    const password = r.registryPassword;
    let registryCredentials: StackConfig["registryCredentials"];
    if (registry === "local") {
        if (username !== "" && password === undefined) {
            r.fail("registryPassword", undefined, {
                mentions: ["registry"],
                reason: `registryUsername is set, so the registry at registryUrl needs its password too; set it as a secret`,
            });
        } else if (username === "" && password !== undefined) {
            r.fail("registryUsername", undefined, {
                mentions: ["registry"],
                reason: "registryPassword is set, so set the user name it belongs to",
            });
        } else if ((username !== "" || password !== undefined) && registryUrl === undefined) {
            r.fail("registryUrl", undefined, {
                mentions: ["registry"],
                reason: "credentials are only for a registry you run yourself; the registry this stack runs takes none. Set registryUrl or remove registryUsername and registryPassword",
            });
        }
        if (username !== "" && password !== undefined) {
            registryCredentials = { username, password };
        }
    } else {
        onlyFor("registryPassword", "local", "it is the password for registryUrl", "[secret]");
    }

    const image = r.str("localRegistryImage");
    if (!ignored.has("localRegistryImage")) {
        r.fail("localRegistryImage", image, checkImageReference(image));
    }
    const portText = r.raw.localRegistryPort;
    const port = portText === undefined ? 5000 : Number(portText);
    const portValid = /^\d+$/.test(portText ?? "5000") && port >= 1 && port <= 65535;
    if (!portValid && !ignored.has("localRegistryPort")) {
        r.fail("localRegistryPort", portText, { reason: "expected a TCP port from 1 to 65535" });
    }

    const kmsKey = r.str("kmsKey");
    const kmsProblem = kmsKey === "" || ignored.has("kmsKey") ? undefined : checkKmsKeyArn(kmsKey);
    if (kmsProblem) {
        r.fail("kmsKey", kmsKey, {
            reason: `${kmsProblem.reason}; leave it empty for AES256 encryption`,
        });
    }
    return {
        registryUrl,
        registryCredentials,
        localRegistry: { image, port },
        kmsKey: kmsKey || undefined,
    };
}

/** A registry API base URL: http(s), a host and an optional port, nothing else. */
function checkRegistryUrl(text: string): Problem | undefined {
    const url = URL.canParse(text) ? new URL(text) : undefined;
    // A password, or the token it buys, in cleartext is only safe on this machine.
    const local = (host: string) => host === "localhost" || isLoopbackHost(host);
    if (!url || (url.protocol !== "http:" && url.protocol !== "https:") || url.host === "") {
        const host = /^[\w.-]+(:\d+)?$/.test(text) ? text.split(":")[0] : undefined;
        return {
            reason: "expected the registry's URL, http:// or https:// with a host and port, such as http://127.0.0.1:5000",
            suggestion: host && `${local(host) ? "http" : "https"}://${text}`,
        };
    }
    if (url.protocol === "http:" && !local(url.hostname)) {
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
