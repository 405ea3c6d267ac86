/**
 * jest's globalSetup: checks once, before any suite starts, that the suites this run selected
 * have what they need (the registry server, the Docker client and engine, skopeo, the local base
 * image), and fails the run with one message that names everything missing and how to install
 * it. A run of suites that need none of it (`npm run test:unit`) checks nothing.
 *
 * The resolved executables are exported as DOCKER_BIN, REGISTRY_BIN and SKOPEO_BIN, which the
 * test workers (started after this) inherit, so every suite uses the same ones.
 */
import * as fs from "fs";
import { baseImage, ensureDockerEngine } from "./docker";
import { checkTools, missingToolsMessage, Need, suiteNeeds, TOOLS } from "./tools";

const SELECTED = Symbol.for("model-registry.selectedSuites");

/** An error whose stack is its message: jest prints the stack, and a trace here is noise. */
function cleanError(message: string): Error {
    const error = new Error(message);
    error.stack = message;
    return error;
}

export default async function globalSetup(): Promise<void> {
    const selected = (globalThis as Record<symbol, unknown>)[SELECTED];
    // Without the recording sequencer (another --testSequencer) each suite checks for itself.
    if (!Array.isArray(selected)) return;
    const needs = new Set<Need>();
    for (const file of selected as string[])
        for (const need of suiteNeeds(fs.readFileSync(file, "utf8"))) needs.add(need);
    if (needs.size === 0) return;

    const { found, missing } = checkTools(needs);
    if (missing.length > 0) throw cleanError(missingToolsMessage(missing));
    for (const [name, file] of found) {
        const env = TOOLS[name].env;
        if (env) process.env[env] = file;
    }
    try {
        if (needs.has("docker engine")) await ensureDockerEngine();
        if (needs.has("base image")) baseImage();
    } catch (e) {
        throw cleanError(
            `${e instanceof Error ? e.message : String(e)}\n` +
                "Without it, 'npm run test:unit' runs the suites that need no Docker engine or registry.",
        );
    }
}
