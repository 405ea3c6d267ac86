/**
 * The histories the guard and the record carry follow `recordKey`: a local registry that moves
 * to another port (same volume, same data) keeps the stack's memory of what it verified and
 * published, so a version that later vanishes is still refused instead of published again. The
 * port change is real: the same distribution registry, reached through a TCP forwarder on another
 * port.
 */
import { recordPublication } from "../components/publicationRecord";
import { TagGuardInputs, tagGuardProvider } from "../components/tagGuard";
import { FINGERPRINT_LABEL, PUBLISHER_LABEL } from "../lib/publication/guard";
import { deleteTag, startForwarder, useFlowServices } from "./support/flow";
import { pushLabelledImage } from "./support/images";
import { LocalRegistry, startRegistry } from "./support/registry";

jest.setTimeout(60_000);

const FP = `sha256:${"c".repeat(64)}`;
const PUBLISHER = "model-registry/local";
const REPO = "model-registry-local";
const KEY = `docker-volume:model-registry-local-registry-data/${REPO}`;

let registry: LocalRegistry;
let movedPort: number;
useFlowServices(async (keep) => {
    registry = keep(await startRegistry());
    movedPort = keep(await startForwarder(registry)).port;
});

function guardInputs(port: string, recordKey: string | undefined): TagGuardInputs {
    return {
        repositoryUri: `127.0.0.1:${port}/${REPO}`,
        apiUrl: `http://127.0.0.1:${port}`,
        repositoryPath: REPO,
        tag: "1.0.0",
        fingerprint: FP,
        platform: "linux/amd64",
        publisher: PUBLISHER,
        ...(recordKey ? { recordKey } : {}),
    };
}

it("keeps the guard's memory across a port change: a rollback to a version that vanished is refused", async () => {
    const originalPort = registry.host.split(":")[1];
    const labels = { [FINGERPRINT_LABEL]: FP, [PUBLISHER_LABEL]: PUBLISHER };
    const run = async (olds: Partial<TagGuardInputs>, news: TagGuardInputs) => {
        const result = await tagGuardProvider.check!(olds, news);
        return {
            failures: (result.failures ?? []).map((f) => f.reason),
            state: result.inputs as TagGuardInputs,
        };
    };

    // The same story with and without a record key, on versions of its own each time.
    for (const [key, old, current] of [
        [KEY, "1.0.0", "1.1.0"],
        [undefined, "3.0.0", "3.1.0"],
    ] as const) {
        const at = (port: string, tag: string) => ({ ...guardInputs(port, key), tag });
        // The guard's memory of the repository at `port` (its record key, else its URI).
        const memory = (state: TagGuardInputs, port: string) =>
            state.verifiedHistories?.[key ?? `127.0.0.1:${port}/${REPO}`] ?? {};
        await pushLabelledImage(registry.endpoint(REPO), old, labels);
        await pushLabelledImage(registry.endpoint(REPO), current, labels);
        // On the original port: the old version verified, then the bump verified too.
        const first = await run({}, at(originalPort, old));
        const bumped = await run(first.state, at(originalPort, current));
        expect(Object.keys(memory(bumped.state, originalPort)).sort()).toEqual([old, current]);
        // The port changes (same data); then the old version vanishes (a lost volume, a delete
        // by hand) and the stack rolls back to it.
        const moved = await run(bumped.state, at(String(movedPort), current));
        expect(moved.failures).toEqual([]);
        await deleteTag(registry, REPO, old);
        const rollback = await run(moved.state, at(String(movedPort), old));
        if (key) {
            expect(Object.keys(memory(moved.state, String(movedPort))).sort()).toEqual([
                old,
                current,
            ]);
            expect(rollback.failures.join("\n")).toMatch(/deleted/);
        } else {
            // Without a record key the port change started a new memory, and the rollback would
            // publish the vanished version again: the key is what keeps the promise here. (The
            // delete by digest took the current tag too, since both tags name one image: the
            // re-verification reports that one, which the new memory still knows.)
            expect(Object.keys(memory(moved.state, String(movedPort)))).toEqual([current]);
            expect(rollback.failures.filter((f) => f.includes(`:${old} `))).toEqual([]);
            expect(rollback.failures.join("\n")).toContain(`:${current} was published`);
        }
    }
});

it("keeps the record's published versions across a port change", async () => {
    const originalPort = registry.host.split(":")[1];
    const digest = await pushLabelledImage(registry.endpoint(REPO), "2.0.0", {
        [FINGERPRINT_LABEL]: FP,
        [PUBLISHER_LABEL]: PUBLISHER,
    });
    const pushed = (port: string) => `127.0.0.1:${port}/${REPO}@${digest}`;
    const base = {
        ...guardInputs(originalPort, KEY),
        tag: "2.0.0",
        repoDigest: pushed(originalPort),
    };
    const first = await recordPublication(base, undefined);
    expect(first.history["2.0.0"].digest).toBe(digest);
    expect(first.recordKey).toBe(KEY);

    const moved = await recordPublication(
        {
            ...guardInputs(String(movedPort), KEY),
            tag: "2.0.0",
            repoDigest: pushed(String(movedPort)),
        },
        { ...first, history: { ...first.history, "0.9.0": { fingerprint: FP, digest } } },
    );
    // The earlier history is kept under the new URI: promoting stacks still see 0.9.0.
    expect(Object.keys(moved.history).sort()).toEqual(["0.9.0", "2.0.0"]);
    expect(moved.repositoryUri).toBe(`127.0.0.1:${movedPort}/${REPO}`);

    const unkeyed = await recordPublication(
        {
            ...guardInputs(String(movedPort), undefined),
            tag: "2.0.0",
            repoDigest: pushed(String(movedPort)),
        },
        { ...first, recordKey: undefined },
    );
    expect(Object.keys(unkeyed.history)).toEqual(["2.0.0"]);
});
