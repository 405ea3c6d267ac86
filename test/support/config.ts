/** The config tests' helpers: a stack's config as the CLI model hands it to the program's reader. */
import * as pulumi from "@pulumi/pulumi";
import { CONFIG_KEYS, RawConfig, StackConfig, readConfig } from "../../config";
import { ConfigCommands, newStack, stackText } from "./program";
import { CliError, programConfig } from "./pulumiCli";

export const ctx = { project: "model-registry", stack: "dev" };
export const v = { modelVersion: "1.0.0" };

/**
 * The stack's config after `pulumi config set` of each key on a new stack (a list key's JSON text
 * as one `--path` item each, as a user sets lists), as `pulumi up` hands it to the program.
 */
export function parse(
    raw: Raw,
    stack = "dev",
    opts: { skipValidation?: boolean } = {},
): StackConfig {
    const commands: ConfigCommands = {};
    for (const [key, text] of Object.entries(raw)) {
        if (typeof text !== "string") {
            commands[key] = text;
            continue;
        }
        let items: unknown;
        try {
            items = JSON.parse(text);
        } catch {
            items = undefined;
        }
        const isList = CONFIG_KEYS[key as keyof typeof CONFIG_KEYS]?.kind === "array";
        commands[key] =
            isList && Array.isArray(items) && items.every((i) => typeof i === "string")
                ? items
                : text;
    }
    const cli = programConfig(newStack(commands), stack, opts);
    return readConfig(cli.config, (k) => cli.secretKeys.includes(k), { ...ctx, stack });
}

/** Config as a test gives it: text per key, or `{ secret }` for `pulumi config set --secret`. */
export type Raw = RawConfig | Record<string, string | { secret: string }>;

/** The config of a stack file written by hand (lists in YAML), as `pulumi up` hands it over. */
export function parseText(yaml: string): StackConfig {
    const cli = programConfig(stackText(yaml), "dev");
    return readConfig(cli.config, (k) => cli.secretKeys.includes(k), ctx);
}

/**
 * The message that stops the run: the CLI's, or the program's RunError. `skipValidation`: the
 * program's own check of a value the CLI refuses, reached with `--skip-config-validation`.
 */
export function errorOf(raw: Raw, opts: { skipValidation?: boolean } = {}): string {
    try {
        parse(raw, "dev", opts);
    } catch (e) {
        expect(e instanceof CliError || pulumi.RunError.isInstance(e)).toBe(true);
        return (e as Error).message;
    }
    throw new Error("expected the run to stop");
}

/** The `Fix:` lines of a config error. */
export function fixesOf(raw: Raw, opts: { skipValidation?: boolean } = {}): string[] {
    return errorOf(raw, opts)
        .split("\n")
        .filter((l) => l.startsWith("    Fix: "))
        .map((l) => l.slice("    Fix: ".length));
}
