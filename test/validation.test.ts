import {
    charLength,
    checkCatalogList,
    checkCatalogText,
    checkModelVersion,
    checkPlatform,
    checkPrincipalArn,
    checkRepositoryName,
    checkTags,
    toRepositoryName,
} from "../lib/validation";

describe("checkModelVersion", () => {
    it.each([
        "0.0.1",
        "1.0.0",
        "1.1.0",
        "10.20.30",
        "1.0.0-rc.1",
        "1.0.0-alpha-a.b-c",
        "2.0.0-0.3.7",
    ])("accepts %s", (v) => expect(checkModelVersion(v)).toBeUndefined());

    it.each([
        ["latest", /moving tag/, "1.0.0"],
        ["LATEST", /moving tag/, "1.0.0"],
        ["v1.0.0", /leading "v"/, "1.0.0"],
        ["v1.0", /leading "v"/, "1.0.0"],
        ["1.0", /not a SemVer version/, "1.0.0"],
        ["1", /not a SemVer version/, "1.0.0"],
        ["01.0.0", /not a SemVer version/, undefined],
        ["1.0.0 ", /white space/, "1.0.0"],
        ["1. 0.0", /white space/, undefined],
        ["", /empty/, "1.0.0"],
        ["1.0.0+build.5", /build metadata/, "1.0.0"],
        ["1.0.0-rc.1+sha.abc", /build metadata/, "1.0.0-rc.1"],
        ["1.0.0-", /not a SemVer version/, undefined],
    ])("refuses %j", (v, reason, suggestion) => {
        const p = checkModelVersion(v);
        expect(p?.reason).toMatch(reason);
        expect(p?.suggestion).toBe(suggestion);
    });

    it("refuses a tag longer than an OCI tag may be", () => {
        const long = `1.0.0-${"a".repeat(123)}`; // 129 characters
        expect(checkModelVersion(long)?.reason).toMatch(
            /129 characters long; an image tag holds at most 128/,
        );
        expect(checkModelVersion(long.slice(0, 128))).toBeUndefined();
    });
});

describe("checkRepositoryName", () => {
    it.each(["ab", "my-model", "team/my-model", "a.b_c-d", "a".repeat(205)])("accepts %s", (n) =>
        expect(checkRepositoryName(n)).toBeUndefined(),
    );

    it.each([
        ["My-Model", /upper-case/, "my-model"],
        ["my--model", /not allowed/, "my-model"],
        ["-model", /not allowed/, "model"],
        ["my model", /not allowed/, "my-model"],
        ["team//model", /not allowed/, "team/model"],
        ["a", /1 characters long/, undefined],
        ["a".repeat(206), /206 characters long/, "a".repeat(205)],
    ])("refuses %j", (n, reason, suggestion) => {
        const p = checkRepositoryName(n);
        expect(p?.reason).toMatch(reason);
        expect(p?.suggestion).toBe(suggestion);
    });

    it("derives valid names from project and stack names", () => {
        expect(toRepositoryName("model-registry-dev")).toBe("model-registry-dev");
        expect(toRepositoryName("My_Project-Prod.EU")).toBe("my-project-prod-eu");
        expect(toRepositoryName("!!")).toBeUndefined();
    });
});

describe("catalog limits", () => {
    it("counts characters, not UTF-16 units", () => {
        expect(charLength("🙂🙂")).toBe(2);
        expect(checkCatalogText("🙂".repeat(1024), 1024)).toBeUndefined();
        expect(checkCatalogText("🙂".repeat(1025), 1024)?.reason).toMatch(
            /1025 characters long; ECR Public allows at most 1024 \(shorten it by 1\)/,
        );
    });

    it("checks list length and item length", () => {
        expect(checkCatalogList(["x86-64", "ARM 64"])).toBeUndefined();
        expect(checkCatalogList(Array(51).fill("x"))?.reason).toMatch(
            /51 items; ECR Public allows at most 50/,
        );
        expect(checkCatalogList([""])?.reason).toMatch(/0 characters long; each item must be 1-50/);
        expect(checkCatalogList(["a".repeat(51)])?.reason).toMatch(/51 characters long/);
    });

    it("checks resource tags", () => {
        expect(checkTags({ team: "ml" })).toBeUndefined();
        expect(checkTags({ ["k".repeat(129)]: "v" })?.reason).toMatch(/1-128 characters/);
        expect(checkTags({ k: "v".repeat(257) })?.reason).toMatch(/longer than 256/);
        const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, "v"]));
        expect(checkTags(many)?.reason).toMatch(/51 tags/);
    });
});

describe("checkPlatform", () => {
    it("accepts known platforms and suggests the canonical spelling of aliases", () => {
        expect(checkPlatform("linux/amd64")).toBeUndefined();
        expect(checkPlatform("linux/arm64")).toBeUndefined();
        expect(checkPlatform("x86_64")?.suggestion).toBe("linux/amd64");
        expect(checkPlatform("aarch64")?.suggestion).toBe("linux/arm64");
        expect(checkPlatform("Linux/AMD64")?.suggestion).toBe("linux/amd64");
        expect(checkPlatform("windows/amd64")?.reason).toMatch(
            /not a known build platform; expected one of linux\/amd64/,
        );
    });
});

describe("checkPrincipalArn", () => {
    it.each([
        "arn:aws:iam::123456789012:root",
        "arn:aws:iam::123456789012:role/ci-publisher",
        "arn:aws-cn:iam::123456789012:user/a/b",
    ])("accepts %s", (arn) => expect(checkPrincipalArn(arn)).toBeUndefined());

    it("refuses anything else, suggesting the root ARN for a bare account id", () => {
        expect(checkPrincipalArn("123456789012")?.suggestion).toBe(
            "arn:aws:iam::123456789012:root",
        );
        expect(checkPrincipalArn("*")?.reason).toMatch(/not an IAM principal ARN/);
        expect(checkPrincipalArn("arn:aws:iam::1234:root")?.reason).toMatch(
            /not an IAM principal ARN/,
        );
    });
});
