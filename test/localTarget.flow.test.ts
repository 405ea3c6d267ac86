/**
 * The `local` target for real: the program's own registry settings (registryUrl and credentials,
 * resolved under mocks from the local stack file) drive the guard, the build, the push, the
 * record and a promotion against a real distribution registry with Basic auth, and skopeo, an
 * independent client, confirms what landed. The registry container a local stack runs itself
 * cannot be tested here (no registry image can be pulled); test/targets.test.ts checks it under
 * mocks.
 */
import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { skopeoRaw } from "./support/copyFixtures";
import { docker, ensureDockerEngine } from "./support/docker";
import { PromotingStack, SimulatedStack } from "./support/engine";
import { modelContext, removedAfterSuite, useFlowEngine } from "./support/flow";
import { runProgram, stackFile } from "./support/program";
import { StackConfig } from "./support/pulumiCli";
import { GUARD, IMAGE, PROMOTION } from "./support/pulumiMocks";
import { LocalRegistry, startRegistry } from "./support/registry";

jest.setTimeout(180_000);

let registry: LocalRegistry;
const hosts = useFlowEngine(async (keep) => {
    await ensureDockerEngine();
    // docker.Image logs in to the registry with the credentials the program passes it; the
    // simulated image step does the same, into a throw-away client config.
    process.env.DOCKER_CONFIG = removedAfterSuite(
        fs.mkdtempSync(path.join(os.tmpdir(), "docker-config-")),
    );
    keep({ stop: async () => void delete process.env.DOCKER_CONFIG });
    registry = keep(await startRegistry({ auth: "htpasswd" }));
});

/** The local stack file pointed at the suite's registry, as a user would configure it. */
function localConfig(extra: Record<string, string> = {}): StackConfig {
    return stackFile("local", {
        registryUrl: registry.apiUrl,
        registryUsername: registry.credentials!.username,
        registryPassword: { secret: registry.credentials!.password },
        ...extra,
    });
}

/** The registry as the program's resources address it: server, API URL, credentials. */
function asProgramSees(inputs: Record<string, any>, server: string): LocalRegistry {
    return { ...registry, host: server, apiUrl: inputs.apiUrl, credentials: inputs.credentials };
}

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

it("publishes, retries without a push, and promotes the same digest on the local target", async () => {
    // What the program registers for a local stack on this registry.
    const dev = await runProgram(localConfig(), { stack: "local" });
    expect(dev.error).toBeUndefined();
    const guard = dev.recorder.one(GUARD).inputs;
    const image = dev.recorder.one(IMAGE).inputs;
    expect(guard.apiUrl).toBe(registry.apiUrl);
    expect(image.imageName).toBe(`${registry.host}/model-registry-local:1.0.0`);
    expect(guard.credentials).toEqual(registry.credentials);
    const login = image.registry as { server: string; username: string; password: string };
    expect(login).toEqual({ server: registry.host, ...registry.credentials });
    await docker(["login", "-u", login.username, "-p", login.password, login.server]);

    const stack = new SimulatedStack(hosts, {
        registry: asProgramSees(guard, image.registry.server),
        repository: guard.repositoryPath,
        publisher: "model-registry/local",
    });
    const context = modelContext('{"weights": [1, 2, 3]}\n');
    const first = await stack.up({ version: "1.0.0", context });
    expect(first.pushed).toBe(true);
    const digest = first.imageRef.split("@")[1];
    // skopeo, another client, sees the tag holding what the record says.
    expect(sha256(await skopeoRaw(registry, "model-registry-local", "1.0.0"))).toBe(digest);

    // A retry: the guard finds the tag holding this content; nothing is pushed, nothing moves.
    const again = await stack.up({ version: "1.0.0", context });
    expect(again.pushed).toBe(false);
    expect(again.imageRef).toBe(first.imageRef);

    // A second local stack promotes from the first, with the credentials of the registry the
    // user runs (the same server, so the stack's own credentials are used for the source).
    const staging = await runProgram(localConfig({ promoteFrom: "local" }), {
        stack: "local-staging",
        stackOutputs: {
            local: {
                repository_uri: `${image.registry.server}/model-registry-local`,
                registry_api_url: guard.apiUrl,
                published_versions: stack.history,
            },
        },
    });
    expect(staging.error).toBeUndefined();
    const promotion = staging.recorder.one(PROMOTION).inputs;
    expect(promotion.sourceCredentials).toEqual(registry.credentials);
    expect(promotion.sourceApiUrl).toBe(registry.apiUrl);

    const promoting = new PromotingStack(hosts, {
        registry: asProgramSees(promotion, image.registry.server),
        repository: promotion.repositoryPath,
        source: {
            registry: {
                ...registry,
                apiUrl: promotion.sourceApiUrl,
                credentials: promotion.sourceCredentials,
            },
            repository: promotion.sourceRepositoryPath,
        },
        sourceName: promotion.sourceName,
        sourcePublished: () => stack.history,
    });
    const promoted = await promoting.up("1.0.0");
    expect(promoted.imageRef).toBe(`${registry.host}/model-registry-local-staging@${digest}`);
    expect(sha256(await skopeoRaw(registry, "model-registry-local-staging", "1.0.0"))).toBe(digest);
    // The source's tag is where it was.
    expect(sha256(await skopeoRaw(registry, "model-registry-local", "1.0.0"))).toBe(digest);
});
