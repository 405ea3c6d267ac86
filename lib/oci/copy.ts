/**
 * Copies an image from one repository to another by digest, without rebuilding it: "build once,
 * promote everywhere". The manifest bytes are copied exactly, so the destination's digest is the
 * source's, as `crane copy` and `skopeo copy` do it. An image index (or Docker manifest list) is
 * copied whole: every child manifest with its blobs first, then the index.
 *
 * Blobs go the way `docker push` sends them, which every registry takes (ECR's chunked uploads
 * deviate; see shared/reference/ecr-public.md; the transfer is in `blobs.ts`): what the
 * destination has is skipped, so an interrupted copy resumes where it stopped. Every request goes
 * through the registry client (auth, redirects, proxies, deadlines): a blob transfer is bounded by
 * the idle timeout between chunks, everything else as a lookup is.
 */
import { Copy, CopyCounts, CopyProgress, Descriptor, copyBlobs } from "./blobs";
import { closeSession, findManifest, openSession, sessionRequest } from "./client";
import { Operation, RegistryEndpoint, checkReference, isDigest, step } from "./endpoint";
import { RegistryError, registryError, shown } from "./errors";
import { headerOf, unexpected } from "./http";
import {
    Manifest,
    SCHEMA1_TYPES,
    childManifest,
    choosePlatform,
    isIndex,
    manifestJson,
    parsePlatform,
} from "./manifests";

export type { CopyProgress } from "./blobs";

interface CopyOptions {
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

export interface CopyResult extends Readonly<CopyCounts> {
    /** Manifest digest under the destination tag: the same as the source's. */
    readonly digest: string;
    readonly mediaType: string;
}

/** Indexes inside indexes are allowed, this deep. */
const MAX_DEPTH = 4;

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
    const dst = openSession(destination, "push,pull");
    // One registry (origin and path prefix), another repository: a blob can be mounted from the
    // source, with a token that may also pull it.
    const mount =
        src.base.origin + src.prefix === dst.base.origin + dst.prefix &&
        source.repository !== destination.repository;
    if (mount) dst.scopes = [`repository:${source.repository}:pull`];
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
        const image = await findManifest(src, sourceReference, true);
        if (!image?.body) {
            throw registryError(
                `${src.name}: ${sourceReference} does not exist, so there is nothing to copy`,
                "invalid",
            );
        }
        let top: Manifest = { ...image, body: image.body };
        if (options.platform !== undefined) {
            // As `getImageConfig` picks it.
            const wanted = parsePlatform(src, options.platform);
            const json = manifestJson(src, top);
            if (!isIndex(top.mediaType, json)) {
                throw registryError(
                    `${src.name}: ${top.digest} (${top.mediaType}) is not an index, so no platform can be chosen from it`,
                    "invalid",
                );
            }
            const child = choosePlatform(src, top.digest, json, wanted);
            top = await childManifest(step(src), sourceReference, child);
        }
        copy = {
            source: src,
            destination: dst,
            mount,
            onProgress: options.onProgress ?? (() => undefined),
            done: new Set(),
            counts: {
                manifests: 0,
                blobsUploaded: 0,
                bytesUploaded: 0,
                blobsSkipped: 0,
                blobsMounted: 0,
            },
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
            ...copy.counts,
        };
    } catch (e) {
        // An error before the copy started is "invalid", which `stopped` leaves as it is.
        const failure = (copy as Copy | undefined)?.failure;
        throw stopped(e, failure && failure.error === e ? failure.blob : undefined);
    } finally {
        await Promise.all([closeSession(src), closeSession(dst)]);
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
            `it?). The tag is left as it is; ${copy.counts.manifests > 0 || copy.counts.blobsUploaded > 0 ? "blobs and child manifests copied so far stay, untagged" : "nothing was written"}. ` +
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
    const index = isIndex(manifest.mediaType, json);
    if (!index && json.manifests !== undefined) {
        // Copied as an image, it would leave the children it names behind.
        throw registryError(
            `${source.name}: ${manifest.digest} names child manifests but is not an index ` +
                "(its manifests field is not a list, or it also has a config); it cannot be copied",
            "protocol",
        );
    }
    if (index) {
        if (depth >= MAX_DEPTH) {
            throw registryError(
                `${source.name}: ${manifest.digest} nests indexes more than ${MAX_DEPTH} deep`,
                "protocol",
            );
        }
        for (const child of descriptors(source, manifest.digest, json.manifests)) {
            if (copy.done.has(child.digest)) continue;
            const content = await childManifest(step(source), manifest.digest, child.digest);
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
        { body: manifest.body },
    );
    if (put.status !== 201 && put.status !== 200) throw unexpected(destination, put, "201");
    const stored = headerOf(put.headers, "docker-content-digest");
    if (stored !== undefined && stored !== manifest.digest) {
        throw registryError(
            `${destination.name}: the registry stored the manifest ${manifest.digest} as ${shown(stored, 140)}: it changed the bytes`,
            "protocol",
        );
    }
    copy.counts.manifests++;
}

/**
 * The descriptors of a manifest field, checked; foreign (non-distributable) layers, which live
 * at their URLs and which Docker never pushes, are left out.
 */
function descriptors(source: Operation, owner: string, field: unknown): Descriptor[] {
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
