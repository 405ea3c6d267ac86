import * as os from "os";
import {
    ECR_TOKEN_INVOKE,
    FAKE_PASSWORD,
    GUARD,
    IMAGE,
    POLICY,
    PROMOTION,
    RECORD,
    Recorder,
    REGISTRY_ALIAS,
    REPO,
    SOURCE_CHECK,
    STACK_REF,
    valueOf,
} from "./support/pulumiMocks";
import { Run, newStack, runProgram, stackFile } from "./support/program";
import { programConfig } from "./support/pulumiCli";
import { PUSH_ACTIONS } from "../components/modelRepository";
import { promotionSourceCheckProvider } from "../components/promotedImage";

describe("index.ts", () => {
    it("runs the stack function on the stack's config and exports each of its outputs", async () => {
        const run = await runProgram(stackFile("dev"));
        // index.ts runs the program when it is loaded: under the same SDK, with fresh mocks.
        const cli = programConfig(stackFile("dev"), "dev");
        const recorder = await Recorder.start(run.pulumi, {
            config: cli.config,
            secretKeys: cli.secretKeys,
        });
        const exported: Record<string, unknown> = await import("../index");
        await recorder.settle();
        expect(Object.keys(exported).sort()).toEqual(Object.keys(run.outputs).sort());
        expect(exported.registry).toBe("ecr-public");
    });
});

