import {
    ACCOUNT_ID,
    CONTAINER,
    ECR_PRIVATE_TOKEN_INVOKE,
    ECR_TOKEN_INVOKE,
    FAKE_PASSWORD,
    FAKE_REGISTRY_PASSWORD,
    GUARD,
    IMAGE,
    LIFECYCLE,
    PRIVATE_POLICY,
    PRIVATE_REPO,
    PRIVATE_SERVER,
    PROMOTION,
    RECORD,
    REMOTE_IMAGE,
    SOURCE_CHECK,
    valueOf,
    VOLUME,
} from "./support/pulumiMocks";
import { Run, runProgram, stackFile } from "./support/program";
import { StackConfig } from "./support/pulumiCli";
import { PRIVATE_PUSH_ACTIONS } from "../components/privateRepository";

/** A stack file switched to ecr-private, without the gallery settings it refuses. */
function privateConfig(stack: string, more: Parameters<typeof stackFile>[1] = {}): StackConfig {
    return stackFile(stack, { registry: "ecr-private", description: null, ...more });
}

const awsTypes = (run: Run) => run.recorder.types().filter((t) => t.startsWith("aws:"));
const awsInvokes = (run: Run) => run.recorder.invokes.filter((i) => i.token.startsWith("aws:"));

describe("the local stack file", () => {
    let run: Run;
    beforeAll(async () => {
        run = await runProgram(stackFile("local"), { stack: "local" });
    });

    it("runs, registering no AWS resource and calling no AWS invoke", () => {
        expect(run.error).toBeUndefined();
        expect(awsTypes(run)).toEqual([]);
        expect(awsInvokes(run)).toEqual([]);
        expect(run.recorder.invokes.map((i) => i.token)).not.toContain(ECR_TOKEN_INVOKE);
    });

    it("runs a registry:2 container bound to 127.0.0.1 only, with its delete API off", () => {
        const container = run.recorder.one(CONTAINER);
        expect(container.inputs.ports).toEqual([
            expect.objectContaining({ internal: 5000, external: 5000, ip: "127.0.0.1" }),
        ]);
        expect(container.inputs.envs).toContain("REGISTRY_STORAGE_DELETE_ENABLED=false");
        // Created only once the registry answers: the guard and the push must not race its start.
        expect(container.inputs.wait).toBe(true);
        expect(container.inputs.healthcheck.tests.join(" ")).toContain("http://127.0.0.1:5000/v2/");
        expect(container.inputs.restart).toBe("unless-stopped");
        expect(container.inputs.name).toBe("model-registry-local-registry");
        const image = run.recorder.one(REMOTE_IMAGE);
        expect(image.inputs).toMatchObject({ name: "registry:2", keepLocally: true });
        expect(container.inputs.image).toBe(`sha256:${"3".repeat(64)}`);
    });

    it("keeps the registry's data in a named volume that destroy leaves in place", () => {
        const volume = run.recorder.one(VOLUME);
        const container = run.recorder.one(CONTAINER);
        expect(volume.inputs.name).toBe("model-registry-local-registry-data");
        expect(volume.retainOnDelete).toBe(true);
        expect(container.inputs.volumes).toEqual([
            expect.objectContaining({
                volumeName: "model-registry-local-registry-data",
                containerPath: "/var/lib/registry",
            }),
        ]);
        // Replacing the container (another port, another image) keeps the volume.
        expect(volume.dependencies).not.toContain(container.name);
    });

    it("guards, builds, pushes and records against the local registry, with its generated login", () => {
        const guard = run.recorder.one(GUARD);
        expect(guard.inputs.apiUrl).toBe("http://127.0.0.1:5000");
        expect(guard.inputs.repositoryUri).toBe("127.0.0.1:5000/model-registry-local");
        const image = run.recorder.one(IMAGE);
        expect(image.inputs.imageName).toBe("127.0.0.1:5000/model-registry-local:1.0.0");
        expect(image.inputs.registry.server).toBe("127.0.0.1:5000");
        expect(image.inputs.registry).toMatchObject({
            username: "model-registry",
            password: FAKE_REGISTRY_PASSWORD,
        });
        expect(image.secretPaths).toContain("registry.password");
        expect(run.recorder.one(RECORD).inputs.apiUrl).toBe("http://127.0.0.1:5000");
        // The histories follow the volume, not the port (test/recordKey.registry.test.ts).
        const key = "docker-volume:model-registry-local-registry-data/model-registry-local";
        expect(guard.inputs.recordKey).toBe(key);
        expect(run.recorder.one(RECORD).inputs.recordKey).toBe(key);
    });

    it("exports the same outputs as an AWS stack, and the registry's API", async () => {
        expect(await valueOf(run.outputs.repository_uri)).toBe(
            "127.0.0.1:5000/model-registry-local",
        );
        expect(await valueOf(run.outputs.registry_api_url)).toBe("http://127.0.0.1:5000");
        expect(run.outputs.registry).toBe("local");
        expect(await valueOf(run.outputs.image_ref)).toMatch(
            /^127\.0\.0\.1:5000\/model-registry-local@sha256:[0-9a-f]{64}$/,
        );
    });

    it("honours the image and port settings, and deletes the volume only with forceDestroy", async () => {
        const other = await runProgram(
            stackFile("local", {
                localRegistryPort: "5055",
                localRegistryImage: "registry:2.8.3",
                forceDestroy: "true",
            }),
            { stack: "local" },
        );
        expect(other.error).toBeUndefined();
        expect(other.recorder.one(CONTAINER).inputs.ports[0].external).toBe(5055);
        expect(other.recorder.one(REMOTE_IMAGE).inputs.name).toBe("registry:2.8.3");
        expect(other.recorder.one(VOLUME).retainOnDelete).toBe(false);
        expect(other.recorder.one(GUARD).inputs.apiUrl).toBe("http://127.0.0.1:5055");
    });
});

