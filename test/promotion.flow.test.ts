/**
 * Build once, promote everywhere, across runs: dev builds with the real Docker engine (see
 * support/engine.ts), staging and prod promote through the ImagePromotion provider in the SDK's
 * dynamic provider host, against real registries (plain for dev, Bearer for staging and prod).
 * Never skipped.
 */
import { ensureDockerEngine } from "./support/docker";
import { GuardRefused, PromotingStack, SimulatedStack } from "./support/engine";
import { deleteTag, digestOf, modelContext, useFlowEngine } from "./support/flow";
import { pushArmOnlyIndex, pushLabelledImage } from "./support/images";
import { LocalRegistry, startRegistry, storedBlobs } from "./support/registry";

jest.setTimeout(180_000);

let devRegistry: LocalRegistry;
let releaseRegistry: LocalRegistry;
const hosts = useFlowEngine(async (keep) => {
    await ensureDockerEngine();
    devRegistry = keep(await startRegistry());
    releaseRegistry = keep(await startRegistry({ auth: "token" }));
});

let n = 0;
function pipeline() {
    n++;
    const dev = new SimulatedStack(hosts, {
        registry: devRegistry,
        repository: `dev/m${n}`,
        publisher: "model-registry/dev",
    });
    const staging = new PromotingStack(hosts, {
        registry: releaseRegistry,
        repository: `staging/m${n}`,
        source: { registry: devRegistry, repository: `dev/m${n}` },
        sourceName: "stack dev",
        sourcePublished: () => dev.history,
    });
    const prod = new PromotingStack(hosts, {
        registry: releaseRegistry,
        repository: `prod/m${n}`,
        source: { registry: releaseRegistry, repository: `staging/m${n}` },
        sourceName: "stack staging",
        sourcePublished: () =>
            staging.outputs?.history as Record<string, { digest: string }> | undefined,
    });
    return { dev, staging, prod };
}

/** dev builds `model` with the server code beside it, in a layer of its own. */
const publish = (dev: SimulatedStack, version: string, model: string) =>
    dev.up({ version, context: modelContext(model, { files: { "code.txt": "server code\n" } }) });

describe("dev -> staging -> prod", () => {
    it("publishes dev's exact digest in staging and prod, and the model checksum with it", async () => {
        const { dev, staging, prod } = pipeline();
        const built = await publish(dev, "1.2.0", '{"w": 1}');
        const digest = built.imageRef.split("@")[1];

        const s = await staging.up("1.2.0");
        const p = await prod.up("1.2.0");
        expect(s.imageRef).toBe(`${staging.repositoryUri}@${digest}`);
        expect(p.imageRef).toBe(`${prod.repositoryUri}@${digest}`);
        expect(await digestOf(releaseRegistry, `staging/m${n}`, "1.2.0")).toBe(digest);
        expect(await digestOf(releaseRegistry, `prod/m${n}`, "1.2.0")).toBe(digest);
        expect(String(prod.outputs?.modelSha256)).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(prod.outputs?.modelSha256).toBe(staging.outputs?.modelSha256);
    });

    it("refuses a version the source has not published, before anything is created", async () => {
        const { staging } = pipeline();
        const run = staging.up("1.3.0");
        await expect(run).rejects.toThrow(GuardRefused);
        await expect(run).rejects.toThrow("stack dev has not published 1.3.0");
        await expect(run).rejects.toThrow("nothing was created or copied");
        expect(staging.outputs).toBeUndefined();
        expect(await digestOf(releaseRegistry, `staging/m${n}`, "1.3.0")).toBeUndefined();
    });

    it("rolls prod back to a version it holds without copying anything", async () => {
        const { dev, staging, prod } = pipeline();
        await publish(dev, "1.0.0", '{"w": 2}');
        await publish(dev, "1.1.0", '{"w": 3}');
        for (const v of ["1.0.0", "1.1.0"]) {
            await staging.up(v);
            await prod.up(v);
        }
        const d100 = await digestOf(releaseRegistry, `prod/m${n}`, "1.0.0");
        const before = storedBlobs(releaseRegistry);

        const rollback = await prod.up("1.0.0");
        expect(rollback.imageRef).toBe(`${prod.repositoryUri}@${d100}`);
        expect(storedBlobs(releaseRegistry)).toEqual(before);
        expect(Object.keys(prod.outputs?.history as object).sort()).toEqual(["1.0.0", "1.1.0"]);
    });

    it("refuses to promote over a destination tag that holds other content, naming both digests", async () => {
        const { dev, staging } = pipeline();
        const built = await publish(dev, "2.0.0", '{"w": 4}');
        const theirs = await pushLabelledImage(releaseRegistry.endpoint(`staging/m${n}`), "2.0.0", {
            note: "pushed by hand",
        });
        const run = staging.up("2.0.0");
        await expect(run).rejects.toThrow(
            `already holds ${theirs}, but stack dev has ${built.imageRef.split("@")[1]}`,
        );
        expect(await digestOf(releaseRegistry, `staging/m${n}`, "2.0.0")).toBe(theirs);
    });

    it("re-runs unchanged without copying, and a second promotion of the same version is a no-op", async () => {
        const { dev, staging } = pipeline();
        await publish(dev, "3.0.0", '{"w": 5}');
        const first = await staging.up("3.0.0");
        const before = storedBlobs(releaseRegistry);
        expect(await staging.up("3.0.0")).toEqual(first);
        expect(storedBlobs(releaseRegistry)).toEqual(before);
    });
});

