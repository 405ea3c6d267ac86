/**
 * A new registry address (`pulumi config set localRegistryPort 5055`: the same registry and
 * volume on another port) never pushes the current version again. docker.Image's options are
 * read off the program's own registration (under mocks), and the engine model (support/engine.ts)
 * steps docker.Image with them as the engine and pulumi-docker do; the port change is real: the
 * same distribution registry, reached through a TCP forwarder on another port.
 */
import * as pulumi from "@pulumi/pulumi";
import { loadConfig } from "../config";
import { modelRegistry } from "../program";
import { ensureDockerEngine } from "./support/docker";
import { ImageOptions, MODEL_IMAGE_OPTIONS, SimulatedStack, imageStep } from "./support/engine";
import { digestOf, modelContext, startForwarder, useFlowEngine } from "./support/flow";
import { stackFile } from "./support/program";
import { programConfig } from "./support/pulumiCli";
import { IMAGE, Recorder } from "./support/pulumiMocks";
import { LocalRegistry, startRegistry } from "./support/registry";

jest.setTimeout(180_000);

const REPO = "address/m";

let registry: LocalRegistry;
let movedPort: number;
const hosts = useFlowEngine(async (keep) => {
    await ensureDockerEngine();
    registry = keep(await startRegistry());
    movedPort = keep(await startForwarder(registry)).port;
});

/** docker.Image's ignoreChanges and replaceOnChanges, as the program registers them. */
async function registeredImageOptions(): Promise<ImageOptions> {
    const { config, secretKeys } = programConfig(stackFile("dev"), "dev");
    const recorder = await Recorder.start(pulumi, { config, secretKeys });
    const monitor = pulumi.runtime.getMonitor() as any;
    const register = monitor.registerResource.bind(monitor);
    let found: ImageOptions | undefined;
    monitor.registerResource = (req: any, callback: any) => {
        if (req.getType() === IMAGE) {
            found = {
                ignoreChanges: req.getIgnorechangesList(),
                replaceOnChanges: req.getReplaceonchangesList(),
            };
        }
        return register(req, callback);
    };
    modelRegistry(loadConfig());
    await recorder.settle();
    if (!found) throw new Error("the program registered no docker.Image");
    return found;
}

// One run of the program under mocks serves both tests that read the options.
let imageOptions: Promise<ImageOptions> | undefined;
const programImageOptions = () => (imageOptions ??= registeredImageOptions());
const tagDigest = (tag: string) => digestOf(registry, REPO, tag);

it("the engine model steps docker.Image with the options the program registers", async () => {
    expect(await programImageOptions()).toEqual(MODEL_IMAGE_OPTIONS);
});

it("models the docker provider's diff: a new server alone is an update unless replaceOnChanges covers 'registry'", () => {
    const old = {
        imageName: "127.0.0.1:5000/m:1.0.0",
        build: "{}",
        registry: { server: "127.0.0.1:5000" },
        skipPush: false,
    };
    const moved = {
        ...old,
        imageName: "127.0.0.1:5055/m:1.0.0",
        registry: { server: "127.0.0.1:5055" },
        skipPush: true,
    };
    const only = (replaceOnChanges: string[]) =>
        imageStep(old, moved, { ignoreChanges: ["skipPush"], replaceOnChanges });
    // Updated in place, the image keeps its old skipPush (false): it would push again.
    expect(only([])).toEqual({ kind: "update", inputs: { ...moved, skipPush: false } });
    // "registry.server" does not contain the provider's "registry" key.
    expect(only(["registry.server"]).kind).toBe("update");
    // Replaced: created from the program's inputs as given, skipPush true.
    expect(only(["registry"])).toEqual({ kind: "replace", inputs: moved });
    expect(only(["imageName", "registry"])).toEqual({ kind: "replace", inputs: moved });
    // A credentials-only change is no change at all; a build change stays an update.
    expect(imageStep(old, { ...old, skipPush: true }, MODEL_IMAGE_OPTIONS).kind).toBe("same");
    expect(imageStep(old, { ...old, build: "{ }" }, MODEL_IMAGE_OPTIONS).kind).toBe("update");
});

it("a port change adopts the published tag: nothing is pushed, and image_ref follows the new address", async () => {
    const stack = new SimulatedStack(hosts, {
        registry,
        repository: REPO,
        publisher: "model-registry/local",
        recordKey: `docker-volume:model-registry-local-registry-data/${REPO}`,
        imageOptions: await programImageOptions(),
    });
    const context = modelContext('{"w":[1,2,3]}');
    const first = await stack.up({ version: "1.0.0", context });
    expect(first.pushed).toBe(true);
    const published = await tagDigest("1.0.0");
    expect(first.imageRef).toBe(`${registry.host}/${REPO}@${published}`);

    stack.moveTo(`127.0.0.1:${movedPort}`, `http://127.0.0.1:${movedPort}`);
    const moved = await stack.up({ version: "1.0.0", context });
    expect(moved.pushed).toBe(false);
    expect(moved.imageCreated).toBe(true);
    expect(stack.pushes).toEqual(["1.0.0"]);
    expect(await tagDigest("1.0.0")).toBe(published);
    expect(moved.imageRef).toBe(`127.0.0.1:${movedPort}/${REPO}@${published}`);

    // And the run after: unchanged, nothing built or pushed.
    const again = await stack.up({ version: "1.0.0", context });
    expect(again).toMatchObject({ pushed: false, imageCreated: false });
    expect(await tagDigest("1.0.0")).toBe(published);
});