describe("the program, dev stack file", () => {
    let run: Run;
    beforeAll(async () => {
        run = await runProgram(stackFile("dev"), { stack: "dev" });
    });

    it("runs without error", () => {
        expect(run.error).toBeUndefined();
    });

    it("registers the two components and their children, and nothing else", () => {
        expect(run.recorder.types().sort()).toEqual(
            [
                "model-registry:index:ModelImage",
                "model-registry:index:ModelRepository",
                REPO,
                IMAGE,
                GUARD,
                RECORD,
                STACK_REF,
            ].sort(),
        );
        expect(run.recorder.all(POLICY)).toHaveLength(0);
        // The one stack reference is to this stack itself: its last published_versions.
        expect(run.recorder.one(STACK_REF).inputs.name).toBe("organization/model-registry/dev");
    });

    it("creates the repository in us-east-1 although the stack's aws:region is us-west-2", () => {
        expect(stackFile("dev").values.get("aws:region")).toBe("us-west-2");
        const repo = run.recorder.one(REPO, "model-repo");
        expect(repo.inputs.region).toBe("us-east-1");
        expect(repo.inputs.repositoryName).toBe("model-registry-dev");
        expect(repo.inputs.forceDestroy).toBe(false);
        expect(repo.parent).toMatch(/ModelRepository::model$/);
    });

    it("writes catalog data, with a default usage text that shows docker pull", () => {
        const { catalogData } = run.recorder.one(REPO).inputs;
        expect(catalogData.description).toBe("Example model (development builds)");
        expect(catalogData.architectures).toEqual(["x86-64"]);
        expect(catalogData.operatingSystems).toEqual(["Linux"]);
        expect(catalogData.usageText).toContain(
            "docker pull public.ecr.aws/<registry-alias>/model-registry-dev:<version>",
        );
    });

    it("asks ECR Public for a push token in us-east-1", () => {
        const invokes = run.recorder.invokes.filter((i) => i.token === ECR_TOKEN_INVOKE);
        expect(invokes).toHaveLength(1);
        expect(invokes[0].inputs.region).toBe("us-east-1");
    });

    it("builds and pushes <repositoryUri>:<modelVersion> with the token, against public.ecr.aws", () => {
        const image = run.recorder.one(IMAGE, "model-image-1.0.0");
        expect(image.inputs.imageName).toBe(
            `public.ecr.aws/${REGISTRY_ALIAS}/model-registry-dev:1.0.0`,
        );
        expect(image.inputs.skipPush).toBe(false);
        expect(image.inputs.registry.server).toBe("public.ecr.aws");
        expect(image.inputs.registry.username).toBe("AWS");
        expect(image.inputs.registry.password).toBe(FAKE_PASSWORD);
        expect(image.parent).toMatch(/ModelImage::model$/);
    });

    it("passes the version, the model checksum, the publisher and the fingerprint as build args, for the labels", () => {
        const { build } = run.recorder.one(IMAGE).inputs;
        expect(build.context).toBe("model");
        // Built from the Dockerfile the program writes from model/Dockerfile's layer marker
        // (lib/publication/layers.ts): a path relative to the project, the same on every machine.
        expect(build.dockerfile).toMatch(/^\.cache\/model-layers\/[0-9a-f]{16}\/Dockerfile$/);
        expect(build.platform).toBe("linux/amd64");
        expect(build.args.MODEL_VERSION).toBe("1.0.0");
        expect(build.args.MODEL_SHA256).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(build.args.MODEL_PUBLISHER).toBe("model-registry/dev");
        expect(build.args.MODEL_FINGERPRINT).toBe(run.recorder.one(GUARD).inputs.fingerprint);
        expect(build.args).not.toHaveProperty("BASE_IMAGE");
    });

    it("guards the tag before the image: same tag, the image's content fingerprint, the registry API", () => {
        const guard = run.recorder.one(GUARD, "model-guard");
        const image = run.recorder.one(IMAGE);
        expect(guard.parent).toMatch(/ModelImage::model$/);
        expect(guard.inputs).toMatchObject({
            repositoryUri: `public.ecr.aws/${REGISTRY_ALIAS}/model-registry-dev`,
            tag: "1.0.0",
            apiUrl: "https://public.ecr.aws",
            repositoryPath: `${REGISTRY_ALIAS}/model-registry-dev`,
            platform: "linux/amd64",
            publisher: "model-registry/dev",
            credentials: { username: "AWS", password: FAKE_PASSWORD },
        });
        expect(guard.inputs.fingerprint).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(guard.inputs.fingerprint).not.toBe(image.inputs.build.args.MODEL_SHA256);
        expect(guard.secretPaths).toEqual(["credentials"]);
        // The serialized provider travels with the resource, as the engine needs it.
        expect(guard.inputs.__provider).toContain("exports.handler");
        expect(image.dependencies.some((urn) => urn.endsWith("TagGuard::model-guard"))).toBe(true);
    });

    it("takes skipPush from the guard once, when the version's image is created", () => {
        const image = run.recorder.one(IMAGE);
        // The mocked guard found nothing under the tag: the image is pushed.
        expect(image.inputs.skipPush).toBe(false);
        expect(image.ignoreChanges).toEqual(["skipPush"]);
    });

    it("records the publication after the image, from the registry, with the pushed digest", () => {
        const record = run.recorder.one(RECORD, "model-record");
        const image = run.recorder.one(IMAGE);
        expect(record.parent).toMatch(/ModelImage::model$/);
        expect(record.dependencies.some((urn) => urn.endsWith("Image::model-image-1.0.0"))).toBe(
            true,
        );
        expect(record.inputs).toMatchObject({
            repositoryUri: `public.ecr.aws/${REGISTRY_ALIAS}/model-registry-dev`,
            tag: "1.0.0",
            fingerprint: run.recorder.one(GUARD).inputs.fingerprint,
            apiUrl: "https://public.ecr.aws",
        });
        expect(record.inputs.repoDigest).toMatch(/@sha256:[0-9a-f]{64}$/);
        expect(record.secretPaths).toEqual(["credentials"]);
        expect(image.inputs.imageName).toMatch(/:1\.0\.0$/);
    });

    it("keeps the pushed tag when the image resource is replaced or deleted", () => {
        const image = run.recorder.one(IMAGE);
        expect(image.retainOnDelete).toBe(true);
    });

    it("does not protect a dev stack", () => {
        expect(run.recorder.one(REPO).protect).toBe(false);
    });

    it("exports the repository URI, the tag URI, the digest-pinned reference and the version", async () => {
        const { outputs } = run;
        const uri = `public.ecr.aws/${REGISTRY_ALIAS}/model-registry-dev`;
        expect(await valueOf(outputs.repository_uri)).toBe(uri);
        expect(await valueOf(outputs.image_uri)).toBe(`${uri}:1.0.0`);
        expect(await valueOf(outputs.image_ref)).toMatch(
            new RegExp(`^${uri.replace(/[./]/g, "\\$&")}@sha256:[0-9a-f]{64}$`),
        );
        expect(await valueOf(outputs.model_version)).toBe("1.0.0");
        // The record's history: the version with the digest that image_ref pins.
        const digest = String(await valueOf(outputs.image_ref)).split("@")[1];
        expect(await valueOf(outputs.published_versions)).toEqual({
            "1.0.0": { fingerprint: run.recorder.one(GUARD).inputs.fingerprint, digest },
        });
        expect(await valueOf(outputs.model_sha256)).toBe(
            run.recorder.one(IMAGE).inputs.build.args.MODEL_SHA256,
        );
    });

    it("sends the registry password, and nothing else, as a secret", () => {
        expect(run.recorder.one(IMAGE).secretPaths).toEqual(["registry.password"]);
        expect(run.recorder.one(REPO).secretPaths).toEqual([]);
    });
});

