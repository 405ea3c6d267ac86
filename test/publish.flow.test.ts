/**
 * "A published version never changes", across runs: each flow is a sequence of `pulumi up` runs
 * of ModelImage's steps (guard and record in the SDK's dynamic provider host, docker.Image played
 * by the real Docker engine, see support/engine.ts) against the real distribution registry. Every
 * flow asserts each tag's digest in the registry before and after. Never skipped.
 */
import * as fs from "fs";
import * as path from "path";
import { ensureDockerEngine } from "./support/docker";
import { GuardRefused, SimulatedStack } from "./support/engine";
import {
    deleteTag,
    digestOf,
    modelContext,
    removedAfterSuite,
    useFlowEngine,
} from "./support/flow";
import { LocalRegistry, pushImage, startRegistry } from "./support/registry";

jest.setTimeout(180_000);

let registry: LocalRegistry;
const hosts = useFlowEngine(async (keep) => {
    await ensureDockerEngine();
    registry = keep(await startRegistry());
});

let repoCount = 0;
function newStack(publisher = "model-registry/dev"): SimulatedStack {
    repoCount++;
    return new SimulatedStack(hosts, { registry, repository: `flow/m${repoCount}`, publisher });
}

const repositoryOf = (stack: SimulatedStack) => stack.repositoryUri.slice(registry.host.length + 1);
const digestOfTag = (stack: SimulatedStack, tag: string) =>
    digestOf(registry, repositoryOf(stack), tag);

