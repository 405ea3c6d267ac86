import * as pulumi from "@pulumi/pulumi";
import * as path from "path";
import { RawConfig, StackConfig, parseConfig } from "../config";

const ctx = { project: "model-registry", stack: "dev" };

function parse(raw: RawConfig, stack = "dev"): StackConfig {
    return parseConfig(raw, { ...ctx, stack });
}

/** The error message parseConfig throws; fails the test when it does not throw a RunError. */
function errorOf(raw: RawConfig): string {
    try {
        parse(raw);
    } catch (e) {
        expect(pulumi.RunError.isInstance(e)).toBe(true);
        return (e as Error).message;
    }
    throw new Error("expected parseConfig to throw");
}

describe("parseConfig", () => {
    it("applies every default", () => {
        expect(parse({ modelVersion: "1.0.0" })).toEqual({
            modelVersion: "1.0.0",
            repositoryName: "model-registry-dev",
            modelContext: "model",
            dockerfile: "Dockerfile",
            platform: "linux/amd64",
            baseImage: "",
            catalog: {
                description: "",
                aboutText: "",
                usageText: "",
                architectures: ["x86-64"],
                operatingSystems: ["Linux"],
            },
            forceDestroy: false,
            protect: false,
            pushPrincipals: [],
            sourceUrl: "",
            modelRevision: "",
            promoteFrom: undefined,
            registry: "ecr-public",
            registryUrl: undefined,
            registryCredentials: undefined,
            localRegistry: { image: "registry:2", port: 5000 },
            kmsKey: undefined,
        });
    });

    it("derives the repository name from project and stack", () => {
        expect(parse({ modelVersion: "1.0.0" }, "Prod_EU").repositoryName).toBe(
            "model-registry-prod-eu",
        );
    });

    it("derives the architecture badge from the platform", () => {
        expect(
            parse({ modelVersion: "1.0.0", platform: "linux/arm64" }).catalog.architectures,
        ).toEqual(["ARM 64"]);
    });

    it("reads lists and booleans as the engine passes them", () => {
        const c = parse({
            modelVersion: "1.1.0",
            pushPrincipals: '["arn:aws:iam::123456789012:role/ci"]',
            operatingSystems: '["Linux"]',
            architectures: '["x86-64","ARM 64"]',
            forceDestroy: "true",
        });
        expect(c.pushPrincipals).toEqual(["arn:aws:iam::123456789012:role/ci"]);
        expect(c.catalog.architectures).toEqual(["x86-64", "ARM 64"]);
        expect(c.forceDestroy).toBe(true);
    });

    describe("bad input: one message naming key, value and fix", () => {
        it("missing modelVersion", () => {
            expect(errorOf({})).toBe(
                'Invalid configuration for stack "dev" (1 problem); nothing was created or pushed.\n' +
                    "  - model-registry:modelVersion is not set: every stack publishes exactly one model version, so it must be set explicitly.\n" +
                    "    Fix: pulumi config set modelVersion 1.0.0",
            );
        });

        it.each([
            ["latest", "`latest` is a moving tag", "pulumi config set modelVersion 1.0.0"],
            ["v1.0", 'without a leading "v"', "pulumi config set modelVersion 1.0.0"],
            ["1.0", "not a SemVer version", "pulumi config set modelVersion 1.0.0"],
            ["1.2.3 ", "white space", "pulumi config set modelVersion 1.2.3"],
            ["1.0.0+exp", "build metadata", "pulumi config set modelVersion 1.0.0"],
        ])("modelVersion %j", (value, reason, fix) => {
            const msg = errorOf({ modelVersion: value });
            expect(msg).toContain(`model-registry:modelVersion = ${JSON.stringify(value)}: `);
            expect(msg).toContain(reason);
            expect(msg).toContain(`Fix: ${fix}`);
        });

        it("an over-long tag", () => {
            const msg = errorOf({ modelVersion: `1.0.0-${"x".repeat(200)}` });
            expect(msg).toContain("206 characters long; an image tag holds at most 128");
            expect(msg).toContain("Fix: pulumi config set modelVersion 1.0.0");
        });

        it("an upper-case repository name", () => {
            const msg = errorOf({ modelVersion: "1.0.0", repositoryName: "My-Model" });
            expect(msg).toContain(
                'model-registry:repositoryName = "My-Model": it has upper-case letters',
            );
            expect(msg).toContain("Fix: pulumi config set repositoryName my-model");
        });

        it("an invalid repository name", () => {
            const msg = errorOf({ modelVersion: "1.0.0", repositoryName: "my model!" });
            expect(msg).toContain("characters or separators that are not allowed");
            expect(msg).toContain("Fix: pulumi config set repositoryName my-model");
        });

        it("catalog text over the AWS limit", () => {
            const msg = errorOf({ modelVersion: "1.0.0", description: "d".repeat(1030) });
            expect(msg).toContain("model-registry:description = ");
            expect(msg).toContain(
                "1030 characters long; ECR Public allows at most 1024 (shorten it by 6)",
            );
            expect(msg).toContain("Fix: pulumi config set description");
        });

        it("usage and about text over the AWS limit", () => {
            const msg = errorOf({
                modelVersion: "1.0.0",
                usageText: "u".repeat(25601),
                aboutText: "a".repeat(25601),
            });
            expect(msg).toContain("(2 problems)");
            expect(msg).toContain("model-registry:aboutText");
            expect(msg).toContain("model-registry:usageText");
        });

        it("too many architecture badges", () => {
            const msg = errorOf({
                modelVersion: "1.0.0",
                architectures: JSON.stringify(Array(51).fill("x86-64")),
            });
            expect(msg).toContain("model-registry:architectures");
            expect(msg).toContain("51 items; ECR Public allows at most 50");
        });

        it("an unknown platform, with the canonical spelling", () => {
            const msg = errorOf({ modelVersion: "1.0.0", platform: "x86_64" });
            expect(msg).toContain(
                'model-registry:platform = "x86_64": it is not a known build platform',
            );
            expect(msg).toContain("Fix: pulumi config set platform linux/amd64");
        });

        it("a push principal that is not an ARN, fixed by item path", () => {
            const msg = errorOf({
                modelVersion: "1.0.0",
                pushPrincipals: '["arn:aws:iam::123456789012:role/ci","123456789012"]',
            });
            expect(msg).toContain('model-registry:pushPrincipals (item 1) = "123456789012"');
            expect(msg).toContain(
                "Fix: pulumi config set --path 'pushPrincipals[1]' arn:aws:iam::123456789012:root",
            );
        });

        it("a list that is not a list", () => {
            const msg = errorOf({
                modelVersion: "1.0.0",
                pushPrincipals: "arn:aws:iam::123456789012:root",
            });
            expect(msg).toContain("expected a list of strings");
            expect(msg).toContain("pulumi config set --path 'pushPrincipals[0]'");
        });

        it("a boolean that is not a boolean", () => {
            const msg = errorOf({ modelVersion: "1.0.0", forceDestroy: "yes" });
            expect(msg).toContain('model-registry:forceDestroy = "yes": expected true or false');
            expect(msg).toContain("Fix: pulumi config set forceDestroy false");
        });

        it("forceDestroy on a protected stack", () => {
            const msg = errorOf({ modelVersion: "1.0.0", forceDestroy: "true", protect: "true" });
            expect(msg).toContain("a protected repository must not be destroyable with its images");
            expect(msg).toContain("Fix: pulumi config set forceDestroy false");
        });

        it("a model context that does not exist", () => {
            const msg = errorOf({ modelVersion: "1.0.0", modelContext: "no-such-dir" });
            expect(msg).toContain('model-registry:modelContext = "no-such-dir": no directory');
            expect(msg).toContain("Fix: pulumi config set modelContext model");
        });

        it("a Dockerfile that does not exist", () => {
            const msg = errorOf({ modelVersion: "1.0.0", dockerfile: "Dockerfile.gpu" });
            expect(msg).toContain('model-registry:dockerfile = "Dockerfile.gpu": no file');
        });

        it("a source URL that is not a URL", () => {
            expect(errorOf({ modelVersion: "1.0.0", sourceUrl: "github.com/x" })).toContain(
                "expected an absolute URL",
            );
        });

        it("lists every problem at once", () => {
            const msg = errorOf({
                modelVersion: "latest",
                repositoryName: "Bad Name",
                platform: "sparc",
            });
            expect(msg).toMatch(
                /^Invalid configuration for stack "dev" \(3 problems\); nothing was created or pushed\./,
            );
            expect(msg.split("\n").filter((l) => l.startsWith("    Fix: "))).toHaveLength(3);
        });
    });
});

