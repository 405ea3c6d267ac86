/**
 * Manifests as the registry stores them: looked up by tag or digest (absent only when the
 * registry says so unambiguously), their digests verified against the bytes served, an index
 * resolved to one platform's image, and blobs fetched by digest and verified.
 */
import { createHash } from "crypto";
import { authorized, confirmRegistry } from "./auth";
import { Operation, isDigest } from "./endpoint";
import { RegistryError, registryError, shown } from "./errors";
import { Answer, MANIFEST_BYTES, headerOf, isHtml, unexpected } from "./http";

/** An image index and a Docker manifest list: manifests that name other manifests. */
const INDEX_TYPES = [
    "application/vnd.oci.image.index.v1+json",
    "application/vnd.docker.distribution.manifest.list.v2+json",
];
/** Docker schema 1: signed (its digest covers only the payload), then unsigned. */
export const SCHEMA1_TYPES = [
    "application/vnd.docker.distribution.manifest.v1+prettyjws",
    "application/vnd.docker.distribution.manifest.v1+json",
];
/** Every manifest type a registry may store under a tag; a strict registry serves only these. */
const MANIFEST_ACCEPT = [
    INDEX_TYPES[0],
    "application/vnd.oci.image.manifest.v1+json",
    INDEX_TYPES[1],
    "application/vnd.docker.distribution.manifest.v2+json",
    ...SCHEMA1_TYPES,
    "application/vnd.oci.artifact.manifest.v1+json",
    "*/*;q=0.1",
].join(", ");

/** A manifest looked up, with its body when it was fetched with GET. */
export interface Found {
    readonly digest: string;
    readonly mediaType: string;
    /** The manifest exactly as the registry serves it. */
    readonly body?: Buffer;
}

export type Manifest = Required<Found>;

/**
 * The manifest behind `reference`, or `undefined` when the registry does not have it: only after
 * both HEAD and GET answered 404 (some registries mishandle one of them) and the endpoint proved
 * to be a registry. `withBody` asks with GET first, else HEAD first.
 */
export async function lookupManifest(
    op: Operation,
    reference: string,
    withBody: boolean,
): Promise<Found | undefined> {
    const path = `/v2/${op.endpoint.repository}/manifests/${reference}`;
    const headers = { Accept: MANIFEST_ACCEPT };
    const opts = { maxBytes: MANIFEST_BYTES };
    const [first, second] = withBody ? ["GET", "HEAD"] : ["HEAD", "GET"];
    let res = await authorized(op, first, path, headers, opts);
    if (res.status === 404) {
        checkNotFound(op, res);
        res = await authorized(op, second, path, headers, opts);
        if (res.status === 404) {
            checkNotFound(op, res);
            await confirmRegistry(op);
            return undefined;
        }
    }
    if (res.status !== 200) throw unexpected(op, res, "200 or 404");
    const digestHeader = headerOf(res.headers, "docker-content-digest");
    if (res.method === "HEAD" && (withBody || !digestHeader || !isDigest(digestHeader))) {
        // Some registries leave the digest out of HEAD answers: fetch the manifest and hash it.
        res = await authorized(op, "GET", path, headers, opts);
        if (res.status !== 200) throw unexpected(op, res, "200, as HEAD did");
    }
    return manifestFrom(op, reference, res);
}

/** The manifest `digest` that the index `reference` names, with its body; the registry must have it. */
export async function childManifest(
    op: Operation,
    reference: string,
    digest: string,
): Promise<Manifest> {
    const child = await lookupManifest(op, digest, true);
    if (!child?.body) {
        throw registryError(
            `${op.name}: the index ${reference} names ${digest}, which the registry does not have`,
            "protocol",
        );
    }
    return { ...child, body: child.body };
}

/** Digest and media type of a manifest answer, verified against the body when there is one. */
function manifestFrom(op: Operation, reference: string, res: Answer): Found {
    const header = headerOf(res.headers, "docker-content-digest");
    let mediaType = (headerOf(res.headers, "content-type") ?? "").split(";")[0].trim();
    const byDigest = isDigest(reference);
    if (header !== undefined && !isDigest(header)) {
        throw registryError(
            `${op.name}: ${res.method} ${res.url.pathname} sent an invalid Docker-Content-Digest "${shown(header, 140)}"`,
            "protocol",
        );
    }
    if (res.method === "HEAD") {
        const digest = header ?? reference;
        if (byDigest && digest !== reference) throw digestMismatch(op, reference, digest);
        return { digest, mediaType };
    }
    const body = res.body;
    if (!mediaType || mediaType === "application/json" || mediaType === "text/plain") {
        try {
            const json = JSON.parse(body.toString("utf8")) as { mediaType?: unknown };
            if (typeof json.mediaType === "string") mediaType = json.mediaType;
        } catch {
            // keep the header's type
        }
    }
    // A signed schema 1 manifest's digest covers its payload, without the signatures.
    const hashed = (mediaType === SCHEMA1_TYPES[0] && schema1Payload(body)) || body;
    const algorithm = (byDigest ? reference : (header ?? "sha256:")).split(":")[0];
    const computed = digestOf(algorithm, hashed);
    if (byDigest && computed !== reference) throw digestMismatch(op, reference, computed);
    if (header !== undefined && header.startsWith(`${algorithm}:`) && header !== computed) {
        throw registryError(
            `${op.name}: the manifest ${reference} hashes to ${computed}, but the registry says ${header}`,
            "protocol",
        );
    }
    return { digest: header ?? computed, mediaType, body };
}

