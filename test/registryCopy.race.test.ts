/**
 * lib/oci/copy.ts never moves a destination tag that names another image, whoever calls it:
 * not one pushed by another publisher while a layer streams, not one pushed just before the copy
 * starts. Real registries (Debian's docker-registry, distribution 2.8) on 127.0.0.1; a front on
 * the source holds the layer's answer mid-stream, so the other publisher pushes at a moment the
 * test chooses, not after a sleep.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { RegistryEndpoint, headManifest } from "../lib/oci/client";
import { copyImage } from "../lib/oci/copy";
import { pushFileImage, writeRandomFile } from "./support/copyFixtures";
import { startPausingFront } from "./support/copyServers";
import { LocalRegistry, authorizedRequest, pushImage, startRegistry } from "./support/registry";

jest.setTimeout(120_000);

let source: LocalRegistry;
let target: LocalRegistry;
let dir: string;
let image: { digest: string; layerDigest: string; layerSize: number };

beforeAll(async () => {
    source = await startRegistry();
    target = await startRegistry();
    dir = fs.mkdtempSync(path.join(os.tmpdir(), "copy-race-"));
    const file = path.join(dir, "model.bin");
    writeRandomFile(file, 4 * 1024 * 1024);
    image = await pushFileImage(source, "dev/model", "1.0.0", file);
});

afterAll(async () => {
    await source?.stop();
    await target?.stop();
    if (dir) fs.rmSync(dir, { recursive: true, force: true });
});

/** What the destination repository answers to a HEAD of the blob. */
async function blobStatus(to: RegistryEndpoint, digest: string): Promise<number> {
    const path = `/v2/${to.repository}/blobs/${digest}`;
    return (await authorizedRequest(to, "HEAD", path, {}, "pull")).status;
}

/** The refusal: names the repository, the tag, what it names and what was being copied. */
function refusal(repository: string, theirs: string) {
    return {
        kind: "conflict",
        message: expect.stringContaining(
            `repository ${repository}: the tag 1.0.0 names ${theirs}, and the copy would replace it with ${image.digest}`,
        ),
    };
}

describe("a destination tag pushed by another publisher", () => {
    it("while a layer streams: the copy refuses right before the manifest PUT, and their tag stays", async () => {
        const front = await startPausingFront(source, image.layerDigest);
        try {
            const from: RegistryEndpoint = { ...source.endpoint("dev/model"), apiUrl: front.url };
            const to = target.endpoint("prod/during");
            const copy = copyImage(from, "1.0.0", to, "1.0.0");
            copy.catch(() => undefined);
            await front.paused;
            // The copy looked at the tag before it started; now another publisher pushes it.
            const theirs = await pushImage(to, "1.0.0", "another publisher");
            front.release();
            await expect(copy).rejects.toMatchObject(refusal("prod/during", theirs));
            expect(await headManifest(to, "1.0.0")).toMatchObject({ exists: true, digest: theirs });
            // The layer did go in (the copy was past it): only the tag was refused.
            expect(await blobStatus(to, image.layerDigest)).toBe(200);
        } finally {
            await front.stop();
        }
    });

    it("just before the copy starts: refused before anything is sent, and their tag stays", async () => {
        const to = target.endpoint("prod/before");
        const theirs = await pushImage(to, "1.0.0", "pushed first");
        await expect(
            copyImage(source.endpoint("dev/model"), "1.0.0", to, "1.0.0"),
        ).rejects.toMatchObject(refusal("prod/before", theirs));
        expect(await headManifest(to, "1.0.0")).toMatchObject({ exists: true, digest: theirs });
        expect(await blobStatus(to, image.layerDigest)).toBe(404);
    });

    it("with the same image while a layer streams: success, nothing written under the tag", async () => {
        const front = await startPausingFront(source, image.layerDigest);
        try {
            const from: RegistryEndpoint = { ...source.endpoint("dev/model"), apiUrl: front.url };
            const to = target.endpoint("prod/same");
            const copy = copyImage(from, "1.0.0", to, "1.0.0");
            copy.catch(() => undefined);
            await front.paused;
            const ahead = await copyImage(source.endpoint("dev/model"), "1.0.0", to, "1.0.0");
            expect(ahead).toMatchObject({ digest: image.digest, manifests: 1 });
            front.release();
            expect(await copy).toMatchObject({ digest: image.digest, manifests: 0 });
            expect(await headManifest(to, "1.0.0")).toMatchObject({ digest: image.digest });
        } finally {
            await front.stop();
        }
    });
});
