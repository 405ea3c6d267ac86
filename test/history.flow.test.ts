/**
 * What a stack published stays known: across repository switches (A -> B -> A), across a job
 * killed after its push, and, for a promoting stack, every promoted version is re-verified on
 * each run and on refresh. Runs of the guard, docker.Image (real Docker) and the record, or of the
 * promotion, as support/engine.ts drives them, against a real distribution registry.
 */
import { ensureDockerEngine } from "./support/docker";
import { GuardRefused, PromotingStack, SimulatedStack } from "./support/engine";
import * as flow from "./support/flow";
import { modelContext, useFlowEngine } from "./support/flow";
import { LocalRegistry, pushImage, startRegistry } from "./support/registry";

jest.setTimeout(240_000);

let registry: LocalRegistry;
const hosts = useFlowEngine(async (keep) => {
    await ensureDockerEngine();
    registry = keep(await startRegistry());
});

const digestOf = (repository: string, tag: string) => flow.digestOf(registry, repository, tag);
const deleteTag = (repository: string, tag: string) => flow.deleteTag(registry, repository, tag);

function stackOn(repository: string): SimulatedStack {
    return new SimulatedStack(hosts, { registry, repository, publisher: "model-registry/dev" });
}

it("A -> B -> A: A's versions are still known; a deleted one is refused, an overwritten one reported", async () => {
    const stack = stackOn("switch/a");
    await stack.up({ version: "1.0.0", context: modelContext('{"a": 1}') });
    await stack.up({ version: "1.1.0", context: modelContext('{"a": 2}') });
    const a10 = await digestOf("switch/a", "1.0.0");
    const a11 = await digestOf("switch/a", "1.1.0");
    stack.switchTo("switch/b");
    await stack.up({ version: "2.0.0", context: modelContext('{"b": 1}') });
    await deleteTag("switch/a", "1.0.0");
    const theirs = await pushImage(registry.endpoint("switch/a"), "1.1.0", "overwrite");

    stack.switchTo("switch/a");
    const other = stack.up({ version: "1.0.0", context: modelContext('{"evil": 1}') });
    await expect(other).rejects.toThrow(GuardRefused);
    await expect(other).rejects.toThrow(`switch/a:1.0.0 was published as ${a10}`);
    expect(await digestOf("switch/a", "1.0.0")).toBeUndefined();

    const bump = stack.up({ version: "1.2.0", context: modelContext('{"a": 3}') });
    await expect(bump).rejects.toThrow(
        `switch/a:1.1.0 was published by this stack as ${a11}, and the registry now holds ${theirs}`,
    );
    expect(await digestOf("switch/a", "1.2.0")).toBeUndefined();
    expect(stack.pushes).toEqual(["1.0.0", "1.1.0", "2.0.0"]);
});

it("a push that landed in a killed run, then deleted, is never published again with other content", async () => {
    const stack = stackOn("killed/m");
    const ctx = modelContext('{"k": 1}');
    await stack.up({ version: "1.0.0", context: ctx });
    const killed = stack.up({ version: "1.1.0", context: ctx, fault: "after-push" });
    await expect(killed).rejects.toThrow("job killed after pushing");
    await deleteTag("killed/m", "1.1.0");

    const other = stack.up({ version: "1.1.0", context: modelContext('{"k": 2}') });
    await expect(other).rejects.toThrow("1.1.0 was cleared for publication by this stack");
    expect(await digestOf("killed/m", "1.1.0")).toBeUndefined();

    // A retry with the content it was cleared for still publishes.
    const retry = await stack.up({ version: "1.1.0", context: ctx });
    expect(retry.pushed).toBe(true);
    expect(retry.imageRef).toBe(`${stack.repositoryUri}@${await digestOf("killed/m", "1.1.0")}`);
});

it("an acknowledgement releases only the claim it names, never the next one", async () => {
    const stack = stackOn("claims/ack");
    const a = modelContext('{"c": "A"}');
    const b = modelContext('{"c": "B"}');
    const failed = stack.up({ version: "1.0.0", context: a, fault: "before-push" });
    await expect(failed).rejects.toThrow("connection reset");

    // Claimed for A: B is refused, and 'absent' (for deleted tags) does not release the claim.
    const refused = stack.up({ version: "1.0.0", context: b });
    await expect(refused).rejects.toThrow("1.0.0 was cleared for publication by this stack");
    const release = /acknowledgedTampering\[0\]' 1\.0\.0=(unclaim:[0-9a-f]{12})/.exec(
        await refused.then(
            () => "",
            (e: Error) => e.message,
        ),
    )?.[1];
    expect(release).toBeDefined();
    const absent = stack.up({ version: "1.0.0", context: b, acknowledged: { "1.0.0": "absent" } });
    await expect(absent).rejects.toThrow("1.0.0 was cleared for publication by this stack");

    // Released for B, whose push lands in a killed run; someone deletes the tag.
    const ack = { "1.0.0": release! };
    const killed = stack.up({
        version: "1.0.0",
        context: b,
        acknowledged: ack,
        fault: "after-push",
    });
    await expect(killed).rejects.toThrow("job killed after pushing");
    expect(await digestOf("claims/ack", "1.0.0")).toMatch(/^sha256:/);
    await deleteTag("claims/ack", "1.0.0");

    // The same entry names A's claim, not B's: C is refused, B still publishes.
    const c = stack.up({
        version: "1.0.0",
        context: modelContext('{"c": "C"}'),
        acknowledged: ack,
    });
    await expect(c).rejects.toThrow("1.0.0 was cleared for publication by this stack");
    expect(await digestOf("claims/ack", "1.0.0")).toBeUndefined();
    const retry = await stack.up({ version: "1.0.0", context: b, acknowledged: ack });
    expect(retry.pushed).toBe(true);
});

