/**
 * The release's stack operations for real: `ReleaseWorkspace` on the Pulumi Automation API (tests
 * give `runRelease` a workspace of their own).
 */
import { LocalWorkspace, Stack } from "@pulumi/pulumi/automation";
import * as path from "path";
import { ReleaseWorkspace, describeError } from "./run";

/**
 * `ReleaseWorkspace` on the Automation API, over the Pulumi CLI, in the project directory.
 * Constructing it runs nothing: the CLI is found on the first stack operation. Outputs and config
 * are read and written with `--stack`; only `up` and `preview` select the target stack (as
 * `pulumi stack select` would).
 */
export class LocalReleaseWorkspace implements ReleaseWorkspace {
    private workspace?: Promise<LocalWorkspace>;

    constructor(
        /** The project directory (where `Pulumi.yaml` is). */
        readonly workDir: string,
        /** The project name, the namespace of `modelVersion`. */
        readonly project: string,
    ) {}

    private local(): Promise<LocalWorkspace> {
        this.workspace ??= LocalWorkspace.create({ workDir: this.workDir });
        return this.workspace;
    }

    /** The project's policy pack, enforced on every release as in CI's previews and deploys. */
    private policyPacks(): string[] {
        return [path.join(this.workDir, "policy")];
    }

    async outputs(stack: string): Promise<Record<string, unknown>> {
        const outputs = await (await this.local()).stackOutputs(stack);
        return Object.fromEntries(Object.entries(outputs).map(([k, v]) => [k, v.value as unknown]));
    }

    async setVersion(stack: string, version: string): Promise<void> {
        await (await this.local()).setConfig(stack, this.versionKey(), { value: version });
    }

    async getVersion(stack: string): Promise<string | undefined> {
        try {
            return (await (await this.local()).getConfig(stack, this.versionKey())).value;
        } catch (e) {
            // The CLI says "configuration key '...' not found" for a key that is not set.
            if (/not found/i.test(describeError(e))) return undefined;
            throw e;
        }
    }

    async restoreVersion(stack: string, previous: string | undefined): Promise<void> {
        if (previous !== undefined) return this.setVersion(stack, previous);
        await (await this.local()).removeConfig(stack, this.versionKey());
    }

    private versionKey(): string {
        return `${this.project}:modelVersion`;
    }

    /**
     * Runs an operation on `stack`, which the Automation API selects (as `pulumi stack select`
     * does), then selects again the stack that was selected before: the user's next `pulumi up`
     * in this directory goes where it went before the release.
     */
    private async onStack<T>(stack: string, run: (s: Stack) => Promise<T>): Promise<T> {
        const ws = await this.local();
        const before = (await ws.stack().catch(() => undefined))?.name;
        try {
            return await run(await Stack.select(stack, ws));
        } finally {
            if (before && before !== stack) await ws.selectStack(before);
        }
    }

    async up(stack: string, onOutput: (text: string) => void): Promise<void> {
        await this.onStack(stack, (s) => s.up({ onOutput, policyPacks: this.policyPacks() }));
    }

    async preview(
        stack: string,
        onOutput: (text: string) => void,
    ): Promise<Record<string, number>> {
        const result = await this.onStack(stack, (s) =>
            s.preview({ onOutput, policyPacks: this.policyPacks() }),
        );
        return { ...result.changeSummary };
    }
}