describe("the program, prod stack file", () => {
    let run: Run;
    beforeAll(async () => {
        run = await runProgram(stackFile("prod"), { stack: "prod" });
    });

    it("promotes from staging: no build, no guard, no docker.Image", () => {
        expect(run.error).toBeUndefined();
        expect(run.recorder.all(IMAGE)).toHaveLength(0);
        expect(run.recorder.all(GUARD)).toHaveLength(0);
        expect(run.recorder.one(STACK_REF, "promote-from-staging").inputs.name).toBe(
            "organization/model-registry/staging",
        );
        const promotion = run.recorder.one(PROMOTION, "model-promotion");
        expect(promotion.inputs).toMatchObject({
            repositoryUri: `public.ecr.aws/${REGISTRY_ALIAS}/model-registry-prod`,
            apiUrl: "https://public.ecr.aws",
            repositoryPath: `${REGISTRY_ALIAS}/model-registry-prod`,
            tag: "1.0.0",
            sourceName: "stack staging",
            sourceRepositoryUri: `public.ecr.aws/${REGISTRY_ALIAS}/model-registry-staging`,
            sourceApiUrl: "https://public.ecr.aws",
            sourceRepositoryPath: `${REGISTRY_ALIAS}/model-registry-staging`,
            credentials: { username: "AWS", password: FAKE_PASSWORD },
            stack: "prod",
        });
        // Source credentials are a secret slot (a local source's login would go there); an
        // ECR Public source has none.
        expect([...promotion.secretPaths].sort()).toEqual(["credentials", "sourceCredentials"]);
        expect(promotion.inputs.sourceCredentials ?? undefined).toBeUndefined();
        expect(promotion.parent).toMatch(/PromotedImage::model$/);
    });

    it("checks the source has the version before anything is created: the repository depends on it", () => {
        const check = run.recorder.one(SOURCE_CHECK, "model-source");
        expect(check.inputs).toMatchObject({
            tag: "1.0.0",
            sourceName: "stack staging",
            sourceRepositoryUri: `public.ecr.aws/${REGISTRY_ALIAS}/model-registry-staging`,
            sourceApiUrl: "https://public.ecr.aws",
        });
        // The repository component registers after the check, and its children after it.
        const component = run.recorder.one("model-registry:index:ModelRepository");
        expect(
            component.dependencies.some((urn) =>
                urn.endsWith("PromotionSourceCheck::model-source"),
            ),
        ).toBe(true);
        expect(run.recorder.one(REPO).parent).toMatch(/ModelRepository::model$/);
    });

    it("protects the repository and the promotion, and never force-destroys", () => {
        const repo = run.recorder.one(REPO);
        expect(repo.protect).toBe(true);
        expect(repo.inputs.forceDestroy).toBe(false);
        expect(run.recorder.one(PROMOTION).protect).toBe(true);
        expect(repo.inputs.repositoryName).toBe("model-registry-prod");
    });

    it("exports the promoted digest, with the same outputs as a building stack", async () => {
        const uri = `public.ecr.aws/${REGISTRY_ALIAS}/model-registry-prod`;
        expect(await valueOf(run.outputs.image_uri)).toBe(`${uri}:1.0.0`);
        expect(await valueOf(run.outputs.image_ref)).toMatch(
            new RegExp(`^${uri.replace(/[./]/g, "\\$&")}@sha256:[0-9a-f]{64}$`),
        );
        expect(await valueOf(run.outputs.model_version)).toBe("1.0.0");
        expect(await valueOf(run.outputs.model_sha256)).toMatch(/^sha256:/);
        expect(Object.keys(await valueOf(run.outputs.published_versions))).toEqual(["1.0.0"]);
    });
});

