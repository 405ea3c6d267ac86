/**
 * Copies an image from one repository to another by digest, without rebuilding it: "build once,
 * promote everywhere". The manifest bytes are copied exactly, so the destination's digest is the
 * source's, as `crane copy` and `skopeo copy` do it. An image index (or Docker manifest list) is
 * copied whole: every child manifest with its blobs first, then the index.
 *
 * Blobs go the way `docker push` sends them, which every registry takes (ECR's chunked uploads
 * deviate; see shared/reference/ecr-public.md): a HEAD skips what the destination has, so an
 * interrupted copy resumes where it stopped; within one registry a cross-repository mount is
 * tried first; otherwise POST an upload, ONE streaming PATCH of the whole blob, and the closing
 * PUT with its digest. A blob streams from source to destination in chunks (memory stays flat
 * whatever its size), its sha256 checked on the way: content that does not match its digest is
 * never committed. Every request goes through the registry client (auth, redirects, proxies,
 * deadlines): a blob transfer is bounded by the idle timeout between chunks, everything else as
 * a lookup is.
 *
 * Like the registry client, this module survives Pulumi's closure serialization (a dynamic
 * provider carries it): plain functions, Node built-ins and the client, no classes.
 */
import { createHash } from "crypto";
import {
    RegistrySession,
    closeSession,
    findChild,
    findManifest,
    openSession,
    platformDigest,
    sessionRequest,
    sessionStream,
} from "./client";
import { RegistryEndpoint, checkReference, isDigest } from "./endpoint";
import { RegistryError, registryError, shown } from "./errors";
import { Answer, BodyStream, headerOf, unexpected } from "./http";
import { Manifest, isIndex, manifestJson } from "./manifests";

/** One blob's progress, for a caller that logs large transfers. */
export interface CopyProgress {
    readonly digest: string;
    /**
     * `skipped`: the destination had it; `mounted`: taken from the source repository of the same
     * registry; `uploading`: bytes sent so far (at the start, then at least every 1% and 1 MiB);
     * `uploaded`: committed.
     */
    readonly phase: "skipped" | "mounted" | "uploading" | "uploaded";
    /** Bytes of the blob done; `total` once skipped, mounted or uploaded. */
    readonly bytes: number;
    /** The blob's size, as its manifest gives it. */
    readonly total: number;
}

export interface CopyOptions {
    /** Called for each blob as it is skipped, mounted, uploaded, and while it uploads. */
    readonly onProgress?: (e: CopyProgress) => void;
    /**
     * Copy only this platform's image (`os/arch[/variant]`) out of an index, as
     * `crane copy --platform` does: the destination tag then names that image manifest, whose
     * digest is the source's child's. A subset of several platforms would be a new index with a
     * new digest, which a promotion must not produce; so one platform, or (the default) the
     * whole index, byte for byte.
     */
    readonly platform?: string;
}

export interface CopyResult {
    /** Manifest digest under the destination tag: the same as the source's. */
    readonly digest: string;
    readonly mediaType: string;
    /** Manifests written: the tagged one and, for an index, each child. 0 when the tag already named the digest. */
    readonly manifests: number;
    readonly blobsUploaded: number;
    readonly bytesUploaded: number;
    /** Blobs the destination repository already had. */
    readonly blobsSkipped: number;
    /** Blobs mounted from the source repository (same registry); nothing sent. */
    readonly blobsMounted: number;
}

interface Descriptor {
    readonly digest: string;
    readonly size: number;
}

interface Copy {
    readonly source: RegistrySession;
    readonly destination: RegistrySession;
    /** Same registry, another repository: try a cross-repository mount first. */
    readonly mount: boolean;
    readonly onProgress: (e: CopyProgress) => void;
    /** Blobs and child manifests already handled in this copy (indexes share layers). */
    readonly done: Set<string>;
    /** The first blob that failed, and why: the other transfers then stop. */
    failure?: { readonly error: unknown; readonly blob: Descriptor };
    manifests: number;
    blobsUploaded: number;
    bytesUploaded: number;
    blobsSkipped: number;
    blobsMounted: number;
}

const SCHEMA1_TYPES = [
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
];
/** Indexes inside indexes are allowed, this deep. */
const MAX_DEPTH = 4;
/** Blobs of one manifest transferred at once, as `docker push` uploads them (5). */
const PARALLEL_BLOBS = 5;
const MiB = 1024 * 1024;

