import {
    FINGERPRINT_LABEL,
    PUBLISHER_LABEL,
    Publication,
    REVISION_LABEL,
    decide,
    digestOf,
    nextVersion,
    tamperReport,
} from "../lib/publication/guard";
import { REQUIRED_INPUTS, checkInputs } from "../lib/publication/publishInputs";

const REPO = "r.example/ml/iris";
const D1 = `sha256:${"1".repeat(64)}`;
const D2 = `sha256:${"2".repeat(64)}`;
const pub = (tag: string, fingerprint: string): Publication => ({
    repositoryUri: REPO,
    tag,
    fingerprint,
    publisher: "model-registry/dev",
});
const absent = { exists: false } as const;
const holding = (digest: string, labels?: Record<string, string>) =>
    ({ exists: true, digest, labels }) as const;

describe("decide", () => {
    it("publishes a tag the registry does not have", () => {
        expect(decide(pub("1.0.0", "A"), absent)).toEqual({ action: "publish" });
        // A record of another tag says nothing about this one.
        expect(
            decide(pub("1.1.0", "A"), absent, { tag: "1.0.0", fingerprint: "A", digest: D1 }),
        ).toEqual({ action: "publish" });
    });

    it("reads the image's labels before deciding about an existing tag it has no record of", () => {
        expect(decide(pub("1.0.0", "A"), holding(D1))).toEqual({ action: "inspect", digest: D1 });
    });

    it("adopts a tag whose image carries this content's fingerprint (retry, rollback)", () => {
        expect(decide(pub("1.0.0", "A"), holding(D1, { [FINGERPRINT_LABEL]: "A" }))).toEqual({
            action: "adopt",
            digest: D1,
        });
    });

    it("confirms with one lookup a tag still holding the digest this stack verified", () => {
        const verified = { tag: "1.0.0", fingerprint: "A", digest: D1 };
        expect(decide(pub("1.0.0", "A"), holding(D1), verified)).toEqual({
            action: "adopt",
            digest: D1,
        });
    });

    it("refuses, loudly, a tag that moved since this stack verified it", () => {
        const verified = { tag: "1.0.0", fingerprint: "A", digest: D1 };
        const d = decide(pub("1.0.0", "A"), holding(D2, { [FINGERPRINT_LABEL]: "A" }), verified);
        expect(d.action).toBe("refuse");
        const message = (d as { message: string }).message;
        expect(message).toContain(`${REPO}:1.0.0 moved: this stack verified it as ${D1}`);
        expect(message).toContain(`now holds ${D2}`);
        expect(message).toContain(`skopeo copy docker://${REPO}@${D1} docker://${REPO}:1.0.0`);
    });

    it("refuses to publish again a tag that vanished after this stack verified it", () => {
        const verified = { tag: "1.0.0", fingerprint: "A", digest: D1 };
        const d = decide(pub("1.0.0", "A"), absent, verified);
        expect(d).toMatchObject({ action: "refuse" });
        expect((d as { message: string }).message).toContain(
            "the registry no longer has the tag: someone deleted it",
        );
    });

    it("refuses other content under this stack's own tag, naming the published fingerprint, digest and revision", () => {
        const d = decide(
            pub("1.0.0", "B"),
            holding(D1, {
                [FINGERPRINT_LABEL]: "A",
                [PUBLISHER_LABEL]: "model-registry/dev",
                [REVISION_LABEL]: "abc123",
            }),
        );
        expect(d.action).toBe("refuse");
        const message = (d as { message: string }).message;
        expect(message).toContain(
            `${REPO}:1.0.0 is already published by this stack with other content`,
        );
        expect(message).toContain(`holds ${D1} (content A), and this run's content is B`);
        expect(message).toContain("pulumi config set modelVersion 1.0.1");
        expect(message).toContain("(revision abc123)");
        expect(message).not.toContain("not published by this stack");
    });

    it("names another stack as the publisher when the label says so", () => {
        const d = decide(
            pub("1.0.0", "B"),
            holding(D1, { [FINGERPRINT_LABEL]: "A", [PUBLISHER_LABEL]: "model-registry/prod" }),
        );
        expect((d as { message: string }).message).toContain(
            "already published by stack model-registry/prod with other content",
        );
    });

    it("says 'not published by this program' only for an image without the fingerprint label", () => {
        const d = decide(pub("1.0.0", "A"), holding(D1, {}));
        expect(d.action).toBe("refuse");
        expect((d as { message: string }).message).toContain(
            `already exists in the registry (digest ${D1}) and was not published by this program`,
        );
    });

    it("does not let a record of other content adopt the tag", () => {
        const verified = { tag: "1.0.0", fingerprint: "A", digest: D1 };
        expect(decide(pub("1.0.0", "B"), holding(D1), verified)).toEqual({
            action: "inspect",
            digest: D1,
        });
    });
});