describe("a stack that switches from building to promoting", () => {
    it("reads its own last outputs: what it built goes to the promotion and stays in published_by_repository", async () => {
        const uri = `public.ecr.aws/${REGISTRY_ALIAS}/model-registry-prod`;
        const built = {
            "0.9.0": {
                fingerprint: `sha256:${"1".repeat(64)}`,
                digest: `sha256:${"2".repeat(64)}`,
            },
        };
        const elsewhere = { "0.1.0": { fingerprint: "", digest: `sha256:${"3".repeat(64)}` } };
        const run = await runProgram(stackFile("prod"), {
            stack: "prod",
            stackOutputs: {
                prod: {
                    repository_uri: uri,
                    published_versions: built,
                    published_by_repository: { [uri]: built, "other.example/old": elsewhere },
                },
            },
        });
        expect(run.error).toBeUndefined();
        expect(run.recorder.one(STACK_REF, "model-published-before").inputs.name).toBe(
            "organization/model-registry/prod",
        );
        expect(run.recorder.one(PROMOTION).inputs.published).toEqual({
            repositoryUri: uri,
            versions: built,
            byRepository: { [uri]: built, "other.example/old": elsewhere },
        });
        const all = (await valueOf(run.outputs.published_by_repository)) as Record<string, object>;
        expect(all["other.example/old"]).toEqual(elsewhere);
        expect(all[uri]).toMatchObject(built);
    });
});

describe("the program, staging stack file", () => {
    it("promotes from dev, unprotected and without forceDestroy", async () => {
        const run = await runProgram(stackFile("staging"), { stack: "staging" });
        expect(run.error).toBeUndefined();
        expect(run.recorder.one(REPO).inputs.forceDestroy).toBe(false);
        expect(run.recorder.one(REPO).protect).toBe(false);
        expect(run.recorder.all(IMAGE)).toHaveLength(0);
        expect(run.recorder.one(STACK_REF, "promote-from-dev").inputs.name).toBe(
            "organization/model-registry/dev",
        );
        expect(run.recorder.one(PROMOTION).inputs.sourceRepositoryUri).toBe(
            `public.ecr.aws/${REGISTRY_ALIAS}/model-registry-dev`,
        );
    });

    it("says how to fix a promotion from a stack that has not been deployed", async () => {
        const run = await runProgram(stackFile("staging"), {
            stack: "staging",
            stackOutputs: { dev: {} },
        });
        expect(run.error).toBeUndefined();
        // The source check gets no repository and refuses it, with the fix, before anything
        // that depends on it is created.
        const check = run.recorder.one(SOURCE_CHECK);
        expect(check.inputs).toMatchObject({ sourceRepositoryUri: "", sourceName: "stack dev" });
        const { failures } = await promotionSourceCheckProvider.check!({}, check.inputs);
        expect(failures).toEqual([
            {
                property: "tag",
                reason: "stack dev has no repository_uri output: it has not been deployed yet, so there is nothing to promote, and nothing was created or copied. Fix: run `pulumi up` on that stack first (it publishes the version), then `pulumi up` here again.",
            },
        ]);
        expect(
            run.recorder.one("model-registry:index:ModelRepository").dependencies,
        ).toContainEqual(expect.stringMatching(/PromotionSourceCheck::model-source$/));
    });

    it("promotes from a repository reference without a stack reference", async () => {
        const run = await runProgram(
            newStack({ modelVersion: "1.2.0", promoteFrom: "public.ecr.aws/other-team/model" }),
            { stack: "staging" },
        );
        expect(run.error).toBeUndefined();
        // Only the one to itself (see "reads its own last outputs").
        expect(run.recorder.all(STACK_REF).map((r) => r.name)).toEqual(["model-published-before"]);
        expect(run.recorder.one(PROMOTION).inputs).toMatchObject({
            sourceRepositoryUri: "public.ecr.aws/other-team/model",
            sourceRepositoryPath: "other-team/model",
            sourceName: "public.ecr.aws/other-team/model",
            tag: "1.2.0",
        });
    });
});