/**
 * Copies `<source>:<sourceReference>` (a tag or a digest) to `<destination>:<destinationTag>`,
 * byte for byte, and checks that the destination tag then names the source's digest. A tag that
 * already names it is left as it is (nothing written). A tag that names anything else is never
 * moved, whoever calls: the copy refuses (a `conflict` error) when it finds one before it starts
 * and again right before it writes the tag, after the blobs, which may take minutes. What remains
 * is the moment between that last look and the manifest PUT: the registry API has no
 * create-if-absent for a tag. The source may be anonymous while the destination has credentials.
 * Throws a `RegistryError`; what was copied before stays, so running it again sends only the rest.
 */
export async function copyImage(
    source: RegistryEndpoint,
    sourceReference: string,
    destination: RegistryEndpoint,
    destinationTag: string,
    options: CopyOptions = {},
): Promise<CopyResult> {
    const src = openSession(source);
    const mount =
        registryOf(source) === registryOf(destination) &&
        source.repository !== destination.repository;
    const dst = openSession(destination, {
        action: "push,pull",
        alsoPull: mount ? [source.repository] : [],
    });
    let started = false;
    let copy: Copy | undefined;
    try {
        checkReference(src, sourceReference);
        checkReference(dst, destinationTag);
        if (destinationTag.includes(":")) {
            throw registryError(
                `${dst.name}: the destination must be a tag, not the digest ${destinationTag}`,
                "invalid",
            );
        }
        started = true;
        const image = await findManifest(src, sourceReference, true);
        if (!image?.body) {
            throw registryError(
                `${src.name}: ${sourceReference} does not exist, so there is nothing to copy`,
                "invalid",
            );
        }
        let top: Manifest = { digest: image.digest, mediaType: image.mediaType, body: image.body };
        if (options.platform !== undefined) {
            const child = platformDigest(src, top, options.platform);
            top = await findChild(src, sourceReference, child);
        }
        copy = {
            source: src,
            destination: dst,
            mount,
            onProgress: options.onProgress ?? (() => undefined),
            done: new Set(),
            manifests: 0,
            blobsUploaded: 0,
            bytesUploaded: 0,
            blobsSkipped: 0,
            blobsMounted: 0,
        };
        // A tag that already names the digest needs nothing (promoting again, a rollback); one
        // that names another is refused, before the copy and again right before the tag is put.
        if (!(await tagNames(copy, destinationTag, top.digest))) {
            await copyContent(copy, top, 0);
            if (!(await tagNames(copy, destinationTag, top.digest))) {
                await putManifest(copy, top, destinationTag);
                const after = await findManifest(dst, destinationTag, false);
                if (after?.digest !== top.digest) {
                    throw registryError(
                        `${dst.name}: after the copy, ${destinationTag} names ${after ? after.digest : "nothing"}, ` +
                            `not the source's ${top.digest}: another push moved it meanwhile, or the registry changed the manifest`,
                        "protocol",
                    );
                }
            }
        }
        return {
            digest: top.digest,
            mediaType: top.mediaType,
            manifests: copy.manifests,
            blobsUploaded: copy.blobsUploaded,
            bytesUploaded: copy.bytesUploaded,
            blobsSkipped: copy.blobsSkipped,
            blobsMounted: copy.blobsMounted,
        };
    } catch (e) {
        const failure = (copy as Copy | undefined)?.failure;
        throw started ? stopped(e, failure && failure.error === e ? failure.blob : undefined) : e;
    } finally {
        await Promise.all([closeSession(src), closeSession(dst)]);
    }
}

/** `origin + path prefix`: two endpoints with the same one are one registry. */
function registryOf(endpoint: RegistryEndpoint): string {
    try {
        const url = new URL(endpoint.apiUrl);
        return `${url.origin}${url.pathname.replace(/\/+$/, "")}`;
    } catch {
        return ""; // openSession says what is wrong with it
    }
}

/**
 * A client error says "nothing was pushed", true of a lookup, not of a copy that stopped
 * halfway: say instead which blob it was copying and what a second run does.
 */
function stopped(e: unknown, blob: Descriptor | undefined): unknown {
    const error = e as Partial<RegistryError>;
    if (!error.kind || error.kind === "invalid" || error.kind === "conflict") return e;
    const message = String(error.message)
        .replace(/;?\s*nothing was pushed\.?$/, "")
        .replace(/[.\s]*$/, "");
    const at = blob ? ` at the blob ${blob.digest} (${blob.size} bytes)` : "";
    return registryError(
        `${message}. The copy stopped${at}; what it copied stays, and running it again sends only the rest.`,
        error.kind,
    );
}