describe("a local stack on a registry the user runs", () => {
    let run: Run;
    beforeAll(async () => {
        run = await runProgram(
            stackFile("local", {
                registryUrl: "https://registry.internal:8443",
                registryUsername: "ci",
                registryPassword: { secret: "local-secret-password" },
            }),
            { stack: "local" },
        );
    });

    it("runs no container and registers no AWS resource", () => {
        expect(run.error).toBeUndefined();
        expect(run.recorder.all(CONTAINER)).toEqual([]);
        expect(run.recorder.all(VOLUME)).toEqual([]);
        expect(awsTypes(run)).toEqual([]);
        expect(awsInvokes(run)).toEqual([]);
    });

    it("pushes there with the configured credentials, the password a secret", () => {
        const image = run.recorder.one(IMAGE);
        expect(image.inputs.imageName).toBe("registry.internal:8443/model-registry-local:1.0.0");
        expect(image.inputs.registry).toMatchObject({
            server: "registry.internal:8443",
            username: "ci",
            password: "local-secret-password",
        });
        expect(image.secretPaths).toContain("registry.password");
        const guard = run.recorder.one(GUARD);
        expect(guard.inputs.apiUrl).toBe("https://registry.internal:8443");
        // A registry the user runs is known by its URI only.
        expect(guard.inputs.recordKey ?? undefined).toBeUndefined();
        expect(guard.secretPaths.some((p) => p.startsWith("credentials"))).toBe(true);
    });
});

