/**
 * The registry client's entry point: does a tag exist in a repository, what digest is behind it,
 * what image config does it name; and the sessions a copy between repositories is
 * made of (copy.ts). Every request is bounded (`http.ts`: timeouts, deadlines, body caps,
 * retries, safe redirects, proxies as Docker picks them) and authenticated as Docker's client does
 * (`auth.ts`); a tag is absent only when the registry says so unambiguously (`lookupManifest`).
 * With credentials, the client authenticates before asking (registries hide private repositories
 * from anonymous requests behind a 404).
 *
 * Dynamic providers (the immutability guard's, the promotion's) carry these modules through
 * Pulumi's closure serialization: undici is the only package (see `http.ts`), everything else is
 * Node built-ins, and no class is defined in them (the serializer mishandles Error subclasses;
 * see `registryError`).
 */
import { authorized } from "./auth";
import {
    Operation,
    RegistryEndpoint,
    checkReference,
    isDigest,
    openSession,
    step,
} from "./endpoint";
import { registryError } from "./errors";
import { Answer, Exchange, MANIFEST_BYTES, closeSession } from "./http";
import {
    Found,
    childManifest,
    choosePlatform,
    fetchConfig,
    isIndex,
    lookupManifest,
    manifestJson,
    parsePlatform,
} from "./manifests";

export { checkSameRegistry, openSession } from "./endpoint";
export { closeSession } from "./http";
export type { RegistryEndpoint } from "./endpoint";
export type { RegistryError } from "./errors";

type ManifestLookup =
    | { readonly exists: false }
    | { readonly exists: true; readonly digest: string; readonly mediaType: string };

interface ImageConfig {
    /** Digest of the image manifest (the platform's manifest when the reference is an index). */
    readonly manifestDigest: string;
    readonly configDigest: string;
    /** `config.Labels` of the image config; empty when it has none. */
    readonly labels: Record<string, string>;
}

/** Looks up `<repository>:<reference>` (a tag or a digest), with HEAD first. */
export async function headManifest(
    endpoint: RegistryEndpoint,
    reference: string,
): Promise<ManifestLookup> {
    return withOperation(endpoint, reference, async (op) => {
        const found = await lookupManifest(op, reference, false);
        return found
            ? { exists: true, digest: found.digest, mediaType: found.mediaType }
            : { exists: false };
    });
}

/**
 * The image config behind `<repository>:<reference>`: an index or manifest list is resolved to
 * the manifest for `platform` (`os/arch[/variant]`; defaults to the only image in it, else
 * `linux/amd64`), then its config blob is fetched and verified. `undefined` when the reference is
 * absent.
 */
export async function getImageConfig(
    endpoint: RegistryEndpoint,
    reference: string,
    platform?: string,
): Promise<ImageConfig | undefined> {
    return withOperation(endpoint, reference, async (op) => {
        const wanted = platform === undefined ? undefined : parsePlatform(op, platform);
        const top = await lookupManifest(op, reference, true);
        if (!top?.body) return undefined;
        let image: Found = top;
        let json = manifestJson(op, image);
        if (isIndex(image.mediaType, json)) {
            const digest = choosePlatform(op, reference, json, wanted);
            image = await childManifest(op, reference, digest);
            json = manifestJson(op, image);
            if (isIndex(image.mediaType, json)) {
                throw registryError(
                    `${op.name}: ${digest} is an index inside an index`,
                    "protocol",
                );
            }
        }
        const config = json.config as { digest?: unknown; size?: unknown } | undefined;
        if (!config || typeof config.digest !== "string" || !isDigest(config.digest)) {
            throw registryError(
                `${op.name}: ${reference} (${image.mediaType || "unknown media type"}) is not an image manifest with a config blob`,
                "protocol",
            );
        }
        const blob = await fetchConfig(op, config.digest, config.size);
        let labels: Record<string, string> = {};
        try {
            const parsed = JSON.parse(blob.toString("utf8")) as { config?: { Labels?: unknown } };
            const raw = parsed?.config?.Labels;
            if (raw && typeof raw === "object") {
                labels = Object.fromEntries(
                    Object.entries(raw).filter(
                        (e): e is [string, string] => typeof e[1] === "string",
                    ),
                );
            }
        } catch {
            throw registryError(
                `${op.name}: the image config ${config.digest} is not JSON`,
                "protocol",
            );
        }
        return { manifestDigest: image.digest, configDigest: config.digest, labels };
    });
}

/** Runs one lookup of `reference`, checked before any request; closes its connections after. */
async function withOperation<T>(
    endpoint: RegistryEndpoint,
    reference: string,
    run: (op: Operation) => Promise<T>,
): Promise<T> {
    const op = openSession(endpoint);
    try {
        checkReference(op, reference);
        return await run(op);
    } finally {
        await closeSession(op);
    }
}

// ---------------------------------------------------------------------------------------------
// Sessions (see `openSession`): the primitives of a copy between repositories (lib/oci/copy.ts)

/**
 * The manifest behind `reference` by the rules of `headManifest`, with its body when asked:
 * absent only when the registry says so; the body verified.
 */
export async function findManifest(
    session: Operation,
    reference: string,
    withBody: boolean,
): Promise<Found | undefined> {
    const op = step(session);
    checkReference(op, reference);
    return lookupManifest(op, reference, withBody);
}

/**
 * One request of a session. `target` is a path relative to `apiUrl`, or a URL the registry named
 * (an upload location), which gets the Authorization only on the registry's own origin. GET and
 * HEAD follow redirects. Retried and bounded as a lookup's requests are, its answer read up to
 * MANIFEST_BYTES; an expired Bearer token is renewed once. `opts` as `Exchange` says; a body sent
 * as it is produced needs its Content-Length, and the session authenticated already (the upload's
 * POST does that).
 */
export async function sessionRequest(
    session: Operation,
    method: string,
    target: string | URL,
    headers: Record<string, string>,
    opts: Partial<Exchange> = {},
): Promise<Answer> {
    return authorized(step(session), method, target, headers, {
        maxBytes: MANIFEST_BYTES,
        ...opts,
        renew: true,
    });
}
