import * as pulumi from "@pulumi/pulumi";
import { FINGERPRINT_LABEL, TagNow, digestOf, tamperReport } from "../lib/publication/guard";
import {
    REQUIRED_INPUTS,
    RegistryInputs,
    checkInputs,
    checkResult,
    endpointOf,
    forStack,
    recordKeyOf,
} from "../lib/publication/publishInputs";

import {
    RegistryEndpoint,
    closeSession,
    findManifest,
    getImageConfig,
    headManifest,
    openSession,
} from "../lib/oci/client";

const RECORD_INPUTS = [...REQUIRED_INPUTS, "repoDigest"] as const;

/** How many recorded versions are looked up at once. */
export const REVERIFY_CONCURRENCY = 8;

/**
 * What the registry holds now under each of `tags`: one HEAD per version, at most `cap` at once,
 * in one session (the first lookup authenticates, the others reuse it).
 */
export async function reverifyVersions(
    endpoint: RegistryEndpoint,
    tags: readonly string[],
    cap = REVERIFY_CONCURRENCY,
): Promise<Record<string, TagNow>> {
    const found: Record<string, TagNow> = {};
    if (tags.length === 0) return found;
    const session = openSession(endpoint);
    try {
        const look = async (tag: string) => {
            const m = await findManifest(session, tag, false);
            found[tag] = m ? { exists: true, digest: m.digest } : { exists: false };
        };
        await look(tags[0]);
        let next = 1;
        const worker = async () => {
            while (next < tags.length) await look(tags[next++]);
        };
        await Promise.all(Array.from({ length: Math.min(cap, tags.length - 1) }, worker));
    } finally {
        await closeSession(session);
    }
    return found;
}

/**
 * The versions of `history` but `except` against the registry (one request each), as
 * `tamperReport` reports them: which stop the run, which only warn (acknowledged).
 */
export async function reverifyHistory(
    i: Pick<RegistryInputs, "repositoryUri" | "acknowledged">,
    endpoint: RegistryEndpoint,
    history: Readonly<Record<string, { readonly digest: string }>>,
    except?: string,
): Promise<{ stop: string[]; warn: string[] }> {
    const found = await reverifyVersions(
        endpoint,
        Object.keys(history).filter((t) => t !== except),
    );
    return tamperReport(i.repositoryUri, history, found, i.acknowledged);
}

/** One published version, as the registry answered after the push. */
export interface PublishedVersion {
    readonly fingerprint: string;
    /** Manifest digest under the tag, `sha256:...`. */
    readonly digest: string;
}

/** The record's inputs as the dynamic provider sees them (plain values). */
export interface PublicationRecordInputs extends RegistryInputs {
    /**
     * docker.Image's `repoDigest`: `repo@sha256:...` when it pushed; the local image ID when it
     * only built (`skipPush`, the tag already held this content).
     */
    readonly repoDigest: string;
}

/** Versions by record key (see `recordKeyOf`), then by tag. */
export type ByRepository<T> = Readonly<Record<string, Readonly<Record<string, T>>>>;

/**
 * What a record of publications keeps (the publication record's, the promotion's): the last tag
 * published and its digest, every version in the current repository, every repository's by
 * record key, and, from the inputs, the key `history` follows and where `pulumi refresh`
 * re-verifies it (refresh gets only the outputs; the credentials are secret in the state, as the
 * input is).
 */
export interface RecordedVersions<V extends PublishedVersion>
    extends
        Pick<RegistryInputs, "repositoryUri" | "tag">,
        Partial<Omit<RegistryInputs, "repositoryUri" | "tag" | "fingerprint" | "platform">> {
    /** Manifest digest under the tag, `sha256:...`. */
    readonly digest: string;
    /** Every version this stack published to the current repository. */
    readonly history: Readonly<Record<string, V>>;
    /**
     * Every repository this stack published to, by record key, each with its versions: `history`
     * is the current one's. Nothing is dropped when the stack switches repositories, so a switch
     * back finds its versions recorded.
     */
    readonly histories?: ByRepository<V>;
}

/** What the stack keeps: the last publication and every version published. */
export interface PublicationRecordOutputs extends RecordedVersions<PublishedVersion> {
    readonly fingerprint: string;
}

/**
 * What a run records: the tag and its `digest`, the histories with the current one's, and where
 * refresh re-verifies them.
 */
export function recorded<V extends PublishedVersion>(
    i: Omit<RecordedVersions<V>, "digest" | "history" | "histories">,
    histories: ByRepository<V>,
    digest: string,
): RecordedVersions<V> {
    return {
        repositoryUri: i.repositoryUri,
        tag: i.tag,
        digest,
        history: histories[recordKeyOf(i) ?? ""],
        histories,
        ...(i.recordKey ? { recordKey: i.recordKey } : {}),
        apiUrl: i.apiUrl,
        repositoryPath: i.repositoryPath,
        ...(i.caCertificate ? { caCertificate: i.caCertificate } : {}),
        ...(i.credentials ? { credentials: i.credentials } : {}),
        ...(i.acknowledged ? { acknowledged: i.acknowledged } : {}),
    };
}

