/**
 * Images and independent checks for the copy tests and the benchmark: images built by the real
 * Docker engine and pushed with `docker push`, an OCI index made through the registry API, a
 * large blob streamed from a file, Debian's `skopeo` as a second opinion on the bytes a registry
 * serves, and `copyImage` run in a child process of its own to measure its memory.
 */
import { execFile } from "child_process";
import { createHash, randomBytes, randomFillSync } from "crypto";
import * as fs from "fs";
import * as http from "http";
import * as os from "os";
import * as path from "path";
import { RegistryEndpoint, headManifest } from "../../lib/oci/client";
import { CopyResult } from "../../lib/oci/copy";
import { docker } from "./docker";
import { sha256 } from "./misbehavingServers";
import { LocalRegistry, authorizedRequest, ociManifest, pushBlob, putManifest } from "./registry";
import { tool } from "./tools";

const PROJECT = path.resolve(__dirname, "../..");

/**
 * Fails with the install hint when skopeo (SKOPEO_BIN, or on PATH) is missing: these tests are
 * never skipped.
 */
export function requireSkopeo(): void {
    tool("skopeo");
}

function run(command: string, args: string[]): Promise<Buffer> {
    return new Promise((resolve, reject) =>
        execFile(
            command,
            args,
            { encoding: "buffer", maxBuffer: 64 * 1024 * 1024 },
            (err, stdout, stderr) =>
                err
                    ? reject(new Error(`${command} ${args.join(" ")} failed: ${stderr.toString()}`))
                    : resolve(stdout),
        ),
    );
}

/**
 * The manifest bytes a registry serves for `<repository>:<reference>` (or `@<digest>`), as
 * skopeo reads them: an independent client, so a test does not check our copy with our code.
 */
export async function skopeoRaw(
    registry: LocalRegistry,
    repository: string,
    reference: string,
): Promise<Buffer> {
    const ref = `${registry.host}/${repository}${reference.includes(":") ? "@" : ":"}${reference}`;
    // The password goes in the registry's 0600 auth file, never on the command line.
    const creds = registry.authFile ? ["--authfile", registry.authFile] : [];
    return run(tool("skopeo"), [
        "inspect",
        "--raw",
        "--tls-verify=false",
        ...creds,
        `docker://${ref}`,
    ]);
}

export interface BuiltImage {
    /** Manifest digest in the registry it was pushed to. */
    readonly digest: string;
    readonly mediaType: string;
    /** Its blobs as the manifest lists them: the layers in order (compressed), then the config. */
    readonly blobs: { digest: string; size: number }[];
}

/**
 * Builds an image FROM scratch with one COPY layer per entry of `layers` (each that many random
 * bytes) with the real Docker engine, and `docker push`es it to `<registry>/<repository>:<tag>`
 * (127.0.0.0/8 registries are insecure-allowed by Docker). The local image is removed after.
 */