/**
 * An image config by digest: redirects followed, size capped (`maxConfigBytes`, the size its
 * descriptor gives checked first), digest verified.
 */
export async function fetchConfig(op: Operation, digest: string, size: unknown): Promise<Buffer> {
    const maxBytes = op.endpoint.maxConfigBytes ?? 8 * 1024 * 1024;
    if (typeof size === "number" && size > maxBytes) {
        throw registryError(
            `${op.name}: the blob ${digest} is ${size} bytes, more than the ${maxBytes}-byte limit (maxConfigBytes)`,
            "protocol",
        );
    }
    const path = `/v2/${op.endpoint.repository}/blobs/${digest}`;
    const res = await authorized(op, "GET", path, {}, { maxBytes });
    if (res.status !== 200) throw unexpected(op, res, "200");
    const computed = digestOf(digest.split(":")[0], res.body);
    if (computed !== digest) throw digestMismatch(op, digest, computed);
    return res.body;
}

export function manifestJson(op: { readonly name: string }, found: Found): Record<string, unknown> {
    try {
        const json = JSON.parse((found.body ?? Buffer.alloc(0)).toString("utf8"));
        if (json && typeof json === "object" && !Array.isArray(json)) return json;
    } catch {
        // reported below
    }
    throw registryError(
        `${op.name}: the manifest ${found.digest} is not a JSON object`,
        "protocol",
    );
}

export function isIndex(mediaType: string, json: Record<string, unknown>): boolean {
    return (
        INDEX_TYPES.includes(mediaType) ||
        (Array.isArray(json.manifests) && json.config === undefined)
    );
}

interface Platform {
    readonly os: string;
    readonly architecture: string;
    readonly variant?: string;
}

export function parsePlatform(op: { readonly name: string }, platform: string): Platform {
    const m = /^([a-z0-9_.-]+)\/([a-z0-9_.-]+)(?:\/([a-z0-9_.-]+))?$/.exec(platform);
    if (!m) {
        throw registryError(
            `${op.name}: platform ${JSON.stringify(platform)} is not os/arch[/variant], e.g. linux/amd64 or linux/arm64/v8`,
            "invalid",
        );
    }
    return { os: m[1], architecture: m[2], variant: m[3] };
}

/** The digest of the manifest for `wanted` in an index (attestation entries do not count). */
export function choosePlatform(
    op: { readonly name: string },
    reference: string,
    index: Record<string, unknown>,
    wanted: Platform | undefined,
): string {
    const entries = (Array.isArray(index.manifests) ? index.manifests : [])
        .map((m) => m as { digest?: unknown; platform?: Partial<Platform> })
        .filter((m) => typeof m.digest === "string" && isDigest(m.digest))
        .filter((m) => !(m.platform?.os === "unknown" && m.platform?.architecture === "unknown"));
    const label = (p?: Partial<Platform>) =>
        p
            ? shown([p.os, p.architecture, p.variant].filter((x) => x).join("/"), 60)
            : "(no platform)";
    const target =
        wanted ?? (entries.length === 1 ? undefined : { os: "linux", architecture: "amd64" });
    const matches = target
        ? entries.filter(
              (m) =>
                  m.platform?.os === target.os &&
                  m.platform?.architecture === target.architecture &&
                  (target.variant === undefined || variantOf(m.platform) === variantOf(target)),
          )
        : entries;
    if (matches.length !== 1) {
        throw registryError(
            `${op.name}: the index ${reference} has ${matches.length === 0 ? "no" : "more than one"} image for ` +
                `${target ? label(target) : "the only platform"} (it has: ${entries.map((m) => label(m.platform)).join(", ") || "none"}); ` +
                "name the platform as os/arch[/variant]",
            "protocol",
        );
    }
    return matches[0].digest as string;
}

/** A platform's variant, with containerd's default for arm64 (`v8`) filled in. */
function variantOf(p: Partial<Platform> | undefined): string {
    return p?.variant ?? (p?.architecture === "arm64" ? "v8" : "");
}

function digestOf(algorithm: string, data: Buffer): string {
    return `${algorithm}:${createHash(algorithm).update(data).digest("hex")}`;
}

/** The signed payload of a schema 1 `prettyjws` manifest (what its digest covers). */
function schema1Payload(body: Buffer): Buffer | undefined {
    try {
        const jws = JSON.parse(body.toString("utf8")) as { signatures?: { protected?: string }[] };
        const header = JSON.parse(
            Buffer.from(jws.signatures?.[0]?.protected ?? "", "base64url").toString("utf8"),
        ) as { formatLength?: unknown; formatTail?: unknown };
        if (typeof header.formatLength !== "number" || typeof header.formatTail !== "string") {
            return undefined;
        }
        return Buffer.concat([
            body.subarray(0, header.formatLength),
            Buffer.from(header.formatTail, "base64url"),
        ]);
    } catch {
        return undefined;
    }
}

function digestMismatch(op: Operation, expected: string, actual: string): RegistryError {
    return registryError(
        `${op.name}: the registry served content for ${expected} that hashes to ${actual}`,
        "protocol",
    );
}

/** A 404 that is a web page, not a registry's answer, is not evidence of absence. */
function checkNotFound(op: Operation, res: Answer): void {
    if (isHtml(res)) {
        throw registryError(
            `${op.name}: ${res.method} ${res.url.pathname} answered 404 with a web page, not a registry error: ` +
                `${op.base.href} does not look like an OCI registry API. Check apiUrl (e.g. https://public.ecr.aws); nothing was pushed.`,
            "protocol",
        );
    }
}