describe("modelContext paths", () => {
    it("refuses an absolute modelContext, which docker.Image would see change between machines", () => {
        const msg = errorOf({ modelVersion: "1.0.0", modelContext: path.resolve("model") });
        expect(msg).toContain("an absolute path differs from machine to machine");
        expect(msg).toContain("Fix: pulumi config set modelContext model");
    });
});

describe("registry targets", () => {
    const v = { modelVersion: "1.0.0" };

    it("defaults to ecr-public and accepts each target", () => {
        expect(parse(v).registry).toBe("ecr-public");
        expect(parse({ ...v, registry: "ecr-private" }).registry).toBe("ecr-private");
        const local = parse({ ...v, registry: "local" });
        expect(local.registry).toBe("local");
        expect(local.localRegistry).toEqual({ image: "registry:2", port: 5000 });
        expect(local.registryUrl).toBeUndefined();
    });

    it("refuses an unknown target, suggesting the spelling meant", () => {
        const message = errorOf({ ...v, registry: "Local" });
        expect(message).toContain(
            'model-registry:registry = "Local": expected one of ecr-public, ecr-private, local',
        );
        expect(message).toContain("Fix: pulumi config set registry local");
    });

    it("refuses settings of another target instead of ignoring them", () => {
        const message = errorOf({ ...v, registryUrl: "http://127.0.0.1:5000", kmsKey: "" });
        expect(message).toContain("model-registry:registryUrl");
        expect(message).toContain(
            "only read when registry is local (this stack's registry is ecr-public)",
        );
        expect(
            errorOf({
                ...v,
                registry: "local",
                kmsKey: "arn:aws:kms:us-west-2:123456789012:key/abc",
            }),
        ).toContain("only read when registry is ecr-private");
        expect(
            errorOf({
                ...v,
                registry: "local",
                pushPrincipals: '["arn:aws:iam::123456789012:root"]',
            }),
        ).toContain("a local registry has no IAM principals");
    });

    it("takes a registry URL with scheme, host and port only", () => {
        const local = { ...v, registry: "local" };
        expect(parse({ ...local, registryUrl: "http://127.0.0.1:5000/" }).registryUrl).toBe(
            "http://127.0.0.1:5000",
        );
        expect(errorOf({ ...local, registryUrl: "127.0.0.1:5000" })).toContain(
            "Fix: pulumi config set registryUrl http://127.0.0.1:5000",
        );
        expect(
            errorOf({ ...local, registryUrl: "https://u:p@registry.example:5000/v2" }),
        ).toContain("Fix: pulumi config set registryUrl https://registry.example:5000");
    });

    it("needs both credentials, and only for a registry the user runs", () => {
        const url = { ...v, registry: "local", registryUrl: "http://127.0.0.1:5000" };
        const secret = pulumi.secret("s3cret");
        expect(() => parseConfig({ ...url, registryUsername: "ci" }, ctx)).toThrow(
            "model-registry:registryPassword is not set: registryUsername is set",
        );
        expect(() => parseConfig({ ...url }, ctx, secret)).toThrow(
            "model-registry:registryUsername is not set",
        );
        expect(() =>
            parseConfig({ ...v, registry: "local", registryUsername: "ci" }, ctx, secret),
        ).toThrow("credentials are only for a registry you run yourself");
        const creds = parseConfig(
            { ...url, registryUsername: "ci" },
            ctx,
            secret,
        ).registryCredentials;
        expect(creds?.username).toBe("ci");
        expect(creds?.password).toBe(secret);
    });

    it("never shows a password it refuses", () => {
        let message = "";
        try {
            parseConfig(v, ctx, pulumi.secret("hunter2-password"));
        } catch (e) {
            message = (e as Error).message;
        }
        expect(message).toContain("model-registry:registryPassword");
        expect(message).not.toContain("hunter2");
    });

    it("checks the local registry's port and image, and the KMS key", () => {
        const local = { ...v, registry: "local" };
        expect(parse({ ...local, localRegistryPort: "5055" }).localRegistry.port).toBe(5055);
        for (const port of ["0", "65536", "50x", "-1"]) {
            expect(errorOf({ ...local, localRegistryPort: port })).toContain(
                "expected a TCP port from 1 to 65535",
            );
        }
        expect(errorOf({ ...local, localRegistryImage: "registry 2" })).toContain(
            "model-registry:localRegistryImage",
        );
        const key = "arn:aws:kms:us-west-2:123456789012:key/1234abcd-12ab-34cd-56ef-1234567890ab";
        expect(parse({ ...v, registry: "ecr-private", kmsKey: key }).kmsKey).toBe(key);
        expect(errorOf({ ...v, registry: "ecr-private", kmsKey: "alias/mine" })).toContain(
            "expected the ARN of a KMS key",
        );
    });
});