describe("publishing across runs", () => {
    it("publishes a version once; an unchanged run pushes nothing and keeps the digest", async () => {
        const stack = newStack();
        const ctx = modelContext('{"w": 1}');
        const first = await stack.up({ version: "1.0.0", context: ctx });
        expect(first.pushed).toBe(true);
        const digest = await digestOfTag(stack, "1.0.0");
        expect(first.imageRef).toBe(`${stack.repositoryUri}@${digest}`);

        const again = await stack.up({ version: "1.0.0", context: ctx });
        expect(again).toEqual({ imageRef: first.imageRef, pushed: false, imageCreated: false });
        expect(await digestOfTag(stack, "1.0.0")).toBe(digest);
        expect(stack.history).toEqual({
            "1.0.0": { fingerprint: expect.stringMatching(/^sha256:/), digest },
        });
    });

    it("retries a push that failed before reaching the registry", async () => {
        const stack = newStack();
        const ctx = modelContext('{"w": 2}');
        await expect(
            stack.up({ version: "1.0.0", context: ctx, fault: "before-push" }),
        ).rejects.toThrow("connection reset");
        expect(await digestOfTag(stack, "1.0.0")).toBeUndefined();

        const retry = await stack.up({ version: "1.0.0", context: ctx });
        expect(retry.pushed).toBe(true);
        expect(retry.imageRef).toBe(`${stack.repositoryUri}@${await digestOfTag(stack, "1.0.0")}`);
    });

    it("adopts, never re-pushes, a push that landed before the job was killed", async () => {
        const stack = newStack();
        const ctx = modelContext('{"w": 3}');
        await expect(
            stack.up({ version: "1.0.0", context: ctx, fault: "after-push" }),
        ).rejects.toThrow("job killed");
        const landed = await digestOfTag(stack, "1.0.0");
        expect(landed).toMatch(/^sha256:/);

        // The retry rebuilds without cache (a new digest if it pushed): it must not push.
        const retry = await stack.up({ version: "1.0.0", context: ctx });
        expect(retry).toMatchObject({ pushed: false, imageCreated: true });
        expect(await digestOfTag(stack, "1.0.0")).toBe(landed);
        expect(retry.imageRef).toBe(`${stack.repositoryUri}@${landed}`);
        expect(stack.pushes).toEqual(["1.0.0"]);
    });

    it("refuses a retry when someone else pushed the tag between the runs", async () => {
        const stack = newStack();
        const ctx = modelContext('{"w": 4}');
        await expect(
            stack.up({ version: "1.0.0", context: ctx, fault: "before-push" }),
        ).rejects.toThrow();
        const theirs = await pushImage(
            registry.endpoint(repositoryOf(stack)),
            "1.0.0",
            "someone else",
        );

        const retry = stack.up({ version: "1.0.0", context: ctx });
        await expect(retry).rejects.toThrow(GuardRefused);
        await expect(retry).rejects.toThrow("was not published by this program");
        expect(await digestOfTag(stack, "1.0.0")).toBe(theirs);
    });

    it("rolls back 1.0.0 -> 1.1.0 -> 1.0.0 without pushing, to 1.0.0's original digest", async () => {
        const stack = newStack();
        const v1 = modelContext('{"w": 5}');
        const v2 = modelContext('{"w": 6}');
        const first = await stack.up({ version: "1.0.0", context: v1 });
        const d100 = await digestOfTag(stack, "1.0.0");
        await stack.up({ version: "1.1.0", context: v2 });
        const d110 = await digestOfTag(stack, "1.1.0");

        const rollback = await stack.up({ version: "1.0.0", context: v1 });
        expect(rollback.pushed).toBe(false);
        expect(rollback.imageRef).toBe(first.imageRef);
        expect(await digestOfTag(stack, "1.0.0")).toBe(d100);
        expect(await digestOfTag(stack, "1.1.0")).toBe(d110);
        expect(stack.pushes).toEqual(["1.0.0", "1.1.0"]);
        expect(Object.keys(stack.history).sort()).toEqual(["1.0.0", "1.1.0"]);
        expect(stack.history["1.0.0"].digest).toBe(d100);
    });

    it("refuses a rollback to a version whose sources are not checked out, naming what was published", async () => {
        const stack = newStack();
        await stack.up({ version: "1.0.0", context: modelContext('{"w": 7}') });
        const d100 = await digestOfTag(stack, "1.0.0");
        const v2 = modelContext('{"w": 8}');
        await stack.up({ version: "1.1.0", context: v2 });

        const rollback = stack.up({ version: "1.0.0", context: v2 });
        await expect(rollback).rejects.toThrow(
            `${stack.repositoryUri}:1.0.0 is already published by this stack with other content: the registry holds ${d100}`,
        );
        expect(await digestOfTag(stack, "1.0.0")).toBe(d100);
    });

    it("refuses the same version after a mode change (a clone under umask 002)", async () => {
        const stack = newStack();
        const ctx = modelContext('{"w": 9}', { mode: 0o644 });
        await stack.up({ version: "1.0.0", context: ctx });
        const digest = await digestOfTag(stack, "1.0.0");

        fs.chmodSync(path.join(ctx, "model.json"), 0o664);
        await expect(stack.up({ version: "1.0.0", context: ctx })).rejects.toThrow(
            "is already published by this stack with other content",
        );
        expect(await digestOfTag(stack, "1.0.0")).toBe(digest);
        expect(stack.pushes).toEqual(["1.0.0"]);
    });

    it("reports loudly a tag overwritten outside this program, and does not push", async () => {
        const stack = newStack();
        const ctx = modelContext('{"w": 10}');
        await stack.up({ version: "1.0.0", context: ctx });
        const ours = await digestOfTag(stack, "1.0.0");
        // The next run verifies and remembers the digest; then someone overwrites the tag.
        await stack.up({ version: "1.0.0", context: ctx });
        const theirs = await pushImage(
            registry.endpoint(repositoryOf(stack)),
            "1.0.0",
            "overwrite",
        );

        const run = stack.up({ version: "1.0.0", context: ctx });
        await expect(run).rejects.toThrow(`moved: this stack verified it as ${ours}`);
        expect(await digestOfTag(stack, "1.0.0")).toBe(theirs);
        expect(stack.pushes).toEqual(["1.0.0"]);
    });

    it("does not let another stack of the project overwrite a version it published", async () => {
        const dev = newStack("model-registry/dev");
        const ctx = modelContext('{"w": 11}');
        await dev.up({ version: "2.0.0", context: ctx });
        const digest = await digestOfTag(dev, "2.0.0");
        // Another stack, same repository, same files: its content differs by its publisher label.
        const other = new SimulatedStack(hosts, {
            registry,
            repository: repositoryOf(dev),
            publisher: "model-registry/other",
        });
        await expect(other.up({ version: "2.0.0", context: ctx })).rejects.toThrow(
            "already published by stack model-registry/dev with other content",
        );
        expect(await digestOfTag(dev, "2.0.0")).toBe(digest);
    });

    it("takes a respelled context (model/ for model) as the same build: nothing is pushed", async () => {
        const stack = newStack();
        const ctx = modelContext('{"w": 12}');
        const first = await stack.up({ version: "1.0.0", context: ctx });
        const again = await stack.up({ version: "1.0.0", context: `${ctx}/` });
        expect(again.imageRef).toBe(first.imageRef);
        expect(stack.pushes).toEqual(["1.0.0"]);
    });

    it("refuses the same version from a moved context, which docker.Image would push again", async () => {
        const stack = newStack();
        const ctx = modelContext('{"w": 13}');
        await stack.up({ version: "1.0.0", context: ctx });
        const digest = await digestOfTag(stack, "1.0.0");
        const moved = path.join(path.dirname(ctx), `${path.basename(ctx)}-moved`);
        fs.renameSync(ctx, removedAfterSuite(moved));
        await expect(stack.up({ version: "1.0.0", context: moved })).rejects.toThrow(
            "their paths or modes",
        );
        expect(await digestOfTag(stack, "1.0.0")).toBe(digest);
        expect(stack.pushes).toEqual(["1.0.0"]);
    });

    it("publish 1.0.0, publish 1.1.0, delete 1.0.0: 1.0.0 with other content is refused before the push", async () => {
        const stack = newStack();
        await stack.up({ version: "1.0.0", context: modelContext('{"w": 14}') });
        const original = stack.history["1.0.0"].digest;
        await stack.up({ version: "1.1.0", context: modelContext('{"w": 15}') });
        await deleteTag(registry, repositoryOf(stack), "1.0.0");

        const rollback = stack.up({ version: "1.0.0", context: modelContext('{"w": 16}') });
        await expect(rollback).rejects.toThrow(GuardRefused);
        await expect(rollback).rejects.toThrow(
            `${stack.repositoryUri}:1.0.0 was published as ${original}`,
        );
        await expect(rollback).rejects.toThrow(
            `skopeo copy docker://${stack.repositoryUri}@${original}`,
        );
        expect(await digestOfTag(stack, "1.0.0")).toBeUndefined();
        expect(stack.pushes).toEqual(["1.0.0", "1.1.0"]);
    });

    it("says a version deleted right after its publication was deleted, naming the digest to restore", async () => {
        const stack = newStack();
        const ctx = modelContext('{"w": 17}');
        await stack.up({ version: "1.0.0", context: ctx });
        const original = stack.history["1.0.0"].digest;
        await deleteTag(registry, repositoryOf(stack), "1.0.0");

        const run = stack.up({ version: "1.0.0", context: ctx });
        await expect(run).rejects.toThrow("someone deleted it outside this program");
        await expect(run).rejects.toThrow(
            `skopeo copy docker://${stack.repositoryUri}@${original}`,
        );
        expect(stack.pushes).toEqual(["1.0.0"]);
    });

    it("refuses before the push a version deleted right after its publishing run, then run with other content", async () => {
        const stack = newStack();
        await stack.up({ version: "1.0.0", context: modelContext('{"w": 18}') });
        const original = stack.history["1.0.0"].digest;
        await deleteTag(registry, repositoryOf(stack), "1.0.0");

        const edited = stack.up({ version: "1.0.0", context: modelContext('{"w": 19}') });
        await expect(edited).rejects.toThrow(GuardRefused);
        await expect(edited).rejects.toThrow(`was published as ${original}`);
        expect(await digestOfTag(stack, "1.0.0")).toBeUndefined();
        expect(stack.pushes).toEqual(["1.0.0"]);
    });
});

