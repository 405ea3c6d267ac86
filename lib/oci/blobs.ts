/**
 * The blobs of a copy (lib/oci/copy.ts), each from the source to the destination as `docker push`
 * sends it: a HEAD skips what the destination has; within one registry a cross-repository mount
 * is tried first; otherwise POST an upload, ONE streaming PATCH of the whole blob, and the
 * closing PUT with its digest. A blob streams in chunks (memory stays flat whatever its size),
 * its digest checked on the way: content that does not match it is never committed.
 */
import { createHash } from "crypto";
import { sessionRequest } from "./client";
import type { Operation } from "./endpoint";
import { RegistryError, registryError, shown } from "./errors";
import { Answer, BodyStream, SMALL_BODY_BYTES, headerOf, unexpected } from "./http";

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

export interface Descriptor {
    readonly digest: string;
    readonly size: number;
}

/** What a copy has written and skipped so far; its result (`CopyResult`) gives them. */
export interface CopyCounts {
    /** Manifests written: the tagged one and, for an index, each child. 0 when the tag already named the digest. */
    manifests: number;
    blobsUploaded: number;
    bytesUploaded: number;
    /** Blobs the destination repository already had. */
    blobsSkipped: number;
    /** Blobs mounted from the source repository (same registry); nothing sent. */
    blobsMounted: number;
}

/** A copy in progress: its sessions, what it has done, and its counts. */
export interface Copy {
    readonly source: Operation;
    readonly destination: Operation;
    /** Same registry, another repository: try a cross-repository mount first. */
    readonly mount: boolean;
    readonly onProgress: (e: CopyProgress) => void;
    /** Blobs and child manifests already handled in this copy (indexes share layers). */
    readonly done: Set<string>;
    /** The first blob that failed, and why: the other transfers then stop. */
    failure?: { readonly error: unknown; readonly blob: Descriptor };
    readonly counts: CopyCounts;
}

/** Blobs of one manifest transferred at once, as `docker push` uploads them (5). */
const PARALLEL_BLOBS = 5;

/**
 * The blobs of one manifest, PARALLEL_BLOBS at a time, each once, the largest first (the copy
 * takes as long as its largest blob, and the small ones fit around it). The first failure stops
 * the others (a transfer in flight at its next chunk) and is thrown once they have stopped.
 */
export async function copyBlobs(copy: Copy, blobs: Descriptor[]): Promise<void> {
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
    const blobPath = `/v2/${destination.endpoint.repository}/blobs/${digest}`;
    const head = await sessionRequest(destination, "HEAD", blobPath, {});
    if (head.status === 200) {
        copy.counts.blobsSkipped++;
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
            copy.counts.blobsMounted++;
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
        const check = await sessionRequest(destination, "HEAD", blobPath, {}).catch(
            () => undefined,
        );
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
    copy.counts.blobsUploaded++;
    copy.counts.bytesUploaded += size;
    onProgress({ digest, phase: "uploaded", bytes: size, total: size });
}

/** Where an upload goes on: the Location of a 202 (or 201), relative or absolute, query kept. */
function uploadLocation(destination: Operation, res: Answer): URL {
    const location = headerOf(res.headers, "location");
    if (location && URL.canParse(location, res.url.href)) return new URL(location, res.url);
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
    const download = await sessionRequest(
        source,
        "GET",
        `/v2/${source.endpoint.repository}/blobs/${digest}`,
        {},
        { stream: true },
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
    const every = Math.max(1024 * 1024, Math.ceil(size / 100));
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
        patch = await sessionRequest(
            destination,
            "PATCH",
            location,
            { "Content-Type": "application/octet-stream", "Content-Length": String(size) },
            { body: verified(), maxBytes: SMALL_BODY_BYTES },
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