export async function dockerBuildAndPush(
    registry: LocalRegistry,
    repository: string,
    tag: string,
    layers: number[],
): Promise<BuiltImage> {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "copy-image-"));
    const ref = `${registry.host}/${repository}:${tag}`;
    try {
        const lines = ["FROM scratch"];
        layers.forEach((size, i) => {
            fs.writeFileSync(path.join(dir, `part${i}.bin`), randomBytes(size));
            lines.push(`COPY part${i}.bin /model/part${i}.bin`);
        });
        fs.writeFileSync(path.join(dir, "Dockerfile"), `${lines.join("\n")}\n`);
        await docker(["build", "--quiet", "-t", ref, dir]);
        await docker(["push", ref]);
        const found = await headManifest(registry.endpoint(repository), tag);
        if (!found.exists) throw new Error(`docker push ${ref} left no manifest`);
        const res = await authorizedRequest(
            registry.endpoint(repository),
            "GET",
            `/v2/${repository}/manifests/${found.digest}`,
            { Accept: found.mediaType },
            "pull",
        );
        type Descriptor = { digest: string; size: number };
        const manifest = JSON.parse(res.body.toString("utf8")) as {
            config: Descriptor;
            layers: Descriptor[];
        };
        return {
            digest: found.digest,
            mediaType: found.mediaType,
            blobs: [...manifest.layers, manifest.config].map(({ digest, size }) => ({
                digest,
                size,
            })),
        };
    } finally {
        await docker(["rmi", "-f", ref]).catch(() => undefined);
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

interface PushedIndex {
    readonly digest: string;
    readonly children: { digest: string; platform: string }[];
    /** Distinct blobs of all children (a layer shared by both counts once). */
    readonly blobs: number;
}

/**
 * An OCI image index with two platform images (linux/amd64, linux/arm64) made through the API:
 * each has its own config and layer, and both share one layer. Children are pushed by digest,
 * the index under `tag`.
 */
export async function pushTwoPlatformIndex(
    endpoint: RegistryEndpoint,
    tag: string,
): Promise<PushedIndex> {
    const shared = randomBytes(2048);
    const sharedDigest = await pushBlob(endpoint, shared);
    const children: { digest: string; size: number; platform: string }[] = [];
    for (const architecture of ["amd64", "arm64"]) {
        const own = randomBytes(1024);
        const config = Buffer.from(
            JSON.stringify({
                architecture,
                os: "linux",
                rootfs: { type: "layers", diff_ids: [sha256(shared), sha256(own)] },
            }),
        );
        const manifest = ociManifest(
            { digest: await pushBlob(endpoint, config), size: config.length },
            [
                { digest: sharedDigest, size: shared.length },
                { digest: await pushBlob(endpoint, own), size: own.length },
            ],
        );
        const digest = sha256(manifest);
        await putManifest(endpoint, digest, manifest);
        children.push({ digest, size: manifest.length, platform: `linux/${architecture}` });
    }
    // Spaces and an annotation: bytes a re-serializing copy would not reproduce.
    const index = Buffer.from(
        JSON.stringify(
            {
                schemaVersion: 2,
                mediaType: "application/vnd.oci.image.index.v1+json",
                manifests: children.map((c) => ({
                    mediaType: "application/vnd.oci.image.manifest.v1+json",
                    digest: c.digest,
                    size: c.size,
                    platform: { architecture: c.platform.split("/")[1], os: "linux" },
                })),
                annotations: { "org.opencontainers.image.version": tag },
            },
            null,
            3,
        ),
    );
    await putManifest(endpoint, tag, index, "application/vnd.oci.image.index.v1+json");
    return {
        digest: sha256(index),
        children: children.map(({ digest, platform }) => ({ digest, platform })),
        blobs: 5,
    };
}

/** Writes `size` random bytes to `file` in 8 MiB chunks. */
export function writeRandomFile(file: string, size: number): void {
    const chunk = Buffer.alloc(8 * 1024 * 1024);
    const fd = fs.openSync(file, "w");
    try {
        for (let left = size; left > 0; left -= chunk.length) {
            randomFillSync(chunk);
            fs.writeSync(fd, chunk, 0, Math.min(left, chunk.length));
        }
    } finally {
        fs.closeSync(fd);
    }
}

/** sha256 of a file, streamed. */
async function fileDigest(file: string): Promise<string> {
    const hash = createHash("sha256");
    for await (const chunk of fs.createReadStream(file)) hash.update(chunk as Buffer);
    return `sha256:${hash.digest("hex")}`;
}

/**
 * Publishes a one-layer image whose layer is `file`, streamed into a monolithic upload (the
 * file never sits in memory), on a plain-HTTP registry without auth. Returns the manifest digest.
 */
export async function pushFileImage(
    registry: LocalRegistry,
    repository: string,
    tag: string,
    file: string,
): Promise<{ digest: string; layerDigest: string; layerSize: number }> {
    const layerDigest = await fileDigest(file);
    const layerSize = fs.statSync(file).size;
    const endpoint = registry.endpoint(repository);
    const start = await authorizedRequest(
        endpoint,
        "POST",
        `/v2/${repository}/blobs/uploads/`,
        {},
        "push,pull",
    );
    if (start.status !== 202) throw new Error(`blob upload start answered ${start.status}`);
    const location = new URL(String(start.headers.location), registry.apiUrl);
    location.searchParams.set("digest", layerDigest);
    await new Promise<void>((resolve, reject) => {
        const req = http.request(
            location,
            {
                method: "PUT",
                headers: {
                    "Content-Type": "application/octet-stream",
                    "Content-Length": String(layerSize),
                },
            },
            (res) => {
                res.resume();
                if (res.statusCode === 201) resolve();
                else reject(new Error(`blob PUT answered ${res.statusCode}`));
            },
        );
        req.on("error", reject);
        fs.createReadStream(file).pipe(req);
    });
    const config = Buffer.from(
        JSON.stringify({
            architecture: "amd64",
            os: "linux",
            rootfs: { type: "layers", diff_ids: [layerDigest] },
        }),
    );
    const manifest = ociManifest(
        { digest: await pushBlob(endpoint, config), size: config.length },
        [{ digest: layerDigest, size: layerSize }],
    );
    await putManifest(endpoint, tag, manifest);
    return { digest: sha256(manifest), layerDigest, layerSize };
}

export interface ChildCopy {
    readonly result: CopyResult;
    /** Wall time of `copyImage` alone (not the process start). */
    readonly seconds: number;
    /** Peak RSS of the process minus its RSS right before the copy. */
    readonly peakAboveBaseline: number;
}

/**
 * Runs `copyImage` in a fresh Node process and reports its time and peak memory above the
 * baseline (taken after the modules are loaded), as the checksum benchmark measures the hasher.
 */
export async function copyInChildProcess(
    source: RegistryEndpoint,
    reference: string,
    destination: RegistryEndpoint,
    tag: string,
): Promise<ChildCopy> {
    const script = `
        require(${JSON.stringify(require.resolve("ts-node"))}).register({ transpileOnly: true, project: ${JSON.stringify(path.join(PROJECT, "tsconfig.json"))} });
        const { copyImage } = require(${JSON.stringify(path.join(PROJECT, "lib/oci/copy.ts"))});
        require("undici");
        const [source, reference, destination, tag] = JSON.parse(process.argv[1]);
        global.gc && global.gc();
        const baseline = process.memoryUsage().rss;
        // Sampled, not getrusage's maxRSS: Linux carries maxRSS over exec from the forking
        // process, so a large parent (a jest worker) would show as this copy's peak.
        let peak = baseline;
        const sampler = setInterval(() => { peak = Math.max(peak, process.memoryUsage().rss); }, 20);
        const t0 = process.hrtime.bigint();
        copyImage(source, reference, destination, tag).then(
            (result) => {
                const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
                clearInterval(sampler);
                peak = Math.max(peak, process.memoryUsage().rss);
                process.stdout.write(JSON.stringify({ result, seconds, peakAboveBaseline: Math.max(0, peak - baseline) }));
            },
            (e) => { process.stderr.write(String(e && e.message)); process.exit(1); },
        );`;
    const out = await new Promise<string>((resolve, reject) =>
        execFile(
            process.execPath,
            ["--expose-gc", "-e", script, JSON.stringify([source, reference, destination, tag])],
            { cwd: PROJECT, encoding: "utf8", maxBuffer: 16 * 1024 * 1024 },
            (err, stdout, stderr) =>
                err ? reject(new Error(`the copy process failed: ${stderr}`)) : resolve(stdout),
        ),
    );
    return JSON.parse(out) as ChildCopy;
}