describe("an ecr-private stack", () => {
    const config = privateConfig("dev");
    let run: Run;
    beforeAll(async () => {
        run = await runProgram(config, { stack: "dev" });
    });

    it("runs, registering no ECR Public resource", () => {
        expect(run.error).toBeUndefined();
        expect(awsTypes(run).filter((t) => t.startsWith("aws:ecrpublic"))).toEqual([]);
        expect(run.recorder.invokes.map((i) => i.token)).toEqual([ECR_PRIVATE_TOKEN_INVOKE]);
    });

    it("creates a repository with native tag immutability, scan on push and AES256", () => {
        const repo = run.recorder.one(PRIVATE_REPO);
        expect(repo.inputs).toMatchObject({
            name: "model-registry-dev",
            imageTagMutability: "IMMUTABLE",
            imageScanningConfiguration: { scanOnPush: true },
            encryptionConfigurations: [{ encryptionType: "AES256" }],
            forceDelete: false,
        });
        // The stack's region, not ECR Public's us-east-1.
        expect(repo.inputs.region).toBeUndefined();
    });

    it("expires only untagged images: no lifecycle rule can select a tagged image", () => {
        const policy = JSON.parse(run.recorder.one(LIFECYCLE).inputs.policy) as {
            rules: { selection: Record<string, unknown>; action: { type: string } }[];
        };
        expect(policy.rules.length).toBeGreaterThan(0);
        for (const rule of policy.rules) {
            expect(rule.selection.tagStatus).toBe("untagged");
            expect(rule.selection).not.toHaveProperty("tagPrefixList");
            expect(rule.selection).not.toHaveProperty("tagPatternList");
        }
        expect(run.recorder.one(LIFECYCLE).inputs.repository).toBe("model-registry-dev");
    });

    it("pushes to the account's registry with the ECR token, the guard first", () => {
        const image = run.recorder.one(IMAGE);
        expect(image.inputs.imageName).toBe(`${PRIVATE_SERVER}/model-registry-dev:1.0.0`);
        expect(image.inputs.registry).toMatchObject({
            server: PRIVATE_SERVER,
            username: "AWS",
            password: FAKE_PASSWORD,
        });
        const guard = run.recorder.one(GUARD);
        expect(guard.inputs.apiUrl).toBe(`https://${PRIVATE_SERVER}`);
        expect(image.dependencies).toContainEqual(expect.stringMatching(/TagGuard::model-guard$/));
    });

    it("grants pushers the push actions only, and encrypts with the KMS key given", async () => {
        const key = `arn:aws:kms:us-west-2:${ACCOUNT_ID}:key/1234abcd-12ab-34cd-56ef-1234567890ab`;
        const other = await runProgram(
            privateConfig("dev", {
                kmsKey: key,
                pushPrincipals: ["arn:aws:iam::210987654321:role/ci"],
            }),
            { stack: "dev" },
        );
        expect(other.error).toBeUndefined();
        expect(other.recorder.one(PRIVATE_REPO).inputs.encryptionConfigurations).toEqual([
            { encryptionType: "KMS", kmsKey: key },
        ]);
        const policy = JSON.parse(other.recorder.one(PRIVATE_POLICY).inputs.policy);
        expect(policy.Statement).toEqual([
            expect.objectContaining({
                Effect: "Allow",
                Principal: { AWS: ["arn:aws:iam::210987654321:role/ci"] },
                Action: [...PRIVATE_PUSH_ACTIONS],
            }),
        ]);
        expect(run.recorder.all(PRIVATE_POLICY)).toEqual([]);
    });

    it("promotes from another private stack of the account with the account's token", async () => {
        const source = `${PRIVATE_SERVER}/model-registry-dev`;
        const staging = await runProgram(privateConfig("staging"), {
            stack: "staging",
            stackOutputs: {
                dev: {
                    repository_uri: source,
                    registry_api_url: `https://${PRIVATE_SERVER}`,
                    published_versions: { "1.0.0": { digest: `sha256:${"7".repeat(64)}` } },
                },
            },
        });
        expect(staging.error).toBeUndefined();
        expect(staging.recorder.all(IMAGE)).toEqual([]);
        const check = staging.recorder.one(SOURCE_CHECK);
        expect(check.inputs.sourceRepositoryUri).toBe(source);
        expect(check.inputs.sourceApiUrl).toBe(`https://${PRIVATE_SERVER}`);
        expect(check.inputs.sourceCredentials).toEqual({
            username: "AWS",
            password: FAKE_PASSWORD,
        });
        const promotion = staging.recorder.one(PROMOTION);
        expect(promotion.inputs.repositoryUri).toBe(`${PRIVATE_SERVER}/model-registry-staging`);
        expect(promotion.inputs.sourceCredentials).toEqual({
            username: "AWS",
            password: FAKE_PASSWORD,
        });
        expect(promotion.secretPaths.some((p) => p.startsWith("sourceCredentials"))).toBe(true);
        // One token serves the push and the source read.
        expect(
            staging.recorder.invokes.filter((i) => i.token === ECR_PRIVATE_TOKEN_INVOKE),
        ).toHaveLength(1);
    });

    it("sends its token to the source's API only over the same origin, never over http", async () => {
        const staging = await runProgram(privateConfig("staging"), {
            stack: "staging",
            stackOutputs: {
                dev: {
                    repository_uri: `${PRIVATE_SERVER}/model-registry-dev`,
                    // A source stack whose output says http for the same host.
                    registry_api_url: `http://${PRIVATE_SERVER}`,
                    published_versions: { "1.0.0": { digest: `sha256:${"7".repeat(64)}` } },
                },
            },
        });
        expect(staging.error).toBeUndefined();
        const check = staging.recorder.one(SOURCE_CHECK).inputs;
        expect(check.sourceApiUrl).toBe(`http://${PRIVATE_SERVER}`);
        expect(check.sourceCredentials ?? undefined).toBeUndefined();
        expect(
            staging.recorder.one(PROMOTION).inputs.sourceCredentials ?? undefined,
        ).toBeUndefined();
    });

    it("reads an ECR Public source anonymously", async () => {
        const staging = await runProgram(privateConfig("staging"), { stack: "staging" });
        expect(staging.error).toBeUndefined();
        expect(
            staging.recorder.one(PROMOTION).inputs.sourceCredentials ?? undefined,
        ).toBeUndefined();
        expect(staging.recorder.one(SOURCE_CHECK).inputs.sourceApiUrl).toBe(
            "https://public.ecr.aws",
        );
    });
});

