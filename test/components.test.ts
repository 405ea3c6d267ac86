import * as os from "os";
import * as path from "path";
import * as pulumi from "@pulumi/pulumi";
import * as components from "../components";
import { recording } from "../components/publicationRecord";
import { GUARD, IMAGE, RECORD, Recorder, REPO, STACK_REF, valueOf } from "./support/pulumiMocks";

type Pulumi = typeof pulumi;
type Components = typeof components;

/** Fresh mocks for one test; the SDK and the components are loaded once for the file. */
async function fresh(): Promise<{ pulumi: Pulumi; c: Components; recorder: Recorder }> {
    const recorder = await Recorder.start(pulumi);
    return { pulumi, c: components, recorder };
}

/** Runs `build` and returns what it threw, or fails the test when it did not throw. */
function thrownBy(build: () => unknown): Error {
    try {
        build();
    } catch (e) {
        return e as Error;
    }
    throw new Error("expected an error");
}

/** A push principal listed twice: both AWS targets refuse it. */
const REPEATED_PRINCIPALS = ["arn:aws:iam::123456789012:root", "arn:aws:iam::123456789012:root"];

/**
 * Builds a component with bad arguments and checks it throws the InputPropertyError for
 * `propertyPath` before registering any custom resource.
 */
async function expectRefusedBeforeCreating(
    build: (c: Components) => unknown,
    propertyPath: string,
    reason: RegExp,
): Promise<void> {
    const { pulumi, c, recorder } = await fresh();
    const err = thrownBy(() => build(c));
    expect(pulumi.InputPropertyError.isInstance(err)).toBe(true);
    expect((err as any).propertyPath).toBe(propertyPath);
    expect((err as any).reason).toMatch(reason);
    await recorder.settle();
    expect(recorder.resources.filter((r) => r.custom)).toHaveLength(0);
}

describe("ModelRepository", () => {
    it("derives child names from its own name, so two instances never collide", async () => {
        const { c, recorder } = await fresh();
        new c.ModelRepository("alpha", { repositoryName: "team/alpha" });
        new c.ModelRepository("beta", { repositoryName: "team/beta" });
        await recorder.settle();
        expect(
            recorder
                .all(REPO)
                .map((r) => r.name)
                .sort(),
        ).toEqual(["alpha-repo", "beta-repo"]);
        expect(recorder.one(REPO, "alpha-repo").parent).toMatch(/ModelRepository::alpha$/);
    });

    it("defaults forceDestroy to false and creates no policy without principals", async () => {
        const { c, recorder } = await fresh();
        new c.ModelRepository("m", { repositoryName: "my-model" });
        await recorder.settle();
        expect(recorder.one(REPO).inputs.forceDestroy).toBe(false);
        expect(recorder.all("aws:ecrpublic/repositoryPolicy:RepositoryPolicy")).toHaveLength(0);
    });

    it("uses a provider passed in, still pinned to us-east-1", async () => {
        const { c, recorder } = await fresh();
        const aws = await import("@pulumi/aws");
        const provider = new aws.Provider("eu", { region: "eu-west-1" });
        new c.ModelRepository("m", { repositoryName: "my-model" }, { provider });
        await recorder.settle();
        const repo = recorder.one(REPO);
        expect(repo.inputs.region).toBe("us-east-1");
        expect(repo.provider).toMatch(/::pulumi:providers:aws::eu::eu-id$/);
        expect(recorder.one("pulumi:providers:aws", "eu").inputs.region).toBe("eu-west-1");
    });

    it("exposes outputs and an ECR Public registry target", async () => {
        const { c, recorder } = await fresh();
        const repo = new c.ModelRepository("m", {
            repositoryName: "my-model",
            tags: { team: "ml" },
        });
        expect(await valueOf(repo.repositoryUri)).toMatch(
            /^public\.ecr\.aws\/[a-z0-9]+\/my-model$/,
        );
        expect(await valueOf(repo.arn)).toBe(
            "arn:aws:ecr-public::123456789012:repository/my-model",
        );
        expect(await valueOf(repo.registryId)).toBe("123456789012");
        expect(repo.registry.server).toBe("public.ecr.aws");
        await recorder.settle();
        expect(recorder.one(REPO).inputs.tags).toEqual({ team: "ml" });
    });

    it.each([
        [{ repositoryName: "Bad" }, "repositoryName", /upper-case.*\(did you mean "bad"\?\)$/],
        [
            { repositoryName: "bob:S3cretPass@h.example/iris" },
            "repositoryName",
            /^(?!.*(s3cret|did you mean)).*expected 2-205 characters/is,
        ],
        [
            { repositoryName: "ok", catalog: { description: "x".repeat(1025) } },
            "catalog.description",
            /at most 1024/,
        ],
        [
            { repositoryName: "ok", catalog: { aboutText: "x".repeat(25601) } },
            "catalog.aboutText",
            /at most 25600/,
        ],
        [
            { repositoryName: "ok", catalog: { usageText: "x".repeat(25601) } },
            "catalog.usageText",
            /at most 25600/,
        ],
        [
            {
                repositoryName: "ok",
                catalog: { aboutText: "Weights: https://bob:S3cretPass@m.example/iris" },
            },
            "catalog.aboutText",
            /^it holds credentials \(a password or a token; the first at character 18\) that the ECR/,
        ],
        [
            { repositoryName: "ok", catalog: { architectures: Array(51).fill("x") } },
            "catalog.architectures",
            /at most 50/,
        ],
        [
            { repositoryName: "ok", catalog: { operatingSystems: ["a".repeat(51)] } },
            "catalog.operatingSystems",
            /1-50 characters/,
        ],
        [
            { repositoryName: "ok", pushPrincipals: ["*"] },
            "pushPrincipals[0]",
            /not an IAM principal ARN/,
        ],
        [
            { repositoryName: "ok", pushPrincipals: ["arn:aws-cn:iam::123456789012:root"] },
            "pushPrincipals[0]",
            /aws-cn/,
        ],
        [
            { repositoryName: "ok", pushPrincipals: REPEATED_PRINCIPALS },
            "pushPrincipals",
            /item 1 repeats item 0/,
        ],
    ])("refuses %j before creating anything", (args, propertyPath, reason) =>
        expectRefusedBeforeCreating(
            (c) => new c.ModelRepository("m", args as any),
            propertyPath,
            reason,
        ),
    );
});