/**
 * Whether the destination's `tag` names `digest` (true) or is absent (false). A tag that names
 * another digest is refused: a copy never moves a published tag.
 */
async function tagNames(copy: Copy, tag: string, digest: string): Promise<boolean> {
    const { destination } = copy;
    const found = await findManifest(destination, tag, false);
    if (!found) return false;
    if (found.digest === digest) return true;
    throw registryError(
        `${destination.name}: the tag ${tag} names ${found.digest}, and the copy would replace it with ` +
            `${digest}; a copy never moves a tag that names another image (another publisher pushed ` +
            `it?). The tag is left as it is; ${copy.manifests > 0 || copy.blobsUploaded > 0 ? "blobs and child manifests copied so far stay, untagged" : "nothing was written"}. ` +
            `Fix: publish under another tag, or find out who pushed ${tag}.`,
        "conflict",
    );
}

/**
 * Copies what a manifest needs before the registry accepts it: an index's children (each with
 * its blobs, each put by digest) or an image's blobs.
 */
async function copyContent(copy: Copy, manifest: Manifest, depth: number): Promise<void> {
    const { source } = copy;
    const json = manifestJson(source, manifest);
    if (SCHEMA1_TYPES.includes(manifest.mediaType) || json.schemaVersion === 1) {
        throw registryError(
            `${source.name}: ${manifest.digest} is a Docker schema 1 manifest, which registries no longer ` +
                "accept; it cannot be copied unchanged. Push the image again with a current Docker.",
            "invalid",
        );
    }
    if (isIndex(manifest.mediaType, json)) {
        if (depth >= MAX_DEPTH) {
            throw registryError(
                `${source.name}: ${manifest.digest} nests indexes more than ${MAX_DEPTH} deep`,
                "protocol",
            );
        }
        for (const child of descriptors(source, manifest.digest, json.manifests)) {
            if (copy.done.has(child.digest)) continue;
            const content = await findChild(source, manifest.digest, child.digest);
            await copyContent(copy, content, depth + 1);
            await putManifest(copy, content, child.digest);
            copy.done.add(child.digest);
        }
    } else {
        const blobs = [
            ...descriptors(source, manifest.digest, json.layers),
            ...descriptors(source, manifest.digest, json.blobs),
            ...descriptors(source, manifest.digest, json.config ? [json.config] : []),
        ];
        await copyBlobs(copy, blobs);
    }
}

/** Puts a manifest's exact bytes under `reference` (a tag or its digest) with its media type. */
async function putManifest(copy: Copy, manifest: Manifest, reference: string): Promise<void> {
    const { destination } = copy;
    const put = await sessionRequest(
        destination,
        "PUT",
        `/v2/${destination.endpoint.repository}/manifests/${reference}`,
        { "Content-Type": manifest.mediaType },
        manifest.body,
    );
    if (put.status !== 201 && put.status !== 200) throw unexpected(destination, put, "201");
    const stored = headerOf(put.headers, "docker-content-digest");
    if (stored !== undefined && stored !== manifest.digest) {
        throw registryError(
            `${destination.name}: the registry stored the manifest ${manifest.digest} as ${shown(stored, 140)}: it changed the bytes`,
            "protocol",
        );
    }
    copy.manifests++;
}

/**
 * The descriptors of a manifest field, checked; foreign (non-distributable) layers, which live
 * at their URLs and which Docker never pushes, are left out.
 */
function descriptors(source: RegistrySession, owner: string, field: unknown): Descriptor[] {
    if (field === undefined) return [];
    const list = Array.isArray(field) ? (field as unknown[]) : [field];
    const found: Descriptor[] = [];
    for (const item of list) {
        const d = (item ?? {}) as {
            digest?: unknown;
            size?: unknown;
            mediaType?: unknown;
            urls?: unknown;
        };
        const foreign =
            Array.isArray(d.urls) &&
            d.urls.length > 0 &&
            /foreign|nondistributable/.test(String(d.mediaType));
        if (foreign) continue;
        const valid =
            typeof d.digest === "string" &&
            isDigest(d.digest) &&
            Number.isSafeInteger(d.size) &&
            (d.size as number) >= 0;
        if (!valid) {
            throw registryError(
                `${source.name}: the manifest ${owner} has a descriptor without a valid digest and size: ${shown(JSON.stringify(item) ?? "")}`,
                "protocol",
            );
        }
        found.push({ digest: d.digest as string, size: d.size as number });
    }
    return found;
}