describe("old versions re-verified on every run and on refresh", () => {
    /** Publishes 1.0.0 and 1.1.0; returns the stack and 1.0.0's recorded digest. */
    async function twoVersions(w: number) {
        const stack = newStack();
        await stack.up({ version: "1.0.0", context: modelContext(`{"w": ${w}}`) });
        const v110 = modelContext(`{"w": ${w + 1}}`);
        await stack.up({ version: "1.1.0", context: v110 });
        return { stack, v110, recorded: stack.history["1.0.0"].digest };
    }

    it("stops an unrelated bump when 1.0.0 was overwritten, naming both digests, until acknowledged", async () => {
        const { stack, recorded } = await twoVersions(20);
        const theirs = await pushImage(registry.endpoint(repositoryOf(stack)), "1.0.0", "tamper");
        const bump = modelContext('{"w": 22}');

        const run = stack.up({ version: "1.2.0", context: bump });
        await expect(run).rejects.toThrow(GuardRefused);
        await expect(run).rejects.toThrow(
            `${stack.repositoryUri}:1.0.0 was published by this stack as ${recorded}, and the registry now holds ${theirs}`,
        );
        await expect(run).rejects.toThrow(
            `pulumi config set --path 'acknowledgedTampering[0]' 1.0.0=${theirs}`,
        );
        expect(stack.pushes).toEqual(["1.0.0", "1.1.0"]);
        await expect(stack.refresh()).rejects.toThrow(`now holds ${theirs}`);

        // Acknowledging another state does not count; the one the registry holds does.
        const wrong = { "1.0.0": "absent" };
        await expect(
            stack.up({ version: "1.2.0", context: bump, acknowledged: wrong }),
        ).rejects.toThrow(GuardRefused);
        const acknowledged = { "1.0.0": theirs };
        const carried = await stack.up({ version: "1.2.0", context: bump, acknowledged });
        expect(carried.pushed).toBe(true);
        await stack.refresh();
        expect(stack.history["1.0.0"].digest).toBe(recorded);
    });

    it("stops the next run, and refresh, when 1.0.0 was deleted; 'absent' acknowledges it", async () => {
        const { stack, v110: ctx, recorded } = await twoVersions(23);
        await deleteTag(registry, repositoryOf(stack), "1.0.0");

        const run = stack.up({ version: "1.1.0", context: ctx });
        await expect(run).rejects.toThrow(
            `${stack.repositoryUri}:1.0.0 was published by this stack as ${recorded}, and the registry no longer has the tag`,
        );
        await expect(stack.refresh()).rejects.toThrow("no longer has the tag");
        await stack.up({ version: "1.1.0", context: ctx, acknowledged: { "1.0.0": "absent" } });
        await stack.refresh();
    });
});

describe("two publishers racing on one new version", () => {
    it("both runs pass when the slower builder pushes after the other's run ended; the overwritten stack's next run stops", async () => {
        const a = newStack("model-registry/a");
        const b = new SimulatedStack(hosts, {
            registry,
            repository: repositoryOf(a),
            publisher: "model-registry/b",
        });
        let ours = "";
        // b's guard finds 1.0.0 absent; a publishes 1.0.0 from start to end; then b pushes.
        await b.up({
            version: "1.0.0",
            context: modelContext('{"w": 30}'),
            beforePush: async () => {
                await a.up({ version: "1.0.0", context: modelContext('{"w": 31}') });
                ours = a.history["1.0.0"].digest;
            },
        });
        const theirs = b.history["1.0.0"].digest;
        expect(theirs).not.toBe(ours);
        expect(await digestOfTag(a, "1.0.0")).toBe(theirs);

        const next = a.up({ version: "1.1.0", context: modelContext('{"w": 32}') });
        await expect(next).rejects.toThrow(
            `1.0.0 was published by this stack as ${ours}, and the registry now holds ${theirs}`,
        );
        expect(a.pushes).toEqual(["1.0.0"]);
    });
});