describe("PrivateModelRepository", () => {
    it.each([
        [{ repositoryName: "Bad" }, "repositoryName", /upper-case.*\(did you mean "bad"\?\)$/],
        [{ repositoryName: "ok", kmsKey: "alias/mine" }, "kmsKey", /ARN of a KMS key/],
        [{ repositoryName: "ok", untaggedExpiryDays: 0 }, "untaggedExpiryDays", /at least 1/],
        [
            { repositoryName: "ok", pushPrincipals: REPEATED_PRINCIPALS },
            "pushPrincipals",
            /item 1 repeats item 0/,
        ],
    ])("refuses %j before creating anything", (args, propertyPath, reason) =>
        expectRefusedBeforeCreating(
            (c) => new c.PrivateModelRepository("m", args as any),
            propertyPath,
            reason,
        ),
    );

    it("accepts principals of any partition: private ECR exists in each", async () => {
        const { c, recorder } = await fresh();
        new c.PrivateModelRepository("m", {
            repositoryName: "ok",
            pushPrincipals: ["arn:aws-cn:iam::123456789012:role/ci"],
        });
        await recorder.settle();
        expect(recorder.all("aws:ecr/repositoryPolicy:RepositoryPolicy")).toHaveLength(1);
    });
});

describe("LocalModelRegistry", () => {
    it.each([
        [{ repositoryName: "ok", port: 70000 }, "port", /1 to 65535/],
        [{ repositoryName: "ok", registryUrl: "http://h:5000/v2" }, "registryUrl", /nothing else/],
        [
            { repositoryName: "ok", registryUrl: "http://bob:S3cretPass@h.example:99999" },
            "registryUrl",
            /^it holds a user or password \(not shown\): give them as credentials/,
        ],
        [
            { repositoryName: "ok", registryUrl: "http://h.example:99999" },
            "registryUrl",
            /nothing else/,
        ],
        [
            { repositoryName: "ok", registryUrl: "http://r.example:5000/team@2024" },
            "registryUrl",
            /^expected http\(s\)/,
        ],
        [
            { repositoryName: "ok", registryUrl: "http://bob:p/S3cret99@127.0.0.1:5000" },
            "registryUrl",
            /^it holds a user or password \(not shown\)/,
        ],
        [
            { repositoryName: "ok", registryUrl: "http://127.0.0.1:5000/v2/?code=1" },
            "registryUrl",
            /^expected http\(s\)/,
        ],
        [{ repositoryName: "ok", image: "registry 2" }, "image", /image reference/],
    ])("refuses %j before creating anything", (args, propertyPath, reason) =>
        expectRefusedBeforeCreating(
            (c) => new c.LocalModelRegistry("m", args as any),
            propertyPath,
            reason,
        ),
    );
});

