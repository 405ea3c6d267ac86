import * as fs from "fs";
import * as YAML from "yaml";
import { MockOptions, Recorder } from "./pulumiMocks";

type Pulumi = typeof import("@pulumi/pulumi");

/** One run of the program under mocks: what it registered and exported, or how it failed. */
export interface Run {
    readonly pulumi: Pulumi;
    readonly recorder: Recorder;
    readonly outputs: Record<string, any>;
    readonly error: unknown;
}

/** Config from a stack file, as the engine passes it to the program. */
export function stackFileConfig(stack: string): Record<string, string> {
    const doc = YAML.parse(fs.readFileSync(`Pulumi.${stack}.yaml`, "utf8")) as {
        config: Record<string, unknown>;
    };
    return Object.fromEntries(
        Object.entries(doc.config).map(([k, v]) => [
            k,
            typeof v === "string" ? v : JSON.stringify(v),
        ]),
    );
}

/** `{ modelVersion: "1.0.0" }` -> `{ "model-registry:modelVersion": "1.0.0" }`. */
export function projectConfig(values: Record<string, string>): Record<string, string> {
    return Object.fromEntries(
        Object.entries(values).map(([k, v]) => [k.includes(":") ? k : `model-registry:${k}`, v]),
    );
}

/** Runs index.ts in a fresh module registry, as `pulumi up` would, and records what it registers. */
export async function runProgram(
    config: Record<string, string>,
    opts: { stack?: string; preview?: boolean } & Pick<
        MockOptions,
        "invokes" | "stackOutputs"
    > = {},
): Promise<Run> {
    jest.resetModules();
    const pulumi: Pulumi = await import("@pulumi/pulumi");
    const recorder = await Recorder.start(pulumi, {
        config: projectConfig(config),
        stack: opts.stack,
        preview: opts.preview,
        invokes: opts.invokes,
        stackOutputs: opts.stackOutputs,
    });
    let outputs: Record<string, any> = {};
    let error: unknown;
    try {
        outputs = await import("../../index");
    } catch (e) {
        error = e;
    }
    await recorder.settle();
    return { pulumi, recorder, outputs, error };
}