/**
 * The blobs of one manifest, PARALLEL_BLOBS at a time, each once, the largest first (the copy
 * takes as long as its largest blob, and the small ones fit around it). The first failure stops
 * the others (a transfer in flight at its next chunk) and is thrown once they have stopped.
 */
async function copyBlobs(copy: Copy, blobs: Descriptor[]): Promise<void> {
    const queued = new Set<string>();
    const queue = blobs
        .filter((b) => {
            const fresh = !copy.done.has(b.digest) && !queued.has(b.digest);
            queued.add(b.digest);
            return fresh;
        })
        .sort((a, b) => b.size - a.size);
    let next = 0;
    const worker = async (): Promise<void> => {
        while (!copy.failure && next < queue.length) {
            const blob = queue[next++];
            try {
                await copyBlob(copy, blob);
                copy.done.add(blob.digest);
            } catch (error) {
                copy.failure ??= { error, blob };
            }
        }
    };
    await Promise.all(Array.from({ length: Math.min(PARALLEL_BLOBS, queue.length) }, worker));
    if (copy.failure) throw copy.failure.error;
}

/**
 * One blob, with the client's retry policy around the whole transfer: a connection that fails
 * midway starts the blob again (a streamed body cannot be resent), after checking whether the
 * registry committed it after all.
 */
async function copyBlob(copy: Copy, blob: Descriptor): Promise<void> {
    const retries = copy.destination.endpoint.retries ?? 3;
    for (let attempt = 0; ; attempt++) {
        try {
            await transferBlob(copy, blob);
            return;
        } catch (e) {
            const transient = (e as Partial<RegistryError>).kind === "unreachable";
            if (!transient || attempt >= retries || copy.failure) throw e;
            await new Promise((r) => setTimeout(r, 250 * 2 ** attempt));
        }
    }
}

async function transferBlob(copy: Copy, blob: Descriptor): Promise<void> {
    const { source, destination, onProgress } = copy;
    const { digest, size } = blob;
    const uploads = `/v2/${destination.endpoint.repository}/blobs/uploads/`;
    const head = await sessionRequest(
        destination,
        "HEAD",
        `/v2/${destination.endpoint.repository}/blobs/${digest}`,
        {},
    );
    if (head.status === 200) {
        copy.blobsSkipped++;
        onProgress({ digest, phase: "skipped", bytes: size, total: size });
        return;
    }
    if (head.status !== 404) throw unexpected(destination, head, "200 or 404");

    let location: URL | undefined;
    if (copy.mount) {
        const from = source.endpoint.repository;
        const query = `?mount=${encodeURIComponent(digest)}&from=${encodeURIComponent(from)}`;
        let res: Answer | undefined;
        try {
            res = await sessionRequest(destination, "POST", `${uploads}${query}`, {});
        } catch (e) {
            // A token without pull on the source repository: upload instead.
            if ((e as Partial<RegistryError>).kind !== "auth") throw e;
        }
        if (res?.status === 201) {
            copy.blobsMounted++;
            onProgress({ digest, phase: "mounted", bytes: size, total: size });
            return;
        }
        // 202: not mounted, and an upload session to use. Anything else: this registry does not
        // mount (ECR Public is reported not to); upload instead.
        if (res?.status === 202) location = uploadLocation(destination, res);
    }
    if (!location) {
        const res = await sessionRequest(destination, "POST", uploads, {});
        if (res.status !== 202) throw unexpected(destination, res, "202 with a Location");
        location = uploadLocation(destination, res);
    }

    onProgress({ digest, phase: "uploading", bytes: 0, total: size });
    if (size > 0) location = await sendBlob(copy, blob, location);
    const commit = new URL(location.href);
    commit.search = `${commit.search ? `${commit.search}&` : "?"}digest=${encodeURIComponent(digest)}`;
    let put: Answer | undefined;
    let failure: unknown;
    try {
        put = await sessionRequest(destination, "PUT", commit, {});
    } catch (e) {
        failure = e;
    }
    if (put?.status !== 201) {
        // The commit may have landed although its answer did not (a slow answer timed out and
        // the retry found the upload gone): the registry itself says whether it has the blob.
        const check = await sessionRequest(
            destination,
            "HEAD",
            `/v2/${destination.endpoint.repository}/blobs/${digest}`,
            {},
        ).catch(() => undefined);
        if (check?.status !== 200) {
            if (failure) throw failure;
            throw unexpected(destination, put as Answer, "201");
        }
        put = undefined;
    }
    const stored = put ? headerOf(put.headers, "docker-content-digest") : undefined;
    if (stored !== undefined && stored !== digest) {
        throw registryError(
            `${destination.name}: the registry committed the blob ${digest} as ${shown(stored, 140)}`,
            "protocol",
        );
    }
    copy.blobsUploaded++;
    copy.bytesUploaded += size;
    onProgress({ digest, phase: "uploaded", bytes: size, total: size });
}