describe("the program, push principals and a version bump", () => {
    it("grants exactly the push actions to the configured principals", async () => {
        const principals = ["arn:aws:iam::123456789012:role/ci", "arn:aws:iam::210987654321:root"];
        const run = await runProgram(
            newStack({ modelVersion: "1.1.0", pushPrincipals: principals }),
        );
        expect(run.error).toBeUndefined();
        const policy = run.recorder.one(POLICY, "model-push-policy");
        expect(policy.inputs.region).toBe("us-east-1");
        expect(policy.inputs.repositoryName).toBe("model-registry-dev");
        const doc = JSON.parse(policy.inputs.policy);
        expect(doc.Statement).toHaveLength(1);
        expect(doc.Statement[0].Effect).toBe("Allow");
        expect(doc.Statement[0].Principal.AWS).toEqual(principals);
        expect(doc.Statement[0].Action).toEqual([...PUSH_ACTIONS]);
        expect(doc.Statement[0].Action.some((a: string) => /Delete|\*/.test(a))).toBe(false);
    });

    it("tags a bumped version with the new version, in that version's image resource", async () => {
        const a = await runProgram(newStack({ modelVersion: "1.0.0" }));
        const b = await runProgram(newStack({ modelVersion: "1.1.0" }));
        const imageA = a.recorder.one(IMAGE, "model-image-1.0.0");
        const imageB = b.recorder.one(IMAGE, "model-image-1.1.0");
        // The guard and the record keep their names (and state) across versions.
        expect(b.recorder.one(GUARD, "model-guard").inputs.tag).toBe("1.1.0");
        expect(b.recorder.one(RECORD, "model-record").inputs.tag).toBe("1.1.0");
        expect(imageA.inputs.imageName).toMatch(/:1\.0\.0$/);
        expect(imageB.inputs.imageName).toMatch(/:1\.1\.0$/);
        expect(imageB.inputs.build.args.MODEL_SHA256).toBe(imageA.inputs.build.args.MODEL_SHA256);
        expect(imageB.retainOnDelete).toBe(true);
    });

    it("passes baseImage, platform and label sources through", async () => {
        const run = await runProgram(
            newStack({
                modelVersion: "2.0.0-rc.1",
                baseImage: "registry.example.com/python:3.12",
                platform: "linux/arm64",
                sourceUrl: "https://example.com/ml/iris",
                modelRevision: "0123abc",
            }),
        );
        const { build } = run.recorder.one(IMAGE).inputs;
        expect(build.platform).toBe("linux/arm64");
        expect(build.args).toMatchObject({
            BASE_IMAGE: "registry.example.com/python:3.12",
            MODEL_VERSION: "2.0.0-rc.1",
            SOURCE_URL: "https://example.com/ml/iris",
            REVISION: "0123abc",
        });
        expect(run.recorder.one(REPO).inputs.catalogData.architectures).toEqual(["ARM 64"]);
    });
});

