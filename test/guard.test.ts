import { Publication, decideFromRegistry, decideFromState, nextVersion } from "../lib/guard";

const pub = (
    tag: string,
    fingerprint: string,
    repositoryUri = "r.example/ml/iris",
): Publication => ({
    repositoryUri,
    tag,
    fingerprint,
});
const absent = { exists: false } as const;
const present = { exists: true, digest: `sha256:${"d".repeat(64)}`, mediaType: "" } as const;

describe("decideFromState", () => {
    it("leaves this stack's own tag with the same content alone", () => {
        expect(decideFromState(pub("1.0.0", "A"), pub("1.0.0", "A"))).toEqual({
            action: "unchanged",
        });
    });

    it.each([
        ["no record", undefined, pub("1.0.0", "A")],
        ["another tag", pub("1.0.0", "A"), pub("1.1.0", "A")],
        ["other content", pub("1.0.0", "A"), pub("1.0.0", "B")],
        ["another repository", pub("1.0.0", "A", "r.example/a"), pub("1.0.0", "A", "r.example/b")],
    ])("asks the registry with %s", (_label, recorded, wanted) => {
        expect(decideFromState(recorded, wanted)).toEqual({ action: "lookup" });
    });
});

describe("decideFromRegistry", () => {
    it("publishes a tag the registry does not have, recorded or not", () => {
        expect(decideFromRegistry(undefined, pub("1.0.0", "A"), absent)).toEqual({
            action: "publish",
        });
        expect(decideFromRegistry(pub("1.0.0", "A"), pub("1.0.0", "B"), absent)).toEqual({
            action: "publish",
        });
    });

    it("refuses a tag the registry has, saying who published it", () => {
        const ours = decideFromRegistry(pub("1.0.0", "A"), pub("1.0.0", "B"), present);
        const theirs = decideFromRegistry(pub("0.9.0", "A"), pub("1.0.0", "B"), present);
        expect(ours.action === "refuse" && ours.message).toContain(
            "already published by this stack",
        );
        expect(ours.action === "refuse" && ours.message).toContain(
            "published content A, new content B",
        );
        expect(theirs.action === "refuse" && theirs.message).toContain(
            "was not published by this stack",
        );
        expect(theirs.action === "refuse" && theirs.message).toContain(present.digest);
    });
});

describe("nextVersion", () => {
    it.each([
        ["1.1.0", "1.1.1"],
        ["0.0.9", "0.0.10"],
        ["1.0.0-rc.1", "1.0.0-rc.2"],
        ["1.0.0-0", "1.0.0-1"],
        ["1.0.0-alpha.beta.3", "1.0.0-alpha.beta.4"],
        ["2.0.0-beta", "2.0.0-beta.1"],
    ])("%s -> %s", (version, next) => expect(nextVersion(version)).toBe(next));
});