describe("digestOf", () => {
    it("reads the digest of a pushed repoDigest, and nothing from a local image ID", () => {
        expect(digestOf(`${REPO}@${D1}`)).toBe(D1);
        expect(digestOf("127.0.0.1:5000/ml/iris@" + D2)).toBe(D2);
        expect(digestOf(D1)).toBeUndefined();
        expect(digestOf("")).toBeUndefined();
        expect(digestOf(undefined)).toBeUndefined();
        expect(digestOf(`${REPO}@not a digest`)).toBeUndefined();
    });
});

describe("nextVersion", () => {
    it.each([
        ["1.1.0", "1.1.1"],
        ["0.0.9", "0.0.10"],
        ["1.0.0-rc.1", "1.0.0-rc.2"],
        ["2.0.0-beta", "2.0.0-beta.1"],
    ])("suggests %s -> %s", (version, next) => {
        expect(nextVersion(version)).toBe(next);
    });
});

describe("tamperReport", () => {
    const D1 = `sha256:${"1".repeat(64)}`;
    const D2 = `sha256:${"2".repeat(64)}`;
    const recorded = { "1.0.0": { digest: D1 }, "1.1.0": { digest: D1 } };
    const found = {
        "1.0.0": { exists: true as const, digest: D2 },
        "1.1.0": { exists: false as const },
    };

    it("stops on every moved or missing version, naming both states and the acknowledgement", () => {
        const { stop, warn } = tamperReport("r/m", recorded, found);
        expect(warn).toEqual([]);
        expect(stop).toHaveLength(2);
        expect(stop[0]).toContain(
            `r/m:1.0.0 was published by this stack as ${D1}, and the registry now holds ${D2}`,
        );
        expect(stop[0]).toContain(`acknowledgedTampering[0]' 1.0.0=${D2}`);
        expect(stop[1]).toContain("no longer has the tag");
        // Its own item: a second [0] would replace the first acknowledgement.
        expect(stop[1]).toContain(`acknowledgedTampering[1]' 1.1.0=absent`);
    });

    it("only warns for a version acknowledged as exactly what the registry holds now", () => {
        const { stop, warn } = tamperReport("r/m", recorded, found, {
            "1.0.0": D2,
            "1.1.0": D2,
        });
        expect(warn).toHaveLength(1);
        expect(warn[0]).toContain("r/m:1.0.0");
        expect(stop).toHaveLength(1);
        expect(stop[0]).toContain("r/m:1.1.0");
        // Its item, by its text: a provider sees the list with its keys sorted, not in order.
        expect(stop[0]).toContain(
            `--path 'acknowledgedTampering[<the index of 1.1.0=${D2}>]' 1.1.0=absent`,
        );
        expect(tamperReport("r/m", recorded, { "1.0.0": { exists: true, digest: D1 } })).toEqual({
            stop: [],
            warn: [],
        });
    });
});

describe("checkInputs", () => {
    it("refuses a registry reference with credentials, never quoting it", () => {
        const inputs = {
            repositoryUri: "ghp_S3cretabcdefghijklmnopqrstuvwxyz1234@r.example/ml/iris",
            apiUrl: "https://r.example",
            repositoryPath: "ml/iris",
            tag: "1.0.0",
            fingerprint: "f",
            platform: "linux/amd64",
        };
        const { problems } = checkInputs(inputs, "check", REQUIRED_INPUTS);
        expect(problems).toEqual([
            "repositoryUri holds credentials (not shown); a registry reference has none: give them as the registry target's credentials",
        ]);
        // Nor the fields derived from it, which would print them (a pasted newline).
        const pasted = { ...inputs, repositoryPath: "ml/iris\n" };
        expect(checkInputs(pasted, "check", REQUIRED_INPUTS).problems).toHaveLength(1);
        // A white space message never quotes the value: it may hold a token no search finds.
        const spaced = { ...inputs, repositoryUri: `r.example/ml/iris ghp_${"S3cret".repeat(6)}` };
        expect(checkInputs(spaced, "check", REQUIRED_INPUTS).problems.join()).not.toContain(
            "S3cret",
        );
        // Names that resemble tokens or variables are no credentials.
        for (const [apiUrl, repositoryUri] of [
            ["https://r.example:5000", "r.example:5000/ml/iris"],
            ["https://public.ecr.aws", "public.ecr.aws/acme/sk-learn_iris_classifier_v2"],
            ["http://registry-token:5000", "registry-token:5000/ml/iris"],
            ["http://pass:5000", "pass:5000/ml/iris"],
        ]) {
            const path = repositoryUri.slice(repositoryUri.indexOf("/") + 1);
            const plain = { ...inputs, apiUrl, repositoryUri, repositoryPath: path };
            expect(checkInputs(plain, "check", REQUIRED_INPUTS).problems).toEqual([]);
        }
    });
});
