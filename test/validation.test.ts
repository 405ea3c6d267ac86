import {
    charLength,
    checkImageReference,
    firstDuplicate,
    normalizePlatform,
    plural,
    repairVersion,
    suggestRepositoryName,
    checkCatalogList,
    checkCatalogText,
    checkModelVersion,
    checkPlatform,
    checkPrincipalArn,
    checkRepositoryName,
    checkTags,
    shellWord,
    toRepositoryName,
    withStack,
} from "../lib/validation";
import { execFileSync } from "child_process";

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
        ["latest", /moving tag/, undefined],
        ["LATEST", /moving tag/, undefined],
        ["v1.0.0", /leading "v"/, "1.0.0"],
        ["v1.0", /leading "v"/, "1.0.0"],
        ["1.0", /not a SemVer version/, "1.0.0"],
        ["1", /not a SemVer version/, "1.0.0"],
        ["01.0.0", /not a SemVer version/, undefined],
        ["1.0.0 ", /white space/, "1.0.0"],
        ["1. 0.0", /white space/, undefined],
        ["", /empty/, undefined],
        ["2.3.0-rc_1", /not a SemVer version/, "2.3.0-rc.1"],
        ["v1.2.0", /leading "v"/, "1.2.0"],
        ["1.2-beta_2", /not a SemVer version/, "1.2.0-beta.2"],
        ["1.0.0-rc__1", /not a SemVer version/, undefined],
        ["1.0.0-01", /not a SemVer version/, undefined],
        ["1.0.0+build.5", /build metadata/, "1.0.0"],
        ["1.0.0-rc.1+sha.abc", /build metadata/, "1.0.0-rc.1"],
        ["1.0.0-", /not a SemVer version/, undefined],
        [
            "9007199254740992.0.0",
            /at most 9007199254740991, so that versions can be ordered/,
            undefined,
        ],
        // No suggestion that would itself be refused: a number too big to order, a tag too long.
        ["v9007199254740993.0.0", /leading "v"/, undefined],
        [` 1.0.0-${"a".repeat(251)} `, /white space/, undefined],
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
        ["My-Model", /it has 2 upper-case letters \(the first, 'M', at position 1\)/, "my-model"],
        ["Team/My_Model", /the first, 'T', at position 1/, "team/my_model"],
        ["my--model", /'--' at position 3 is two separators in a row/, "my-model"],
        ["-model", /it starts with the separator '-'/, "model"],
        ["model/", /it ends with the separator '\/'/, "model"],
        ["my model", /white space \(" "\) at position 3 is not allowed/, "my-model"],
        ["my!model", /'!' at position 3 is not allowed \(only a-z, 0-9/, "my-model"],
        ["team//model", /'\/\/' at position 5 is two separators in a row/, "team/model"],
        ["team._x", /'\._' at position 5/, "team.x"],
        ["a", /it is 1 character long/, undefined],
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
        // Where the credential is, in characters as the limits count them.
        expect(checkCatalogText("🙂🙂🙂 password: S3cretPass99", 1024)?.reason).toContain(
            "the first at character 15)",
        );
        expect(checkCatalogText("🙂".repeat(1025), 1024)?.reason).toMatch(
            /1025 characters long; ECR Public allows at most 1024 \(shorten it by 1 character\)/,
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

describe("plural", () => {
    it("counts one in the singular", () => {
        expect(plural(1, "character")).toBe("1 character");
        expect(plural(0, "character")).toBe("0 characters");
        expect(plural(2, "item")).toBe("2 items");
        expect(checkCatalogList(["a".repeat(51)])?.reason).toMatch(/^item 0 is 51 characters/);
        expect(checkCatalogText("ab", 1)?.reason).toBe(
            "it is 2 characters long; ECR Public allows at most 1 (shorten it by 1 character)",
        );
        const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`k${i}`, "v"]));
        expect(checkTags(many)?.reason).toMatch(/^there are 51 tags/);
    });

    it("names the index of a bad catalog list item", () => {
        expect(checkCatalogList(["Linux", "", "x"])?.index).toBe(1);
    });
});