describe("what staging takes from dev is what dev published", () => {
    it("refuses a tag pushed into dev's repository by hand: dev never published it", async () => {
        const { staging } = pipeline();
        await pushLabelledImage(devRegistry.endpoint(`dev/m${n}`), "1.3.0", { note: "by hand" });
        await expect(staging.up("1.3.0")).rejects.toThrow(
            "stack dev has not published 1.3.0 (its published_versions output has no 1.3.0)",
        );
        expect(await digestOf(releaseRegistry, `staging/m${n}`, "1.3.0")).toBeUndefined();
    });

    it("refuses a version whose tag moved in dev's repository after dev published it", async () => {
        const { dev, staging } = pipeline();
        const built = await publish(dev, "1.2.0", '{"w": 6}');
        const moved = await pushLabelledImage(devRegistry.endpoint(`dev/m${n}`), "1.2.0", {
            note: "moved",
        });
        const run = staging.up("1.2.0");
        await expect(run).rejects.toThrow(
            `stack dev published 1.2.0 as ${built.imageRef.split("@")[1]}, but`,
        );
        await expect(run).rejects.toThrow(`now holds ${moved}: the source's tag moved`);
        expect(await digestOf(releaseRegistry, `staging/m${n}`, "1.2.0")).toBeUndefined();
    });

    it("rolls back to a version it holds although dev's registry lost it, copying nothing", async () => {
        const { dev, staging } = pipeline();
        const v1 = await publish(dev, "1.0.0", '{"w": 7}');
        await publish(dev, "1.1.0", '{"w": 8}');
        await staging.up("1.0.0");
        await staging.up("1.1.0");
        expect(await digestOf(devRegistry, `dev/m${n}`, "1.0.0")).toBe(v1.imageRef.split("@")[1]);
        await deleteTag(devRegistry, `dev/m${n}`, "1.0.0");
        const before = storedBlobs(releaseRegistry);
        const rollback = await staging.up("1.0.0");
        expect(rollback.imageRef).toBe(`${staging.repositoryUri}@${v1.imageRef.split("@")[1]}`);
        expect(storedBlobs(releaseRegistry)).toEqual(before);
    });

    it("stops when its own promoted tag was overwritten, naming the digest to restore", async () => {
        const { dev, staging } = pipeline();
        const built = await publish(dev, "1.0.0", '{"w": 9}');
        const promoted = built.imageRef.split("@")[1];
        await staging.up("1.0.0");
        await pushLabelledImage(releaseRegistry.endpoint(`staging/m${n}`), "1.0.0", {
            note: "overwritten by hand",
        });
        const run = staging.up("1.0.0");
        await expect(run).rejects.toThrow(`was promoted by this stack as ${promoted}`);
        await expect(run).rejects.toThrow(
            `skopeo copy docker://${staging.repositoryUri}@${promoted}`,
        );
        expect(
            (staging.outputs?.history as Record<string, { digest: string }>)["1.0.0"].digest,
        ).toBe(promoted);
    });
});

describe("a source image without the stack's platform", () => {
    it("is refused before anything is copied, on every run", async () => {
        n++;
        const stack = new PromotingStack(hosts, {
            registry: releaseRegistry,
            repository: `staging/m${n}`,
            source: { registry: devRegistry, repository: `dev/m${n}` },
            sourceName: `${devRegistry.host}/dev/m${n}`,
        });
        await pushArmOnlyIndex(devRegistry.endpoint(`dev/m${n}`), "1.0.0");
        for (let run = 0; run < 2; run++) {
            await expect(stack.up("1.0.0")).rejects.toThrow(
                /Nothing was copied\. Fix: set platform/,
            );
            expect(await digestOf(releaseRegistry, `staging/m${n}`, "1.0.0")).toBeUndefined();
        }
    });
});