describe("promotion between local stacks", () => {
    it("reads the source stack's registry API, http for a local registry", async () => {
        const run = await runProgram(
            stackFile("local", { promoteFrom: "local", localRegistryPort: "5001" }),
            {
                stack: "local-staging",
                stackOutputs: {
                    local: {
                        repository_uri: "127.0.0.1:5000/model-registry-local",
                        registry_api_url: "http://127.0.0.1:5000",
                        published_versions: { "1.0.0": { digest: `sha256:${"7".repeat(64)}` } },
                        registry_login: { username: "model-registry", password: "source-pw" },
                    },
                },
            },
        );
        expect(run.error).toBeUndefined();
        expect(awsTypes(run)).toEqual([]);
        const promotion = run.recorder.one(PROMOTION);
        // The source registry's own login, for that registry, kept secret; this stack's login is
        // for its own registry only.
        expect(promotion.inputs.sourceCredentials).toEqual({
            username: "model-registry",
            password: "source-pw",
        });
        expect(promotion.secretPaths.some((p) => p.startsWith("sourceCredentials"))).toBe(true);
        expect(promotion.inputs.credentials).toEqual({
            username: "model-registry",
            password: FAKE_REGISTRY_PASSWORD,
        });
        expect(promotion.inputs).toMatchObject({
            sourceRepositoryUri: "127.0.0.1:5000/model-registry-local",
            sourceApiUrl: "http://127.0.0.1:5000",
            repositoryUri: "127.0.0.1:5001/model-registry-local-staging",
            apiUrl: "http://127.0.0.1:5001",
            recordKey:
                "docker-volume:model-registry-local-staging-registry-data/model-registry-local-staging",
        });
    });
});