describe("ModelImage", () => {
    it.each([
        ["sourceUrl", "https://bob:S3cretPass@github.com/acme/iris"],
        ["revision", "ghp_S3cretabcdefghijklmnopqrstuvwxyz1234"],
        ["baseImage", "bob:S3cretPass@registry.example.com/python:3.12"],
        ["context", "https://bob:S3cretPass@h.example/model"],
        ["dockerfile", "https://h.example/Dockerfile?token=S3cretTokenValue99"],
    ])(
        "refuses credentials in %s, a label or a build input, before creating anything",
        (key, value) =>
            expectRefusedBeforeCreating(
                (c) =>
                    new c.ModelImage("m", {
                        registry: { server: "r.example", repositoryUri: "r.example/ml/iris" },
                        version: "1.0.0",
                        context: "model",
                        [key]: value,
                    }),
                key,
                /^it holds credentials \(a user name and password, or a token\), and it becomes (an image label|a build input)/,
            ),
    );

    it.each(["vault-token:1.2", "registry.example.com/team/sk-learn_iris_classifier_v2:1.0"])(
        "takes the base image %j, a name and no credential",
        async (baseImage) => {
            const { c, recorder } = await fresh();
            new c.ModelImage("m", {
                registry: { server: "r.example", repositoryUri: "r.example/ml/iris" },
                version: "1.0.0",
                context: "model",
                baseImage,
            });
            await recorder.settle();
            expect(recorder.one(IMAGE).inputs.build.args.BASE_IMAGE).toBe(baseImage);
        },
    );

    it("tells the guard what its own stack published before, when not given `published`", async () => {
        const repositoryUri = "registry.example.com:5000/ml/iris";
        const earlier = { fingerprint: "f1", digest: `sha256:${"1".repeat(64)}` };
        const elsewhere = { fingerprint: "f0", digest: `sha256:${"0".repeat(64)}` };
        const recorder = await Recorder.start(pulumi, {
            stackOutputs: {
                dev: {
                    repository_uri: repositoryUri,
                    published_versions: { "1.0.0": earlier },
                    published_by_repository: { "other.example/ml/iris": { "0.9.0": elsewhere } },
                },
            },
        });
        new components.ModelImage("m", {
            registry: { server: "registry.example.com:5000", repositoryUri },
            version: "1.1.0",
            context: "model",
        });
        await recorder.settle();
        expect(recorder.one(STACK_REF, "m-published-before").inputs.name).toBe(
            "organization/model-registry/dev",
        );
        expect(recorder.one(GUARD).inputs.published).toEqual({
            repositoryUri,
            versions: { "1.0.0": earlier },
            byRepository: { "other.example/ml/iris": { "0.9.0": elsewhere } },
        });
    });

    it("pushes to any registry target, anonymously when it has no credentials", async () => {
        const { c, recorder } = await fresh();
        const image = new c.ModelImage("m", {
            registry: {
                server: "registry.example.com:5000",
                repositoryUri: "registry.example.com:5000/ml/iris",
            },
            version: "3.1.4",
            context: "model",
        });
        expect(await valueOf(image.imageUri)).toBe("registry.example.com:5000/ml/iris:3.1.4");
        expect(await valueOf(image.imageRef)).toMatch(
            /^registry\.example\.com:5000\/ml\/iris@sha256:[0-9a-f]{64}$/,
        );
        await recorder.settle();
        const registered = recorder.one(IMAGE, "m-image-3.1.4");
        expect(registered.inputs.registry).toEqual({
            server: "registry.example.com:5000",
            username: "",
            password: "",
        });
        expect(registered.parent).toMatch(/ModelImage::m$/);
        expect(registered.retainOnDelete).toBe(true);
        expect(recorder.invokes).toHaveLength(0);
    });

    it("builds from the arguments it takes: a field it does not take leaves the fingerprint", async () => {
        const { c, recorder } = await fresh();
        const args = {
            registry: { server: "r.example", repositoryUri: "r.example/ml/iris" },
            version: "1.0.0",
            context: "model",
        };
        new c.ModelImage("plain", args);
        // Not an object literal, so TypeScript lets fields the build reads (layersDir) through.
        const carried = { ...args, layersDir: path.join(os.tmpdir(), "other-layers") };
        new c.ModelImage("carried", carried);
        await recorder.settle();
        const guards = recorder.all(GUARD);
        expect(guards.map((g) => g.inputs.fingerprint)).toEqual([
            guards[0].inputs.fingerprint,
            guards[0].inputs.fingerprint,
        ]);
        expect(guards[0].inputs.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
    });

    it("tells the guard and the record the stack, for the `--stack` of their fixes", async () => {
        const { c, recorder } = await fresh();
        new c.ModelImage("m", {
            registry: { server: "r.example", repositoryUri: "r.example/ml/iris" },
            version: "1.0.0",
            context: "model",
        });
        await recorder.settle();
        expect(recorder.one(GUARD).inputs.stack).toBe("dev");
        expect(recorder.one(RECORD).inputs.stack).toBe("dev");
    });

    it("asks https://<server> when a target's apiUrl Output resolves to nothing", async () => {
        const { pulumi, c, recorder } = await fresh();
        new c.ModelImage("m", {
            registry: {
                server: "registry.example.com",
                repositoryUri: "registry.example.com/ml/iris",
                apiUrl: pulumi.output(undefined as unknown as string),
            },
            version: "1.0.0",
            context: "model",
        });
        await recorder.settle();
        const guard = recorder.one("pulumi-nodejs:dynamic/model-registry:TagGuard");
        expect(guard.inputs.apiUrl).toBe("https://registry.example.com");
        expect(guard.inputs.repositoryPath).toBe("ml/iris");
    });

    it.each([
        [{ version: "latest" }, "version", /moving tag/],
        [{ version: "v1.2" }, "version", /leading "v".*\(did you mean "1\.2\.0"\?\)$/],
        [{ version: "1.0.0", platform: "linux/sparc" }, "platform", /not a known build platform/],
    ])("refuses %j", async (args, propertyPath, reason) => {
        const { pulumi, c, recorder } = await fresh();
        const err = thrownBy(
            () =>
                new c.ModelImage("m", {
                    registry: { server: "r", repositoryUri: "r/x" },
                    context: "model",
                    ...args,
                } as any),
        );
        expect(pulumi.InputPropertyError.isInstance(err)).toBe(true);
        expect((err as any).propertyPath).toBe(propertyPath);
        expect((err as any).reason).toMatch(reason);
        await recorder.settle();
        expect(recorder.all(IMAGE)).toHaveLength(0);
    });
});

describe("recording: an error's fixes name the stack", () => {
    const fix = "Fix: pulumi config set modelVersion 1.0.1";
    const failing = (e: unknown) =>
        recording<{ repositoryUri: string; stack?: string }, unknown>(async () => {
            throw e;
        });

    it("names it, keeping the original as the cause", async () => {
        const original = new Error(fix);
        const thrown = await failing(original)
            .create({ repositoryUri: "r/x", stack: "prod" })
            .catch((e: Error) => e);
        expect((thrown as Error).message).toBe(
            "Fix: pulumi config set --stack prod modelVersion 1.0.1",
        );
        expect((thrown as Error).cause).toBe(original);
    });

    it("rethrows what it would not change, even an error whose message cannot be set", async () => {
        const frozen = Object.freeze(new Error(fix));
        await expect(failing(frozen).create({ repositoryUri: "r/x" })).rejects.toBe(frozen);
        const timeout = new DOMException("The operation timed out.", "TimeoutError");
        await expect(
            failing(timeout).update("id", {}, { repositoryUri: "r/x", stack: "prod" }),
        ).rejects.toBe(timeout);
        await expect(
            failing("a string").create({ repositoryUri: "r/x", stack: "prod" }),
        ).rejects.toBe("a string");
    });
});