describe("repairVersion", () => {
    it.each([
        ["v1.2.0", "1.2.0"],
        ["1.2", "1.2.0"],
        ["1", "1.0.0"],
        ["2.3.0-rc_1", "2.3.0-rc.1"],
        ["V2.3-rc_1", "2.3.0-rc.1"],
        ["latest", undefined],
        ["1-rc.1", undefined],
        ["1.2.3.4", undefined],
    ])("%j -> %j", (value, repaired) => expect(repairVersion(value)).toBe(repaired));
});

describe("suggestRepositoryName", () => {
    it("keeps '.' and '_', lower-cases, and reduces runs of separators", () => {
        expect(suggestRepositoryName("Team/My_Model")).toBe("team/my_model");
        expect(suggestRepositoryName("My.Model v2")).toBe("my.model-v2");
        expect(suggestRepositoryName("a__b")).toBe("a_b");
        expect(suggestRepositoryName("!!")).toBeUndefined();
    });

    it("leaves the derived default name as it was (a new spelling would be a new repository)", () => {
        expect(toRepositoryName("model-registry-Prod_EU")).toBe("model-registry-prod-eu");
    });
});

describe("platform spellings", () => {
    it("normalizes Docker's other spellings of a platform, nothing else", () => {
        expect(normalizePlatform("linux/arm64/v8")).toBe("linux/arm64");
        expect(normalizePlatform("linux/amd64/v1")).toBe("linux/amd64");
        expect(normalizePlatform("linux/arm")).toBe("linux/arm/v7");
        expect(normalizePlatform("linux/arm/v6")).toBe("linux/arm/v6");
        expect(normalizePlatform("Linux/ARM64")).toBe("Linux/ARM64");
    });

    it("refuses another spelling in checkPlatform, with the one to use", () => {
        const p = checkPlatform("linux/arm64/v8");
        expect(p?.suggestion).toBe("linux/arm64");
        expect(p?.reason).toMatch(/^it is linux\/arm64 written another way; write it linux\/arm64/);
    });

    it.each([
        ["amd64", "linux/amd64"],
        ["X86_64", "linux/amd64"],
        ["linux/x86_64", "linux/amd64"],
        ["arm64", "linux/arm64"],
        ["LINUX/ARM64/V8", "linux/arm64"],
        ["linux/arm64/8", "linux/arm64"],
        ["i386", "linux/386"],
        ["armhf", "linux/arm/v7"],
        ["windows/amd64", undefined],
        ["sparc", undefined],
    ])("suggests for %j: %j", (value, meant) =>
        expect(checkPlatform(value)?.suggestion).toBe(meant),
    );
});

describe("checkPrincipalArn for ECR Public", () => {
    it("refuses other partitions only for ECR Public", () => {
        const cn = "arn:aws-cn:iam::123456789012:role/ci";
        expect(checkPrincipalArn(cn)).toBeUndefined();
        expect(checkPrincipalArn(cn, { ecrPublic: true })?.reason).toMatch(
            /aws-cn partition, and ECR Public exists only in the aws partition/,
        );
        expect(
            checkPrincipalArn("arn:aws-us-gov:iam::123456789012:root", { ecrPublic: true })?.reason,
        ).toMatch(/aws-us-gov partition/);
        expect(
            checkPrincipalArn("arn:aws:iam::123456789012:root", { ecrPublic: true }),
        ).toBeUndefined();
    });

    it("finds the first repeated item", () => {
        expect(firstDuplicate(["a", "b", "c"])).toBeUndefined();
        expect(firstDuplicate(["a", "b", "b", "a"])).toEqual({ index: 2, first: 1 });
    });
});

