/**
 * The immutability guard against real registries (Debian's docker-registry, distribution 2.8):
 * plain HTTP, TLS with htpasswd (Basic), and a Bearer token realm. Never skipped: without the
 * registry binary these tests fail with the command that installs it.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { TagGuardInputs, guardFailures, tagGuardProvider } from "../components/tagGuard";
import { headManifest } from "../lib/registryClient";
import {
    ProviderHost,
    serializeProviderAsPulumiUp,
    startDynamicProviderHost,
} from "./support/dynamicProviderHost";
import { LocalRegistry, freePort, pushImage, startRegistry } from "./support/registry";

jest.setTimeout(60_000);

const FP_A = `sha256:${"a".repeat(64)}`;
const FP_B = `sha256:${"b".repeat(64)}`;

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
        apiUrl: registry.apiUrl,
        repositoryPath: repository,
        credentials: registry.credentials,
        caCertificate: registry.caCertificate,
    };
}

async function checkFailures(
    olds: Partial<TagGuardInputs>,
    news: TagGuardInputs,
): Promise<string[]> {
    const result = await tagGuardProvider.check!(olds, news);
    return (result.failures ?? []).map((f) => f.reason);
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
        expect(await checkFailures({}, inputs(registry, "never/pushed", "1.0.0"))).toEqual([]);
        await pushImage(registry.endpoint("ml/absent"), "0.9.0", "other");
        expect(await checkFailures({}, inputs(registry, "ml/absent", "1.0.0"))).toEqual([]);
    });

    it("refuses a tag that exists and that this stack did not publish, naming its digest and the fix", async () => {
        const digest = await pushImage(registry.endpoint("ml/taken"), "1.1.0", "someone else");
        const failures = await checkFailures({}, inputs(registry, "ml/taken", "1.1.0"));
        expect(failures).toHaveLength(1);
        expect(failures[0]).toContain(
            `${registry.host}/ml/taken:1.1.0 already exists in the registry (digest ${digest})`,
        );
        expect(failures[0]).toContain("Nothing was built or pushed");
        expect(failures[0]).toContain("Fix: pulumi config set modelVersion 1.1.1");
        // create re-checks right before the push and refuses too.
        await expect(
            tagGuardProvider.create!(inputs(registry, "ml/taken", "1.1.0")),
        ).rejects.toThrow(digest);
        // The registry still holds the original.
        expect(await headManifest(registry.endpoint("ml/taken"), "1.1.0")).toMatchObject({
            exists: true,
            digest,
        });
    });

    it("allows the same version with the same content again, without asking the registry", async () => {
        const published = inputs(registry, "ml/same", "1.0.0");
        await pushImage(registry.endpoint("ml/same"), "1.0.0", "ours");
        expect(await checkFailures(published, { ...published })).toEqual([]);
        const diff = await tagGuardProvider.diff!("id", published, {
            ...published,
            credentials: { username: "AWS", password: "a rotated token" },
        });
        expect(diff.changes).toBe(false);
        // Proof that no request is made: the same check against an address where nothing listens.
        const nowhere = { ...published, apiUrl: `http://127.0.0.1:${await freePort()}` };
        expect(await guardFailures(nowhere, { ...nowhere })).toEqual([]);
    });

    it("refuses changed content behind a published version, showing both content hashes", async () => {
        const published = inputs(registry, "ml/changed", "1.0.0", FP_A);
        await pushImage(registry.endpoint("ml/changed"), "1.0.0", "ours");
        const changed = { ...published, fingerprint: FP_B };
        const failures = await checkFailures(published, changed);
        expect(failures).toHaveLength(1);
        expect(failures[0]).toMatch(
            /already published by this stack \(digest sha256:[0-9a-f]{64}\) with other content/,
        );
        expect(failures[0]).toContain(`published content ${FP_A}, new content ${FP_B}`);
        expect(failures[0]).toContain(
            "Fix: publish the change as a new version: pulumi config set modelVersion 1.0.1",
        );
        const diff = await tagGuardProvider.diff!("id", published, changed);
        expect(diff).toEqual({ changes: true, replaces: [] });
        await expect(tagGuardProvider.update!("id", published, changed)).rejects.toThrow(FP_B);
    });

    it("allows changed content for a version that never reached the registry (a failed push)", async () => {
        // The guard recorded 1.0.0, then the push failed: the registry does not have the tag.
        const recorded = inputs(registry, "ml/failed-push", "1.0.0", FP_A);
        const changed = { ...recorded, fingerprint: FP_B };
        expect(await checkFailures(recorded, changed)).toEqual([]);
        await expect(tagGuardProvider.update!("id", recorded, changed)).resolves.toBeDefined();
    });

    it("allows a version bump in place and keeps the old tag at its old digest", async () => {
        const endpoint = registry.endpoint("ml/bump");
        const v1 = inputs(registry, "ml/bump", "1.0.0", FP_A);
        const d1 = await pushImage(endpoint, "1.0.0", "model v1");
        const v2 = inputs(registry, "ml/bump", "1.1.0", FP_B);
        expect(await checkFailures(v1, v2)).toEqual([]);
        // An update, not a replacement: a protected (prod) guard could not be replaced.
        expect(await tagGuardProvider.diff!("id", v1, v2)).toEqual({ changes: true, replaces: [] });
        const updated = await tagGuardProvider.update!("id", v1, v2);
        expect(updated.outs).toMatchObject({ tag: "1.1.0", fingerprint: FP_B });
        const d2 = await pushImage(endpoint, "1.1.0", "model v2");
        // Deleting the guard (a destroy) leaves the registry alone.
        await tagGuardProvider.delete!("id", v2);
        expect(d2).not.toBe(d1);
        expect(await headManifest(endpoint, "1.0.0")).toMatchObject({ exists: true, digest: d1 });
        expect(await headManifest(endpoint, "1.1.0")).toMatchObject({ exists: true, digest: d2 });
    });

    it("refuses a bump to a version that someone else already published, in check and in update", async () => {
        const endpoint = registry.endpoint("ml/bump-taken");
        const v1 = inputs(registry, "ml/bump-taken", "1.0.0", FP_A);
        await pushImage(endpoint, "1.0.0", "ours");
        const theirs = await pushImage(endpoint, "1.1.0", "theirs");
        const v2 = inputs(registry, "ml/bump-taken", "1.1.0", FP_B);
        expect((await checkFailures(v1, v2))[0]).toContain(`digest ${theirs}`);
        await expect(tagGuardProvider.update!("id", v1, v2)).rejects.toThrow(theirs);
    });

    it("never asks for a replacement, whatever changes", async () => {
        const v1 = inputs(registry, "ml/any", "1.0.0", FP_A);
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
    });

    it("skips only while values are unknown (a preview before the repository exists)", async () => {
        const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
        const wanted = {
            ...inputs(registry, "ml/x", "1.0.0"),
            repositoryUri: unknown,
            repositoryPath: unknown,
        };
        expect(await checkFailures({}, wanted)).toEqual([]);
    });
});

describe("guard when the registry is down", () => {
    it("refuses with a clear message instead of passing", async () => {
        const port = await freePort();
        const wanted: TagGuardInputs = {
            repositoryUri: `127.0.0.1:${port}/ml/iris`,
            tag: "1.0.0",
            fingerprint: FP_A,
            apiUrl: `http://127.0.0.1:${port}`,
            repositoryPath: "ml/iris",
        };
        const failures = await checkFailures({}, wanted);
        expect(failures).toHaveLength(1);
        expect(failures[0]).toContain(
            `cannot check whether 127.0.0.1:${port}/ml/iris:1.0.0 is already published, so it is not pushed`,
        );
        expect(failures[0]).toContain(
            `the registry at http://127.0.0.1:${port} cannot be reached (connect ECONNREFUSED`,
        );
        expect(failures[0]).toContain("4 attempts");
    });

    it("retries connection failures: a registry that comes up during the retries is reached", async () => {
        const port = await freePort();
        const lookup = headManifest(
            {
                apiUrl: `http://127.0.0.1:${port}`,
                repository: "ml/late",
                retries: 6,
                timeoutMs: 2000,
            },
            "1.0.0",
        );
        // The first attempts find nothing listening; the registry takes the port a moment later.
        const registry = await startRegistry({ port });
        try {
            await expect(lookup).resolves.toEqual({ exists: false });
        } finally {
            await registry.stop();
        }
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

    it("authenticates, allows an absent tag and refuses an existing one", async () => {
        expect(await checkFailures({}, inputs(registry, "ml/iris", "2.0.0"))).toEqual([]);
        const digest = await pushImage(registry.endpoint("ml/iris"), "2.0.0", "protected");
        const failures = await checkFailures({}, inputs(registry, "ml/iris", "2.0.0"));
        expect(failures[0]).toContain(`already exists in the registry (digest ${digest})`);
        if (opts.auth === "token") {
            expect(
                registry.tokenRequests.some((q) =>
                    q.includes("scope=repository%3Aml%2Firis%3Apull"),
                ),
            ).toBe(true);
        }
    });

    it("refuses with a clear message when the credentials are wrong", async () => {
        const wanted = {
            ...inputs(registry, "ml/iris", "3.0.0"),
            credentials: { username: "publisher", password: "wrong" },
        };
        const failures = await checkFailures({}, wanted);
        expect(failures).toHaveLength(1);
        expect(failures[0]).toMatch(/refused the credentials \(401/);
    });

    it("refuses when the credentials are missing", async () => {
        const wanted = { ...inputs(registry, "ml/iris", "3.0.0"), credentials: undefined };
        const failures = await checkFailures({}, wanted);
        expect(failures[0]).toMatch(
            opts.auth === "token"
                ? /refused anonymous access \(401\)/
                : /asks for credentials and none were given/,
        );
    });

    if (opts.tls) {
        it("does not trust the self-signed certificate unless told to", async () => {
            const wanted = { ...inputs(registry, "ml/iris", "3.0.0"), caCertificate: undefined };
            const failures = await checkFailures({}, wanted);
            expect(failures[0]).toContain(
                "the registry's TLS certificate is not trusted (self-signed certificate)",
            );
            expect(failures[0]).toContain("give its PEM certificate as caCertificate");
        });
    }
});

describe("the serialized guard provider, run by the SDK's dynamic provider host over gRPC", () => {
    let registry: LocalRegistry;
    let dir: string;
    let providerText: string;
    let host: ProviderHost;

    beforeAll(async () => {
        registry = await startRegistry({ auth: "token" });
        dir = fs.mkdtempSync(path.join(os.tmpdir(), "guard-provider-"));
        providerText = await serializeProviderAsPulumiUp(
            "components/tagGuard.ts",
            "tagGuardProvider",
            dir,
        );
        // Started in an empty directory: the provider must carry everything it needs.
        host = await startDynamicProviderHost(dir, providerText);
    });
    afterAll(async () => {
        await host?.stop();
        await registry?.stop();
        if (dir) fs.rmSync(dir, { recursive: true, force: true });
    });

    it("is self-contained: it requires only Node built-ins", () => {
        const required = [...providerText.matchAll(/require\("([^"]+)"\)/g)].map((m) => m[1]);
        expect(new Set(required)).toEqual(new Set(["crypto", "http", "https", "tls"]));
    });

    it("allows an absent tag, through the Bearer flow", async () => {
        const before = registry.tokenRequests.length;
        const r = await host.check({}, inputs(registry, "ml/serialized", "1.0.0"));
        expect(r.failures).toEqual([]);
        expect(r.inputs.tag).toBe("1.0.0");
        expect(registry.tokenRequests.length).toBeGreaterThan(before);
    });

    it("skips while the repository is unknown (the engine's sentinel, in a first preview)", async () => {
        const unknown = "04da6b54-80e4-46f7-96ec-b56ff0331ba9";
        const wanted = {
            ...inputs(registry, "ml/serialized", "1.0.0"),
            repositoryUri: unknown,
            repositoryPath: unknown,
        };
        expect((await host.check({}, wanted)).failures).toEqual([]);
    });

    it("refuses an existing tag with its digest, in check and in create", async () => {
        const digest = await pushImage(
            registry.endpoint("ml/serialized"),
            "1.0.0",
            "already there",
        );
        const check = await host.check({}, inputs(registry, "ml/serialized", "1.0.0"));
        expect(check.failures).toHaveLength(1);
        expect(check.failures[0].property).toBe("tag");
        expect(check.failures[0].reason).toContain(`digest ${digest}`);
        await expect(host.create(inputs(registry, "ml/serialized", "1.0.0"))).rejects.toThrow(
            `digest ${digest}`,
        );
    });

    it("creates, diffs and updates through the wire: a bump is an in-place update", async () => {
        const v1 = inputs(registry, "ml/wire", "1.0.0", FP_A);
        const created = await host.create(v1);
        expect(created.id).toBe(`${registry.host}/ml/wire:1.0.0`);
        expect(created.properties).toMatchObject({ tag: "1.0.0", fingerprint: FP_A });
        expect(created.properties).not.toHaveProperty("credentials");
        const rotated = { ...v1, credentials: { username: "publisher", password: "rotated" } };
        expect(await host.diff(created.id, v1, rotated)).toEqual({ changes: "none", replaces: [] });
        const v2 = inputs(registry, "ml/wire", "1.1.0", FP_B);
        expect(await host.diff(created.id, v1, v2)).toEqual({ changes: "some", replaces: [] });
        expect(await host.update(created.id, v1, v2)).toMatchObject({
            tag: "1.1.0",
            fingerprint: FP_B,
        });
    });

    it("refuses, with the registry's error, when the registry cannot be reached", async () => {
        const port = await freePort();
        const wanted = {
            ...inputs(registry, "ml/serialized", "9.9.9"),
            apiUrl: `http://127.0.0.1:${port}`,
        };
        const r = await host.check({}, wanted);
        expect(r.failures[0].reason).toContain(
            `the registry at http://127.0.0.1:${port} cannot be reached`,
        );
    });

    it("refuses changed content behind a published version", async () => {
        const published = inputs(registry, "ml/serialized", "1.0.0", FP_A);
        const r = await host.check(published, { ...published, fingerprint: FP_B });
        expect(r.failures[0].reason).toContain(`published content ${FP_A}, new content ${FP_B}`);
    });
});
