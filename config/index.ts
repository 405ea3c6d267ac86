/**
 * config/: the stack's configuration, read from Pulumi (this file), checked by concern (parse.ts
 * runs the checks of version.ts, build.ts and target.ts on the typed values of reader.ts) and
 * turned into a `StackConfig` (keys.ts), or refused with one message that lists every problem
 * and its fix (messages.ts). It imports lib/validation, lib/oci and lib/publication, never
 * components.
 */
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_KEYS, ConfigKey, RawConfig, SECRET_KEYS, StackConfig, StackName } from "./keys";
import { parseConfig } from "./parse";

export { CONFIG_KEYS };
export type { ConfigKey, RawConfig, StackConfig };

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
    ctx: StackName,
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