describe("checkImageReference", () => {
    it.each([
        "python:3.12-slim",
        "python",
        "library/python:3",
        "Registry.Example.com/team/base",
        "localhost:5000/a/b:1",
        "127.0.0.1:5000/a:1",
        "[::1]:5000/a:1",
        "a--b/c__d/e.f_g:1.0-x_Y",
        `python@sha256:${"0".repeat(64)}`,
        `python:3@sha256:${"0".repeat(64)}`,
        `python@sha512:${"0".repeat(128)}`,
    ])("accepts %s", (ref) => expect(checkImageReference(ref)).toBeUndefined());

    it.each([
        ["Python:3.12", /repository path "Python" has upper-case letters/, "python:3.12"],
        ["Team/model:1", /repository path "Team\/model"/, "team/model:1"],
        ["localhost:5000/Team/M", /upper-case/, "localhost:5000/team/m"],
        [
            "Registry.Example.com:5000/Team/Base:1",
            /upper-case/,
            "Registry.Example.com:5000/team/base:1",
        ],
        ["python:-x", /the tag "-x" is not a valid tag/, undefined],
        [`python:${"t".repeat(129)}`, /is not a valid tag/, undefined],
        ["python@sha256:abc", /the digest "sha256:abc" is not one Docker accepts/, undefined],
        // Docker refuses upper-case hex, a short digest and an algorithm it does not know.
        [
            `python@sha256:${"A".repeat(64)}`,
            /is not one Docker accepts/,
            `python@sha256:${"a".repeat(64)}`,
        ],
        [`python@sha256:${"0".repeat(32)}`, /is not one Docker accepts/, undefined],
        [`python@md5:${"0".repeat(32)}`, /is not one Docker accepts/, undefined],
        ["reg_istry.io/a", /the registry "reg_istry.io" is not a host\[:port\]/, undefined],
        ["a/-b", /component "-b"/, undefined],
        ["a//b", /component ""/, undefined],
        ["", /it is empty/, undefined],
        [" python:3 ", /no white space/, "python:3"],
        [`a/${"b".repeat(254)}`, /256 characters long; Docker allows at most 255/, undefined],
    ])("refuses %j", (ref, reason, suggestion) => {
        const p = checkImageReference(ref);
        expect(p?.reason).toMatch(reason);
        expect(p?.suggestion).toBe(suggestion);
    });
});

describe("shellWord", () => {
    it.each([
        "1.2.0",
        "a,b",
        "it's",
        "a b",
        "$HOME",
        "a!b",
        "!!",
        "x\ny",
        "",
        "{a,b}",
        "a\\b",
        "*",
        "~u",
        "#c",
        "é",
        "'",
    ])("%j comes back from the shell as it went in", (value) => {
        const echoed = execFileSync("bash", ["-c", `printf %s ${shellWord(value)}`]);
        expect(echoed.toString("utf8")).toBe(value);
    });
});

describe("withStack", () => {
    it("names the stack in each command, past an apostrophe in prose, and never inside a quoted value", () => {
        const text =
            `content "note: pulumi config set modelVersion 2.0.0" and this run's content ` +
            `differ. Fix: pulumi config set modelVersion 1.0.1; or pulumi config set --path ` +
            `'acknowledgedTampering[0]' 1.0.0=unclaim:x (Bob's hotfix): pulumi config rm ` +
            `--stack dev acknowledgedTampering`;
        expect(withStack(text, "prod", `'"`)).toBe(
            `content "note: pulumi config set modelVersion 2.0.0" and this run's content ` +
                `differ. Fix: pulumi config set --stack prod modelVersion 1.0.1; or pulumi config ` +
                `set --stack prod --path 'acknowledgedTampering[0]' 1.0.0=unclaim:x (Bob's ` +
                `hotfix): pulumi config rm --stack dev acknowledgedTampering`,
        );
    });

    it.each(["'modelVersion'", "' a", "'", "it's", "modelVersion'"])(
        "names it in every command of a fix that quotes the key %j as shellWord does",
        (key) => {
            const fix = (get: string, rm: string) =>
                `pulumi config set${get} modelVersion -- "$(pulumi config get${get} ${shellWord(key)})" && pulumi config rm${rm} ${shellWord(key)}`;
            expect(withStack(fix("", ""), "prod")).toBe(fix(" --stack prod", " --stack prod"));
        },
    );
});