/** `o` without `key` (a form of the state this version no longer writes). */
export function without<T extends object>(o: T, key: keyof T): T {
    const copy = { ...o };
    delete copy[key];
    return copy;
}

/** A provider's inputs as a component passes them: each field an Input. */
export type ProviderArgs<T> = { readonly [K in keyof T]: pulumi.Input<T[K]> };

/**
 * A dynamic resource of this program (`model-registry:<type>`): its credentials kept secret in the
 * state, and each of `outputs` declared, undefined until the provider sets it, so it is an Output.
 */
export abstract class ProviderResource extends pulumi.dynamic.Resource {
    constructor(
        provider: pulumi.dynamic.ResourceProvider,
        type: string,
        name: string,
        args: Readonly<Record<string, unknown>> & { readonly credentials?: pulumi.Input<unknown> },
        outputs: readonly string[],
        opts?: pulumi.CustomResourceOptions,
    ) {
        const credentials = args.credentials ? pulumi.secret(args.credentials) : undefined;
        const declared = Object.fromEntries(outputs.map((key) => [key, undefined]));
        super(provider, name, { ...args, credentials, ...declared }, opts, "model-registry", type);
    }
}

/**
 * `create`, `update` and `delete` of a provider that records what it published (the guard, the
 * record, the promotion): create and update write what `apply` returns for the inputs and the
 * previous outputs (an error's `pulumi config` fixes naming the stack); delete only forgets, as a
 * published version is never deleted by this program.
 */
export function recording<I extends { readonly repositoryUri: string }, O>(
    apply: (inputs: I, previous: O | undefined) => Promise<O>,
) {
    const applied = async (inputs: I, previous: O | undefined) => {
        try {
            return await apply(inputs, previous);
        } catch (e) {
            const message = e instanceof Error ? forStack(inputs, e.message) : undefined;
            throw message === undefined || message === (e as Error).message
                ? e
                : new Error(message, { cause: e });
        }
    };
    return {
        async create(inputs: I) {
            return { id: inputs.repositoryUri, outs: await applied(inputs, undefined) };
        },
        async update(_id: string, olds: O, news: I) {
            return { outs: await applied(news, olds) };
        },
        async delete() {},
    };
}

/** The record's arguments: the registry-facing inputs, and what docker.Image reported. */
export type PublicationRecordArgs = ProviderArgs<PublicationRecordInputs>;

/**
 * After the image step: reads what the registry holds under the tag and records it. A push must
 * have left exactly docker.Image's digest under the tag (anything else is another publisher's
 * push in between, and the run fails with both digests); an adopted tag must still carry this
 * content's fingerprint label. Returns the record with this version added to the history.
 */
export async function recordPublication(
    inputs: PublicationRecordInputs,
    previous: Partial<PublicationRecordOutputs> | undefined,
): Promise<PublicationRecordOutputs> {
    const checked = checkInputs(inputs, "apply", RECORD_INPUTS);
    if (checked.problems.length > 0) throw new Error(checked.problems.join("\n"));
    const endpoint = endpointOf(inputs);
    const ref = `${inputs.repositoryUri}:${inputs.tag}`;
    const head = await headManifest(endpoint, inputs.tag);
    const key = recordKeyOf(inputs) ?? "";
    const histories = historiesOf(previous?.histories, recordKeyOf(previous), previous?.history);
    const earlier = histories[key]?.[inputs.tag];
    if (!head.exists) {
        throw new Error(
            earlier
                ? `${ref} was published by this stack as ${earlier.digest}, and the registry no longer ` +
                      `has the tag: someone deleted it outside this program. Fix: restore it ` +
                      `(skopeo copy docker://${inputs.repositoryUri}@${earlier.digest} docker://${ref}) ` +
                      `if the registry still has that image, or publish a new version.`
                : `the image step finished, but the registry has no ${ref}: the push did not land ` +
                      `(or someone deleted the tag at once). Nothing is recorded; run pulumi up again.`,
        );
    }
    const pushed = digestOf(inputs.repoDigest);
    if (pushed && pushed !== head.digest) {
        throw new Error(
            `${ref} holds ${head.digest}, but this run pushed ${pushed}: another publisher pushed ` +
                `the same tag at about the same time, and the registry kept the last push. ` +
                `Find out which image is the right ${inputs.tag} before anyone pulls it: compare ` +
                `${inputs.repositoryUri}@${head.digest} and ${inputs.repositoryUri}@${pushed}; then ` +
                `restore the right one under the tag (skopeo copy) or publish a new version. ` +
                `Only one stack should publish to a repository.`,
        );
    }
    const config = await getImageConfig(endpoint, head.digest, inputs.platform);
    const label = config?.labels[FINGERPRINT_LABEL];
    if (label !== inputs.fingerprint) {
        throw new Error(
            pushed
                ? `${ref} was pushed as ${head.digest}, but its image does not carry this content's ` +
                      `${FINGERPRINT_LABEL} label (found ${JSON.stringify(label ?? null)}): the ` +
                      `Dockerfile must set it from the MODEL_FINGERPRINT build arg, or later runs ` +
                      `cannot recognise this version.`
                : `${ref} changed after the guard checked it: it holds ${head.digest} with content ` +
                      `${JSON.stringify(label ?? null)}, not ${inputs.fingerprint}. Nothing was pushed.`,
        );
    }
    if (earlier && earlier.digest !== head.digest) {
        throw new Error(
            `${ref} now holds ${head.digest}, but this stack published it as ${earlier.digest} ` +
                `(content ${earlier.fingerprint}). The tag was deleted or overwritten outside this ` +
                `program, and this run published the version again. Anyone who pulled ` +
                `${inputs.tag} before may have other content. Fix: restore the recorded image ` +
                `(skopeo copy docker://${inputs.repositoryUri}@${earlier.digest} docker://${ref}) if ` +
                `the registry still has it, or publish a new version; the record keeps ` +
                `${earlier.digest} until then.`,
        );
    }
    histories[key] = {
        ...histories[key],
        [inputs.tag]: { fingerprint: inputs.fingerprint, digest: head.digest },
    };
    return { fingerprint: inputs.fingerprint, ...recorded(inputs, histories, head.digest) };
}