/** Where an upload goes on: the Location of a 202 (or 201), relative or absolute, query kept. */
function uploadLocation(destination: RegistrySession, res: Answer): URL {
    const location = headerOf(res.headers, "location");
    try {
        if (location) return new URL(location, res.url);
    } catch {
        // reported below
    }
    throw registryError(
        `${destination.name}: ${res.method} ${res.url.pathname} answered ${res.status} without a usable Location ` +
            `(${location === undefined ? "none" : `"${shown(location)}"`})`,
        "protocol",
    );
}

/**
 * Streams the blob from the source into ONE PATCH of the upload, hashing it on the way; returns
 * the location the PATCH answer names for the closing PUT. Content that is longer or shorter than
 * the descriptor says, or does not hash to its digest, fails the PATCH before the PUT, so the
 * registry never commits it.
 */
async function sendBlob(copy: Copy, blob: Descriptor, location: URL): Promise<URL> {
    const { source, destination, onProgress } = copy;
    const { digest, size } = blob;
    const download = await sessionStream(
        source,
        "GET",
        `/v2/${source.endpoint.repository}/blobs/${digest}`,
        {},
    );
    const stream: BodyStream | undefined = download.stream;
    if (download.status !== 200 || !stream) {
        stream?.destroy();
        throw unexpected(source, download, "200");
    }
    const length = headerOf(download.headers, "content-length");
    if (length !== undefined && Number(length) !== size) {
        stream.destroy();
        throw registryError(
            `${source.name}: the blob ${digest} is ${shown(length, 40)} bytes, but its manifest says ${size}`,
            "protocol",
        );
    }
    // What went wrong on the way in (the source, the digest, the progress callback): the PATCH
    // then fails with undici's view of it, and this is the real reason.
    let failure: unknown;
    const every = Math.max(MiB, Math.ceil(size / 100));
    async function* verified(): AsyncGenerator<Buffer> {
        try {
            const hash = createHash(digest.split(":")[0]);
            let sent = 0;
            let reported = 0;
            for await (const chunk of stream as BodyStream) {
                if (copy.failure) {
                    throw registryError(`another blob failed: ${digest} stopped`, "invalid");
                }
                sent += chunk.length;
                if (sent > size) {
                    throw registryError(
                        `${source.name}: the blob ${digest} is longer than the ${size} bytes its manifest says`,
                        "protocol",
                    );
                }
                hash.update(chunk);
                yield chunk;
                if (sent - reported >= every && sent < size) {
                    reported = sent;
                    onProgress({ digest, phase: "uploading", bytes: sent, total: size });
                }
            }
            if (sent !== size) {
                throw registryError(
                    `${source.name}: the blob ${digest} ended after ${sent} of its ${size} bytes`,
                    "unreachable",
                );
            }
            const computed = `${digest.split(":")[0]}:${hash.digest("hex")}`;
            if (computed !== digest) {
                throw registryError(
                    `${source.name}: the registry served content for the blob ${digest} that hashes to ${computed}; ` +
                        "it was not committed to the destination",
                    "protocol",
                );
            }
        } catch (e) {
            failure = e;
            throw e;
        }
    }
    let patch: Answer;
    try {
        patch = await sessionStream(
            destination,
            "PATCH",
            location,
            { "Content-Type": "application/octet-stream", "Content-Length": String(size) },
            verified(),
        );
    } catch (e) {
        throw failure ?? e;
    } finally {
        stream.destroy();
    }
    if (failure) throw failure;
    // The spec says 202; ECR answers 201.
    if (patch.status !== 202 && patch.status !== 201) {
        throw unexpected(destination, patch, "202 (or 201)");
    }
    return headerOf(patch.headers, "location") ? uploadLocation(destination, patch) : location;
}
