/**
 * The immutability guard and the publication record against real registries (Debian's
 * docker-registry, distribution 2.8): plain HTTP, TLS with htpasswd (Basic), and a Bearer token
 * realm. Never skipped: without a registry server the run stops before any suite starts, once,
 * with the install command (test/support/globalSetup.ts).
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import {
    PublicationRecordInputs,
    recordPublication,
    reverifyRecord,
} from "../components/publicationRecord";
import { TagGuardInputs, tagGuardProvider } from "../components/tagGuard";
import { FINGERPRINT_LABEL, PUBLISHER_LABEL } from "../lib/publication/guard";
import { UNKNOWN } from "../lib/publication/publishInputs";
import { headManifest } from "../lib/oci/client";
import {
    ProviderHost,
    serializeProviderAsPulumiUp,
    startDynamicProviderHost,
} from "./support/dynamicProviderHost";
import { pushLabelledImage } from "./support/images";
import { LocalRegistry, freePort, pushImage, startRegistry } from "./support/registry";

jest.setTimeout(60_000);

const FP_A = `sha256:${"a".repeat(64)}`;
const FP_B = `sha256:${"b".repeat(64)}`;
const PUBLISHER = "model-registry/dev";

function inputs(
    registry: LocalRegistry,
    repository: string,
    tag: string,
    fingerprint = FP_A,
): TagGuardInputs {
    return {
        repositoryUri: `${registry.host}/${repository}`,
        tag,
        fingerprint,
        publisher: PUBLISHER,
        platform: "linux/amd64",
        apiUrl: registry.apiUrl,
        repositoryPath: repository,
        credentials: registry.credentials,
        caCertificate: registry.caCertificate,
    };
}

const ours = (fingerprint: string) => ({
    [FINGERPRINT_LABEL]: fingerprint,
    [PUBLISHER_LABEL]: PUBLISHER,
});

async function check(olds: Partial<TagGuardInputs>, news: TagGuardInputs) {
    const result = await tagGuardProvider.check!(olds, news);
    return {
        failures: (result.failures ?? []).map((f) => f.reason),
        verifiedDigest: (result.inputs as TagGuardInputs).verifiedDigest,
    };
}

describe("guard on a plain registry", () => {
    let registry: LocalRegistry;
    beforeAll(async () => {
        registry = await startRegistry();
    });
    afterAll(async () => {
        await registry?.stop();
    });

    it("allows a tag the registry does not have (first publication, even of a new repository)", async () => {
        expect(await check({}, inputs(registry, "never/pushed", "1.0.0"))).toEqual({
            failures: [],
            verifiedDigest: "",
        });
        await pushImage(registry.endpoint("ml/absent"), "0.9.0", "other");
        expect((await check({}, inputs(registry, "ml/absent", "1.0.0"))).failures).toEqual([]);
    });

    it("names the stack in its fixes, in check and in create (`pulumi up --stack prod` with dev selected)", async () => {
        await pushImage(registry.endpoint("ml/taken-prod"), "1.1.0", "someone else");
        const prod = { ...inputs(registry, "ml/taken-prod", "1.1.0"), stack: "prod" };
        const { failures } = await check({}, prod);
        expect(failures[0]).toContain("Fix: pulumi config set --stack prod modelVersion 1.1.1");
        await expect(tagGuardProvider.create!(prod)).rejects.toThrow(
            "Fix: pulumi config set --stack prod modelVersion 1.1.1",
        );
    });

    it('names the stack in both fixes of a claim, past the apostrophe of "this run\'s"', async () => {
        const wanted = { ...inputs(registry, "ml/claimed-prod", "1.0.0"), stack: "prod" };
        const claimed = { [wanted.repositoryUri]: { "1.0.0": FP_B } };
        const { failures } = await check({ claimed }, wanted);
        expect(failures[0]).toContain("this run's content");
        expect(failures[0]).toContain("pulumi config set --stack prod modelVersion 1.0.1;");
        expect(failures[0]).toContain(
            "pulumi config set --stack prod --path 'acknowledgedTampering[0]' 1.0.0=unclaim:bbbbbbbbbbbb",
        );
    });

    it("refuses a tag that someone else pushed, in check and in create, naming its digest and the fix", async () => {
        const digest = await pushImage(registry.endpoint("ml/taken"), "1.1.0", "someone else");
        const { failures } = await check({}, inputs(registry, "ml/taken", "1.1.0"));
        expect(failures).toHaveLength(1);
        expect(failures[0]).toContain(
            `${registry.host}/ml/taken:1.1.0 already exists in the registry (digest ${digest}) and was not published by this program`,
        );
        expect(failures[0]).toContain("Nothing was built or pushed");
        expect(failures[0]).toContain("Fix: pulumi config set modelVersion 1.1.1");
        await expect(
            tagGuardProvider.create!(inputs(registry, "ml/taken", "1.1.0")),
        ).rejects.toThrow(digest);
        expect(await headManifest(registry.endpoint("ml/taken"), "1.1.0")).toMatchObject({
            exists: true,
            digest,
        });
    });

    it("adopts a tag whose image carries this content's fingerprint, and remembers its digest", async () => {
        const digest = await pushLabelledImage(registry.endpoint("ml/adopt"), "1.0.0", ours(FP_A));
        const wanted = inputs(registry, "ml/adopt", "1.0.0", FP_A);
        expect(await check({}, wanted)).toEqual({ failures: [], verifiedDigest: digest });
        const created = await tagGuardProvider.create!({ ...wanted, verifiedDigest: digest });
        expect(created.outs).toMatchObject({ tag: "1.0.0", verifiedDigest: digest });
        expect(created.outs).not.toHaveProperty("credentials");
    });

    it("refuses other content behind a version this stack published, with both fingerprints", async () => {
        const digest = await pushLabelledImage(
            registry.endpoint("ml/changed"),
            "1.0.0",
            ours(FP_A),
        );
        const published = {
            ...inputs(registry, "ml/changed", "1.0.0", FP_A),
            verifiedDigest: digest,
        };
        const changed = { ...inputs(registry, "ml/changed", "1.0.0", FP_B) };
        const { failures } = await check(published, changed);
        expect(failures).toHaveLength(1);
        expect(failures[0]).toContain(
            `is already published by this stack with other content: the registry holds ${digest} (content ${FP_A}), and this run's content is ${FP_B}`,
        );
        expect(await tagGuardProvider.diff!("id", published, changed)).toEqual({
            changes: true,
            replaces: [],
        });
        await expect(tagGuardProvider.update!("id", published, changed)).rejects.toThrow(FP_B);
    });

    it("asks the registry on every run, even when this stack's record says nothing changed", async () => {
        // The record says 1.0.0 was verified; the registry has lost the tag meanwhile.
        const gone = {
            ...inputs(registry, "ml/gone", "1.0.0"),
            verifiedDigest: `sha256:${"c".repeat(64)}`,
        };
        const { failures } = await check(gone, inputs(registry, "ml/gone", "1.0.0"));
        expect(failures[0]).toContain("someone deleted it outside this program");
        // And a registry that cannot be reached refuses, whatever the record says.
        const port = await freePort();
        const nowhere = {
            ...gone,
            apiUrl: `http://127.0.0.1:${port}`,
            repositoryUri: `127.0.0.1:${port}/ml/gone`,
        };
        const down = await check(nowhere, { ...nowhere, verifiedDigest: undefined });
        expect(down.failures[0]).toContain("cannot be reached");
    });

    it("allows a version bump in place, never a replacement, and keeps the old tag at its digest", async () => {
        const endpoint = registry.endpoint("ml/bump");
        const d1 = await pushLabelledImage(endpoint, "1.0.0", ours(FP_A));
        const v1 = { ...inputs(registry, "ml/bump", "1.0.0", FP_A), verifiedDigest: d1 };
        const v2 = inputs(registry, "ml/bump", "1.1.0", FP_B);
        expect((await check(v1, v2)).failures).toEqual([]);
        for (const change of [
            { tag: "2.0.0" },
            { repositoryUri: "elsewhere/x" },
            { fingerprint: FP_B },
        ]) {
            expect(await tagGuardProvider.diff!("id", v1, { ...v1, ...change })).toEqual({
                changes: true,
                replaces: [],
            });
        }
        const rotated = { ...v1, credentials: { username: "AWS", password: "rotated" } };
        expect((await tagGuardProvider.diff!("id", v1, rotated)).changes).toBe(false);
        expect((await tagGuardProvider.update!("id", v1, v2)).outs).toMatchObject({
            tag: "1.1.0",
            verifiedDigest: "",
        });
        await tagGuardProvider.delete!("id", v2);
        expect(await headManifest(endpoint, "1.0.0")).toMatchObject({ digest: d1 });
    });

    it("skips the registry only for the engine's unknown placeholder, and only in check", async () => {
        const wanted = {
            ...inputs(registry, "ml/x", "1.0.0"),
            repositoryUri: UNKNOWN,
            repositoryPath: UNKNOWN,
        };
        expect((await check({}, wanted)).failures).toEqual([]);
        await expect(tagGuardProvider.create!(wanted)).rejects.toThrow(
            "repositoryUri is still unknown when the registry must be checked",
        );
    });

    it.each([
        ["apiUrl", undefined],
        ["apiUrl", ""],
        ["repositoryPath", undefined],
        ["fingerprint", ""],
        ["publisher", undefined],
    ])(
        "refuses %s = %p in check, create and update instead of skipping the check",
        async (key, value) => {
            const wanted = {
                ...inputs(registry, "ml/undefined", "1.0.0"),
                [key]: value,
            } as TagGuardInputs;
            const { failures } = await check({}, wanted);
            expect(failures).toHaveLength(1);
            expect(failures[0]).toContain(`${key} is ${value === undefined ? "missing" : '""'}`);
            await expect(tagGuardProvider.create!(wanted)).rejects.toThrow(key);
            await expect(tagGuardProvider.update!("id", wanted, wanted)).rejects.toThrow(key);
        },
    );

    it("refuses when the registry it asks is not the one docker pushes to", async () => {
        const wanted = {
            ...inputs(registry, "ml/iris", "1.0.0"),
            repositoryUri: "registry.example.com/ml/iris",
        };
        const { failures } = await check({}, wanted);
        expect(failures).toHaveLength(1);
        expect(failures[0]).toMatch(/registry\.example\.com/);
    });
});

describe("publication record on a plain registry", () => {
    let registry: LocalRegistry;
    beforeAll(async () => {
        registry = await startRegistry();
    });
    afterAll(async () => {
        await registry?.stop();
    });

    const record = (
        repository: string,
        tag: string,
        repoDigest: string,
    ): PublicationRecordInputs => {
        const guardInputs: Record<string, unknown> = { ...inputs(registry, repository, tag, FP_A) };
        delete guardInputs.publisher;
        return { ...(guardInputs as unknown as PublicationRecordInputs), repoDigest };
    };

    it("records what the registry holds after a push, and keeps the history of versions", async () => {
        const endpoint = registry.endpoint("ml/record");
        const d1 = await pushLabelledImage(endpoint, "1.0.0", ours(FP_A));
        const first = await recordPublication(record("ml/record", "1.0.0", `x@${d1}`), undefined);
        expect(first).toMatchObject({ tag: "1.0.0", digest: d1 });
        const d2 = await pushLabelledImage(endpoint, "1.1.0", ours(FP_A));
        const second = await recordPublication(record("ml/record", "1.1.0", `x@${d2}`), first);
        expect(second.history).toEqual({
            "1.0.0": { fingerprint: FP_A, digest: d1 },
            "1.1.0": { fingerprint: FP_A, digest: d2 },
        });
    });

    it("refreshes a state with no history (null, as an edited state may hold it)", async () => {
        const props = { ...record("ml/none", "1.0.0", "x@sha256:0"), history: null };
        await expect(reverifyRecord("id", props as never)).resolves.toEqual({ id: "id", props });
    });

    it("fails the run, with both digests, when another push won the race for the tag", async () => {
        const endpoint = registry.endpoint("ml/race");
        const mine = await pushLabelledImage(endpoint, "1.0.0", ours(FP_A));
        const theirs = await pushImage(endpoint, "1.0.0", "pushed right after ours");
        await expect(
            recordPublication(record("ml/race", "1.0.0", `x@${mine}`), undefined),
        ).rejects.toThrow(`holds ${theirs}, but this run pushed ${mine}`);
    });

    it("fails when an adopted tag no longer carries this content", async () => {
        const endpoint = registry.endpoint("ml/swapped");
        await pushImage(endpoint, "1.0.0", "swapped after the guard");
        await expect(
            recordPublication(record("ml/swapped", "1.0.0", `sha256:${"e".repeat(64)}`), undefined),
        ).rejects.toThrow("changed after the guard checked it");
    });

    it("fails when the push did not land", async () => {
        await expect(
            recordPublication(
                record("ml/nothing", "1.0.0", `x@sha256:${"f".repeat(64)}`),
                undefined,
            ),
        ).rejects.toThrow("the registry has no");
    });
});

describe.each([
    [
        "TLS with a self-signed certificate and htpasswd (Basic)",
        { tls: true, auth: "htpasswd" as const },
    ],
    ["a Bearer token realm", { tls: false, auth: "token" as const }],
])("guard on a registry with %s", (_label, opts) => {
    let registry: LocalRegistry;
    beforeAll(async () => {
        registry = await startRegistry(opts);
    });
    afterAll(async () => {
        await registry?.stop();
    });

    it("authenticates, allows an absent tag, adopts its own content and refuses other content", async () => {
        expect((await check({}, inputs(registry, "ml/iris", "2.0.0"))).failures).toEqual([]);
        const digest = await pushLabelledImage(registry.endpoint("ml/iris"), "2.0.0", ours(FP_A));
        expect(await check({}, inputs(registry, "ml/iris", "2.0.0", FP_A))).toEqual({
            failures: [],
            verifiedDigest: digest,
        });
        const { failures } = await check({}, inputs(registry, "ml/iris", "2.0.0", FP_B));
        expect(failures[0]).toContain(`the registry holds ${digest} (content ${FP_A})`);
    });

    it("refuses with a clear message when the credentials are wrong", async () => {
        const wanted = {
            ...inputs(registry, "ml/iris", "3.0.0"),
            credentials: { username: "publisher", password: "wrong" },
        };
        const { failures } = await check({}, wanted);
        expect(failures).toHaveLength(1);
        expect(failures[0]).toMatch(/refused the credentials/);
    });

    if (opts.tls) {
        it("does not trust the self-signed certificate unless told to", async () => {
            const wanted = { ...inputs(registry, "ml/iris", "3.0.0"), caCertificate: undefined };
            const { failures } = await check({}, wanted);
            expect(failures[0]).toContain("certificate");
        });
    }
});

describe("the serialized guard provider, run by the SDK's dynamic provider host over gRPC", () => {
    let registry: LocalRegistry;
    let dir: string;
    let host: ProviderHost;

    beforeAll(async () => {
        registry = await startRegistry({ auth: "token" });
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "guard-provider-"));
        const providerText = await serializeProviderAsPulumiUp(
            "components/tagGuard.ts",
            "tagGuardProvider",
            dir,
        );
        // Started in the project directory, as the engine starts the dynamic provider plugin.
        host = await startDynamicProviderHost(path.resolve(__dirname, ".."), providerText);
    });
    afterAll(async () => {
        await host?.stop();
        await registry?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("allows an absent tag through the Bearer flow, and refuses other content in check and create", async () => {
        const before = registry.tokenRequests.length;
        const absent = await host.check({}, inputs(registry, "ml/serialized", "1.0.0"));
        expect(absent.failures).toEqual([]);
        expect(registry.tokenRequests.length).toBeGreaterThan(before);

        const digest = await pushLabelledImage(
            registry.endpoint("ml/serialized"),
            "1.0.0",
            ours(FP_A),
        );
        const other = inputs(registry, "ml/serialized", "1.0.0", FP_B);
        const check = await host.check({}, other);
        expect(check.failures).toHaveLength(1);
        expect(check.failures[0].property).toBe("tag");
        expect(check.failures[0].reason).toContain(digest);
        await expect(host.create(other)).rejects.toThrow(digest);
    });

    it("refuses an undefined input sent over the wire (the engine drops it from the struct)", async () => {
        const wanted = { ...inputs(registry, "ml/serialized", "1.0.0"), apiUrl: undefined };
        const r = await host.check({}, wanted);
        expect(r.failures[0].reason).toContain("apiUrl is missing");
        await expect(host.create(wanted)).rejects.toThrow("apiUrl is missing");
    });

    it("skips while the repository is unknown (the engine's sentinel, in a first preview)", async () => {
        const wanted = {
            ...inputs(registry, "ml/serialized", "1.0.0"),
            repositoryUri: UNKNOWN,
            repositoryPath: UNKNOWN,
        };
        expect((await host.check({}, wanted)).failures).toEqual([]);
    });
});