describe("the program, run twice with unchanged files", () => {
    it("registers byte-identical image and guard inputs, free of machine-specific paths", async () => {
        const first = await runProgram(newStack({ modelVersion: "1.0.0" }));
        const second = await runProgram(newStack({ modelVersion: "1.0.0" }));
        const imageA = JSON.stringify(first.recorder.one(IMAGE).inputs);
        const imageB = JSON.stringify(second.recorder.one(IMAGE).inputs);
        expect(imageB).toBe(imageA);
        const guardA = first.recorder.one(GUARD).inputs;
        const guardB = second.recorder.one(GUARD).inputs;
        expect(JSON.stringify(guardB)).toBe(JSON.stringify(guardA));
        for (const text of [imageA, JSON.stringify(guardA)]) {
            expect(text).not.toContain(process.cwd());
            expect(text).not.toContain(os.tmpdir());
            expect(text).not.toMatch(/\d{4}-\d{2}-\d{2}T\d{2}:\d{2}/); // no timestamps
        }
    });
});

describe("the program, bad input", () => {
    it("stops at a config refusal before any resource or invoke, with the config's one RunError", async () => {
        const run = await runProgram(newStack({ modelVersion: "latest" }));
        expect(run.pulumi.RunError.isInstance(run.error)).toBe(true);
        expect((run.error as Error).message).toMatch(/^Invalid configuration for stack "dev"/);
        expect(run.recorder.resources).toHaveLength(0);
        expect(run.recorder.invokes).toHaveLength(0);
    });
});

describe("the README's command sequences, as the CLI stores them", () => {
    const dev12 = { "1.2.0": { digest: `sha256:${"7".repeat(64)}` } };
    const source = (stack: string) => ({
        [stack]: {
            repository_uri: `public.ecr.aws/${REGISTRY_ALIAS}/model-registry-${stack}`,
            published_versions: dev12,
        },
    });
    it.each([
        ["local: the quick start", "local", stackFile("local"), {}],
        ["local: next version", "local", stackFile("local", { modelVersion: "1.1.0" }), {}],
        [
            "local: roll back",
            "local",
            stackFile("local", { modelVersion: "1.1.0" }).set("modelVersion", "1.0.0"),
            {},
        ],
        ["local: port taken", "local", stackFile("local", { localRegistryPort: "5055" }), {}],
        [
            "local: a registry you already run, its password set with --secret",
            "local",
            stackFile("local", {
                registryUrl: "http://127.0.0.1:5000",
                registryUsername: "ci",
                registryPassword: { secret: "pw-from-the-prompt" },
            }),
            {},
        ],
        ["dev: next version", "dev", stackFile("dev", { modelVersion: "1.1.0" }), {}],
        [
            "dev: switch to ecr-private (the gallery text removed, as the refusal says)",
            "dev",
            stackFile("dev", { registry: "ecr-private", description: null }),
            {},
        ],
        [
            "staging: promote 1.2.0",
            "staging",
            stackFile("staging", { modelVersion: "1.2.0" }),
            source("dev"),
        ],
        [
            "prod: promote 1.2.0",
            "prod",
            stackFile("prod", { modelVersion: "1.2.0" }),
            source("staging"),
        ],
    ] as const)("%s runs to completion", async (_name, stack, config, stackOutputs) => {
        const run = await runProgram(config, { stack, stackOutputs });
        expect(run.error).toBeUndefined();
        expect(await valueOf(run.outputs.model_version)).toBe(
            config.values.get("model-registry:modelVersion"),
        );
        expect(await valueOf(run.outputs.repository_uri)).toContain(`model-registry-${stack}`);
    });
});