it("building, then promoting into the same repository: what the stack built is re-verified and never replaced", async () => {
    const built = new SimulatedStack(hosts, {
        registry,
        repository: "mode/prod",
        publisher: "model-registry/prod",
    });
    await built.up({ version: "1.0.0", context: modelContext('{"built": "A"}') });
    const a = await digestOf("mode/prod", "1.0.0");
    const staging = new SimulatedStack(hosts, {
        registry,
        repository: "mode/staging",
        publisher: "model-registry/staging",
    });
    await staging.up({ version: "1.0.0", context: modelContext('{"staging": "B"}') });
    await staging.up({ version: "1.1.0", context: modelContext('{"staging": "C"}') });
    const prod = new PromotingStack(hosts, {
        registry,
        repository: "mode/prod",
        source: { registry, repository: "mode/staging" },
        sourceName: "stack staging",
        sourcePublished: () => staging.history,
        publishedBefore: () => ({ repositoryUri: built.repositoryUri, versions: built.history }),
    });

    // The built 1.0.0, overwritten, stops the promotion of 1.1.0 until acknowledged.
    const theirs = await pushImage(registry.endpoint("mode/prod"), "1.0.0", "overwrite");
    const bump = prod.up("1.1.0");
    await expect(bump).rejects.toThrow(
        `mode/prod:1.0.0 was published by this stack as ${a}, and the registry now holds ${theirs}`,
    );
    expect(await digestOf("mode/prod", "1.1.0")).toBeUndefined();
    await prod.up("1.1.0", { "1.0.0": theirs });
    expect(Object.keys(prod.outputs?.history as object).sort()).toEqual(["1.0.0", "1.1.0"]);

    // Deleted: staging's other 1.0.0 is never copied in, acknowledged or not.
    await deleteTag("mode/prod", "1.0.0");
    await expect(prod.up("1.0.0")).rejects.toThrow(GuardRefused);
    const acknowledged = prod.up("1.0.0", { "1.0.0": "absent" });
    await expect(acknowledged).rejects.toThrow(`mode/prod:1.0.0 was promoted as ${a}`);
    expect(await digestOf("mode/prod", "1.0.0")).toBeUndefined();
});

describe("a promoting stack re-verifies every version it promoted", () => {
    let source: SimulatedStack;
    let prod: PromotingStack;
    const promoted: Record<string, string> = {};

    beforeAll(async () => {
        source = stackOn("promo/src");
        for (const v of ["1.0.0", "1.1.0", "1.2.0"]) {
            await source.up({ version: v, context: modelContext(`{"v": "${v}"}`) });
        }
        prod = new PromotingStack(hosts, {
            registry,
            repository: "promo/prod",
            source: { registry, repository: "promo/src" },
            sourceName: "stack staging",
            sourcePublished: () => source.history,
        });
        for (const v of ["1.0.0", "1.1.0"]) {
            promoted[v] = (await prod.up(v)).imageRef.split("@")[1];
        }
    });

    it("stops an unchanged run, a bump and refresh when an older version was overwritten, until acknowledged", async () => {
        const theirs = await pushImage(registry.endpoint("promo/prod"), "1.0.0", "overwrite");
        const fact = `promo/prod:1.0.0 was published by this stack as ${promoted["1.0.0"]}, and the registry now holds ${theirs}`;
        await expect(prod.up("1.1.0")).rejects.toThrow(fact);
        await expect(prod.up("1.2.0")).rejects.toThrow(fact);
        expect(await digestOf("promo/prod", "1.2.0")).toBeUndefined();
        await expect(prod.refresh()).rejects.toThrow(fact);

        const acknowledged = { "1.0.0": theirs };
        const bump = await prod.up("1.2.0", acknowledged);
        promoted["1.2.0"] = bump.imageRef.split("@")[1];
        expect(await digestOf("promo/prod", "1.2.0")).toBe(promoted["1.2.0"]);
        await expect(prod.refresh()).resolves.toBeUndefined();
    });

    it("reports a promoted tag that was deleted instead of copying it back; 'absent' copies it back", async () => {
        await deleteTag("promo/prod", "1.2.0");
        const acknowledged: Record<string, string> = { "1.0.0": await pushedNow("1.0.0") };
        await expect(prod.up("1.2.0", acknowledged)).rejects.toThrow(
            `promo/prod:1.2.0 was promoted by this stack as ${promoted["1.2.0"]}, and the registry no longer has the tag`,
        );
        expect(await digestOf("promo/prod", "1.2.0")).toBeUndefined();
        await expect(prod.refresh()).rejects.toThrow("1.2.0 was published by this stack");

        await prod.up("1.2.0", { ...acknowledged, "1.2.0": "absent" });
        expect(await digestOf("promo/prod", "1.2.0")).toBe(promoted["1.2.0"]);
    });
});

async function pushedNow(tag: string): Promise<string> {
    const digest = await digestOf("promo/prod", tag);
    if (!digest) throw new Error(`promo/prod:${tag} is not there`);
    return digest;
}