/**
 * Every repository's history carried in a state, by record key: `histories`, with an older
 * state's single `history` (the repository of record key `key`) under it.
 */
export function historiesOf<V>(
    histories: ByRepository<V> | undefined,
    key?: string,
    history?: Readonly<Record<string, V>>,
): Record<string, Record<string, V>> {
    const all: Record<string, Record<string, V>> = {};
    for (const [k, h] of Object.entries(histories ?? {})) all[k] = { ...h };
    if (key && history) all[key] = { ...history, ...all[key] };
    return all;
}

/**
 * The `read` of the record and the promotion (`pulumi refresh`): every recorded (or promoted)
 * version against the registry (one request each). A tag that moved or vanished, unless
 * acknowledged, fails the refresh with the version, the recorded digest and what the registry
 * holds now; the state is left as it was.
 */
export async function reverifyRecord(id: string, props: RecordedVersions<PublishedVersion>) {
    const { apiUrl, repositoryPath } = props;
    const history = props.history ?? {};
    if (apiUrl && repositoryPath && Object.keys(history).length > 0) {
        const endpoint = endpointOf({ ...props, apiUrl, repositoryPath });
        const { stop } = await reverifyHistory(props, endpoint, history);
        if (stop.length > 0) throw new Error(stop.join("\n"));
    }
    return { id, props };
}

/**
 * The record's dynamic provider. It changes when a new publication happened (another tag, other
 * content, another pushed digest), or when the registry no longer holds what it recorded (one
 * request in an unchanged run; the update then fails loudly). `delete` only forgets.
 */
export const publicationRecordProvider: pulumi.dynamic.ResourceProvider = {
    async check(_olds: Partial<PublicationRecordInputs>, news: PublicationRecordInputs) {
        return checkResult(news, checkInputs(news, "check", RECORD_INPUTS).problems);
    },

    async diff(_id: string, olds: PublicationRecordOutputs, news: PublicationRecordInputs) {
        const pushed = digestOf(news.repoDigest);
        const published =
            olds.repositoryUri !== news.repositoryUri ||
            olds.tag !== news.tag ||
            olds.fingerprint !== news.fingerprint ||
            (pushed !== undefined && pushed !== olds.digest) ||
            // Kept in the outputs for `pulumi refresh`, which sees only them.
            JSON.stringify(olds.acknowledged ?? {}) !== JSON.stringify(news.acknowledged ?? {}) ||
            olds.apiUrl !== news.apiUrl;
        if (published) return { changes: true, replaces: [] };
        // Nothing new was published: confirm, with one request, that the registry still holds
        // what this stack recorded. The image step does not push an unchanged version again, so
        // a tag deleted or moved since would otherwise go unnoticed; the update reports it.
        if (checkInputs(news, "check", RECORD_INPUTS).unknown)
            return { changes: false, replaces: [] };
        const head = await headManifest(endpointOf(news), news.tag);
        const holds = head.exists && head.digest === olds.digest;
        return { changes: !holds, replaces: [] };
    },

    ...recording(recordPublication),

    read: reverifyRecord,
};

/**
 * The stack's history of what it published, written after the push from what the registry
 * answers: `digest` is the manifest digest under the tag, and `history` maps every version this
 * stack published to this repository to its fingerprint and digest.
 */
export class PublicationRecord extends ProviderResource {
    declare public readonly digest: pulumi.Output<string>;
    declare public readonly history: pulumi.Output<Record<string, PublishedVersion>>;

    constructor(name: string, args: PublicationRecordArgs, opts?: pulumi.CustomResourceOptions) {
        super(
            publicationRecordProvider,
            "PublicationRecord",
            name,
            args,
            ["digest", "history"],
            opts,
        );
    }
}
