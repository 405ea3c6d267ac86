import { decidePromotion, parsePromotionSource } from "../lib/publication/promotion";

const ctx = { project: "model-registry", stack: "staging" };
const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;

describe("parsePromotionSource", () => {
    it.each([
        ["", undefined],
        ["dev", { kind: "stack", name: "dev" }],
        ["acme/model-registry/dev", { kind: "stack", name: "acme/model-registry/dev" }],
        ["acme/other-project/staging", { kind: "stack", name: "acme/other-project/staging" }],
        [
            "public.ecr.aws/team/model",
            { kind: "repository", repositoryUri: "public.ecr.aws/team/model" },
        ],
        ["127.0.0.1:5000/ml/iris", { kind: "repository", repositoryUri: "127.0.0.1:5000/ml/iris" }],
        ["localhost/ml/iris", { kind: "repository", repositoryUri: "localhost/ml/iris" }],
        ["dev.eu", { kind: "stack", name: "dev.eu" }],
    ])("reads %p", (value, source) => {
        expect(parsePromotionSource(value, ctx)).toEqual(source ? { source } : {});
    });

    it.each([
        ["staging", "cannot promote from itself"],
        ["Staging", "cannot promote from itself"],
        ["acme/model-registry/staging", "cannot promote from itself"],
        ["project/dev", "expected a stack"],
        ["dev stack", "expected a stack"],
        ["public.ecr.aws/team/model:1.0.0", "without a tag or digest"],
        [`public.ecr.aws/team/model@${D1}`, "without a tag or digest"],
        ["public.ecr.aws/Team/Model", "upper-case"],
    ])("refuses %p", (value, reason) => {
        expect(parsePromotionSource(value, ctx).problem?.reason).toContain(reason);
    });

    it("suggests the repository without its tag", () => {
        expect(
            parsePromotionSource("public.ecr.aws/team/model:1.0.0", ctx).problem?.suggestion,
        ).toBe("public.ecr.aws/team/model");
    });
});

describe("decidePromotion", () => {
    const base = {
        tag: "1.2.0",
        sourceName: "stack dev",
        sourceUri: "r/dev",
        destinationUri: "r/staging",
    };
    const absent = { exists: false } as const;
    const at = (digest: string) => ({ exists: true, digest }) as const;

    it("copies a version the destination does not have", () => {
        expect(decidePromotion({ ...base, source: at(D1), destination: absent })).toEqual({
            action: "copy",
            digest: D1,
        });
    });

    it("copies nothing when the destination already holds the source's digest (rollback)", () => {
        expect(decidePromotion({ ...base, source: at(D1), destination: at(D1) })).toEqual({
            action: "unchanged",
            digest: D1,
        });
    });

    it("refuses a destination tag with another digest, naming both", () => {
        const d = decidePromotion({ ...base, source: at(D1), destination: at(D2) });
        expect(d.action).toBe("refuse");
        expect((d as { message: string }).message).toContain(
            `r/staging:1.2.0 already holds ${D2}, but stack dev has ${D1}`,
        );
    });

    it("refuses a version the source has not published", () => {
        const d = decidePromotion({ ...base, source: absent, destination: absent });
        expect((d as { message: string }).message).toContain(
            "stack dev has not published 1.2.0 (r/dev:1.2.0 does not exist)",
        );
        expect((d as { message: string }).message).toContain("publish 1.2.0 there first");
    });

    it("rolls back to a version this stack promoted even if the source lost it", () => {
        expect(
            decidePromotion({ ...base, source: absent, destination: at(D1), recorded: D1 }),
        ).toEqual({ action: "unchanged", digest: D1 });
        expect(decidePromotion({ ...base, source: absent, destination: at(D1) }).action).toBe(
            "refuse",
        );
    });

    it("reports a deleted promoted tag; once acknowledged absent, copies back only the same content", () => {
        const deleted = { ...base, destination: absent, recorded: D1 };
        const unacknowledged = decidePromotion({ ...deleted, source: at(D1) });
        expect((unacknowledged as { message: string }).message).toContain(
            "the registry no longer has the tag: someone deleted it outside this program",
        );
        // Its index is the next one of the list (the version is not in it yet).
        expect((unacknowledged as { message: string }).message).toContain(
            `'acknowledgedTampering[0]' 1.2.0=absent`,
        );
        expect(
            decidePromotion({ ...deleted, source: at(D1), acknowledged: { "1.0.0": "absent" } }),
        ).toMatchObject({ message: expect.stringContaining("acknowledgedTampering[1]") });
        const acknowledged = { ...deleted, acknowledged: { "1.2.0": "absent" } };
        const d = decidePromotion({ ...acknowledged, source: at(D2) });
        expect((d as { message: string }).message).toContain(`was promoted as ${D1}`);
        // The same digest may be restored: the version keeps its content.
        expect(decidePromotion({ ...acknowledged, source: at(D1) })).toEqual({
            action: "copy",
            digest: D1,
        });
    });
});

describe("another stack's repository_uri in a promotion's messages", () => {
    // A lower stack's outputs set it: control characters could rewrite a reviewer's terminal.
    const hostile = "public.ecr.aws/abc/x\x1b]0;pwned\x07\x1b[2K\rFAKE: promotion approved\n";
    const source = {
        tag: "1.0.0",
        sourceName: "stack dev",
        sourceRepositoryUri: hostile,
        sourceApiUrl: "https://public.ecr.aws",
        sourceRepositoryPath: hostile.slice("public.ecr.aws/".length),
    };

    it("is refused, shown escaped, by the source check and by the promotion", async () => {
        const { promotionSourceCheckProvider } = await import("../components/promotedImage");
        const { imagePromotionProvider } = await import("../components/imagePromotion");
        const checks = [
            await promotionSourceCheckProvider.check!({}, source),
            await imagePromotionProvider.check!(
                {},
                {
                    ...source,
                    repositoryUri: "public.ecr.aws/abc/model-registry-staging",
                    apiUrl: "https://public.ecr.aws",
                    repositoryPath: "abc/model-registry-staging",
                    platform: "linux/amd64",
                },
            ),
        ];
        for (const { failures } of checks) {
            const text = (failures ?? []).map((f) => f.reason).join("\n");
            expect(text).toContain("white space or control characters");
            expect(text).not.toMatch(/[\x00-\x08\x0b-\x1f\x7f]/);
            expect(text).not.toContain("\rFAKE");
        }
    });
});
