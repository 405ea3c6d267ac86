import * as pulumi from "@pulumi/pulumi";
import * as fs from "fs";
import { loadConfig } from "../../config";
import { modelRegistry } from "../../program";
import { StackConfig, loadProject, programConfig } from "./pulumiCli";
import { MockOptions, Recorder } from "./pulumiMocks";

type Pulumi = typeof import("@pulumi/pulumi");

/** One run of the program under mocks: what it registered and exported, or how it failed. */
export interface Run {
    readonly pulumi: Pulumi;
    readonly recorder: Recorder;
    readonly outputs: Record<string, any>;
    readonly error: unknown;
}

const project = loadProject(fs.readFileSync("Pulumi.yaml", "utf8"));

/**
 * What a test does to a stack's config, as the README's commands would: a string is `pulumi
 * config set <key> <value>`; a list is `pulumi config set --path '<key>[i]' <item>` for each item
 * (after `rm`); `{ secret }` is `pulumi config set --secret`; `null` is `pulumi config rm`.
 */
export type ConfigCommands = Record<string, string | readonly string[] | { secret: string } | null>;

/** A committed stack file (`Pulumi.<stack>.yaml`), then the given commands. */
export function stackFile(stack: string, commands: ConfigCommands = {}): StackConfig {
    return configure(
        new StackConfig(project, fs.readFileSync(`Pulumi.${stack}.yaml`, "utf8")),
        commands,
    );
}

/** A stack file as a user wrote it by hand (YAML), then the given commands. */
export function stackText(yaml: string, commands: ConfigCommands = {}): StackConfig {
    return configure(new StackConfig(project, yaml), commands);
}

/** A stack just made with `pulumi stack init` (no config), then the given commands. */
export function newStack(commands: ConfigCommands = {}): StackConfig {
    return configure(new StackConfig(project), commands);
}

function configure(stack: StackConfig, commands: ConfigCommands): StackConfig {
    for (const [key, value] of Object.entries(commands)) {
        if (value === null) {
            stack.rm(key);
        } else if (typeof value === "string") {
            stack.set(key, value);
        } else if ("secret" in value) {
            stack.set(key, value.secret, { secret: true });
        } else {
            stack.rm(key);
            value.forEach((item, i) => stack.set(`${key}[${i}]`, item, { path: true }));
        }
    }
    return stack;
}

/**
 * Runs the program as `pulumi up` would: the config the CLI makes of the stack (throws the CLI's
 * error when it would stop before the program), read by the program's own `loadConfig`, then the
 * stack function index.ts calls, recording what it registers. The SDK is loaded once per test
 * file; each run gets fresh mocks.
 */
export async function runProgram(
    stack: StackConfig,
    opts: { stack?: string; preview?: boolean } & Pick<
        MockOptions,
        "invokes" | "stackOutputs"
    > = {},
): Promise<Run> {
    const { config, secretKeys } = programConfig(stack, opts.stack ?? "dev");
    const recorder = await Recorder.start(pulumi, {
        config,
        secretKeys,
        stack: opts.stack,
        preview: opts.preview,
        invokes: opts.invokes,
        stackOutputs: opts.stackOutputs,
    });
    let outputs: Record<string, any> = {};
    let error: unknown;
    try {
        outputs = modelRegistry(loadConfig());
    } catch (e) {
        error = e;
    }
    await recorder.settle();
    return { pulumi, recorder, outputs, error };
}
