/**
 * config/: the stack's configuration, read from Pulumi and checked here by concern (version.ts,
 * build.ts and target.ts, on the typed values of reader.ts), turned into a `StackConfig`
 * (keys.ts), or refused with one message that lists every problem and its fix (messages.ts, which
 * masks what credentials.ts finds). It imports lib/validation, lib/oci and lib/publication, never
 * components.
 */
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_KEYS, ConfigKey, RawConfig, SECRET_KEYS, StackConfig, StackName } from "./keys";
import { formatProblems } from "./messages";
import { ConfigReader, unknownKeyProblems } from "./reader";
import { readBuild, readLabels } from "./build";
import { readCatalog, readRepository, readRepositoryName, readTargetSettings } from "./target";
import { readAcknowledgedTampering, readModelVersion, readPromotionSource } from "./version";

export { CONFIG_KEYS };
export type { ConfigKey, RawConfig, StackConfig };

/** Reads the current stack's config, as the CLI hands it over. Throws a `RunError` on bad input. */
export function loadConfig(): StackConfig {
    // The keys the user set with --secret, as the engine passes them (PULUMI_CONFIG_SECRET_KEYS),
    // read with the SDK's `isConfigSecret`, which its typings do not export.
    // eslint-disable-next-line @typescript-eslint/no-require-imports
    const { isConfigSecret } = require("@pulumi/pulumi/runtime/config") as {
        isConfigSecret: (fullKey: string) => boolean;
    };
    return readConfig(pulumi.runtime.allConfig(), isConfigSecret, {
        project: pulumi.getProject(),
        stack: pulumi.getStack(),
    });
}

/**
 * The stack's config from the text of every key the CLI passed (`<namespace>:<key>`, with each
 * declared default written in) and which of them the user set as secrets: every key's text
 * checked and read, with its default applied. Every problem is collected, so the user sees all
 * of them in one message, each with the command that fixes it.
 */
export function readConfig(
    all: Readonly<Record<string, string>>,
    isSecret: (fullKey: string) => boolean,
    ctx: StackName,
): StackConfig {
    const raw: RawConfig = {};
    // Every key's text, for the message; a value the user set with --secret is never shown.
    const values = new Map<string, string>();
    const secretValues = new Set<string>();
    for (const key of Object.keys(CONFIG_KEYS) as ConfigKey[]) {
        const value = all[`${ctx.project}:${key}`];
        if (value !== undefined && !SECRET_KEYS.has(key)) raw[key] = value;
        if (value !== undefined) values.set(key, value);
        if (value !== undefined && isSecret(`${ctx.project}:${key}`)) secretValues.add(key);
    }
    // The password becomes a secret Output, so it stays encrypted in the state and masked in
    // output. Its declared default, "", is no password.
    const password = all[`${ctx.project}:registryPassword`] ?? "";
    const registryPassword = password === "" ? undefined : pulumi.secret(password);
    const r = new ConfigReader(raw, registryPassword);
    // The checks run in this order, which is the order of the message's problems. A key of this
    // project's namespace that the program does not read (`model-registry:modelversion`) is
    // reported by name, with the key that was probably meant; its value (which may be a secret)
    // is never read.
    const unknown = unknownKeyProblems(
        Object.keys(all),
        ctx.project,
        (key) => r.isSet(key),
        isSecret,
    );
    r.problems.push(...unknown.problems);
    if (registryPassword !== undefined && !secretValues.has("registryPassword")) {
        r.problems.push({
            key: "registryPassword",
            value: undefined,
            shown: "is set in plain text",
            reason: "a password is kept only as a secret (encrypted in the stack file, masked in output); set it again with --secret, which prompts for it",
            fix: "pulumi config set --secret registryPassword",
        });
    }
    const modelVersion = readModelVersion(r, unknown.meant.has("modelVersion"));
    const repositoryName = readRepositoryName(r, ctx);
    const promotion = readPromotionSource(r, ctx);
    const promoting = promotion.source !== undefined || promotion.problem !== undefined;
    const build = readBuild(r, promoting);
    const catalog = readCatalog(r, build.platform);
    const { registry, pushPrincipals, ...repository } = readRepository(r);
    const labels = readLabels(r);
    const target = readTargetSettings(r, registry, pushPrincipals);
    const acknowledgedTampering = readAcknowledgedTampering(r);

    if (r.problems.length > 0 || registry === undefined) {
        throw new pulumi.RunError(formatProblems(r.problems, ctx, values, secretValues));
    }
    return {
        modelVersion,
        repositoryName,
        ...build,
        catalog,
        ...repository,
        pushPrincipals,
        ...labels,
        promoteFrom: promotion.source,
        registry,
        ...target,
        acknowledgedTampering,
    };
}
