/**
 * The set-up the flow suites share (test/*.flow.test.ts, test/recordKey.registry.test.ts): the
 * services a suite starts before its tests and stops after them, model build contexts, and the
 * registry look-ups and deletes its assertions make. Each suite still calls `startRegistry(` and
 * `ensureDockerEngine(` in its own source: globalSetup reads the suites' sources to learn what a
 * run needs (support/tools.ts, suiteNeeds).
 */
import * as fs from "fs";
import * as net from "net";
import * as os from "os";
import * as path from "path";
import { headManifest } from "../../lib/oci/client";
import { Hosts, startHosts } from "./engine";
import { LocalRegistry, authorizedRequest } from "./registry";

interface Stoppable {
    stop(): Promise<void>;
}

/** Registers a started service to be stopped after the suite; returns it. */
type Keep = <S extends Stoppable>(service: S) => S;

const contexts: string[] = [];

/** Marks a directory the suite made to be removed after it; returns it. */
export function removedAfterSuite(dir: string): string {
    contexts.push(dir);
    return dir;
}

/**
 * Runs `start` in beforeAll and, in afterAll, stops what it kept (last kept, first stopped) and
 * removes the build contexts the suite made.
 */
export function useFlowServices(start: (keep: Keep) => Promise<void>): void {
    useServices(start, false);
}

/**
 * useFlowServices, and the provider hosts the engine model runs (support/engine.ts), started
 * beside `start`; the object returned holds them once beforeAll has run.
 */
export function useFlowEngine(start: (keep: Keep) => Promise<void>): Hosts {
    return useServices(start, true);
}

function useServices(start: (keep: Keep) => Promise<void>, withHosts: boolean): Hosts {
    const hosts = {} as Hosts;
    const started: Stoppable[] = [];
    const keep: Keep = (s) => (started.push(s), s);
    beforeAll(async () => {
        // Both settle before a failure is reported, so that afterAll stops all that started.
        const results = await Promise.allSettled([
            start(keep),
            withHosts && startHosts().then((h) => keep(Object.assign(hosts, h))),
        ]);
        for (const r of results) if (r.status === "rejected") throw r.reason;
    });
    afterAll(async () => {
        for (const service of started.reverse()) await service.stop();
        for (const dir of contexts.splice(0)) fs.rmSync(dir, { recursive: true, force: true });
    });
    return hosts;
}

/**
 * A small model build context, removed after the suite: FROM scratch, the labels the program's
 * Dockerfile carries (version, model checksum, publisher, fingerprint), `files` then model.json
 * copied in, model.json with `mode`.
 */
export function modelContext(
    model: string,
    opts: { mode?: number; files?: Record<string, string> } = {},
): string {
    const dir = removedAfterSuite(fs.mkdtempSync(path.join(os.tmpdir(), "model-ctx-")));
    const files = { ...opts.files, "model.json": model };
    fs.writeFileSync(
        path.join(dir, "Dockerfile"),
        [
            "FROM scratch",
            "ARG MODEL_VERSION",
            "ARG MODEL_SHA256",
            "ARG MODEL_PUBLISHER",
            "ARG MODEL_FINGERPRINT",
            'LABEL org.opencontainers.image.version="${MODEL_VERSION}" \\',
            '      model-registry.model.sha256="${MODEL_SHA256}" \\',
            '      model-registry.publisher="${MODEL_PUBLISHER}" \\',
            '      model-registry.fingerprint="${MODEL_FINGERPRINT}"',
            ...Object.keys(files).map((name) => `COPY ${name} /${name}`),
            "",
        ].join("\n"),
    );
    for (const [name, text] of Object.entries(files)) fs.writeFileSync(path.join(dir, name), text);
    fs.chmodSync(path.join(dir, "model.json"), opts.mode ?? 0o644);
    return dir;
}

/** The manifest digest `repository:tag` holds in `registry`, or undefined when there is none. */
export async function digestOf(
    registry: LocalRegistry,
    repository: string,
    tag: string,
): Promise<string | undefined> {
    const head = await headManifest(registry.endpoint(repository), tag);
    return head.exists ? head.digest : undefined;
}

/**
 * Deletes the manifest `repository:tag` names, as someone with delete rights could, and checks
 * that the tag is gone.
 */
export async function deleteTag(
    registry: LocalRegistry,
    repository: string,
    tag: string,
): Promise<void> {
    const digest = await digestOf(registry, repository, tag);
    if (!digest) throw new Error(`${repository}:${tag} is not there`);
    const res = await authorizedRequest(
        registry.endpoint(repository),
        "DELETE",
        `/v2/${repository}/manifests/${digest}`,
        {},
        "push,pull",
    );
    if (res.status !== 202) throw new Error(`DELETE answered ${res.status}`);
    expect(await digestOf(registry, repository, tag)).toBeUndefined();
}

/**
 * The registry "moved" to another port: a TCP forwarder on 127.0.0.1 whose every connection
 * reaches the same registry.
 */
export async function startForwarder(
    registry: LocalRegistry,
): Promise<{ port: number; stop(): Promise<void> }> {
    const [host, port] = registry.host.split(":");
    const server = net.createServer((client) => {
        const upstream = net.connect(Number(port), host);
        client.pipe(upstream).pipe(client);
        const close = () => {
            client.destroy();
            upstream.destroy();
        };
        client.on("error", close);
        upstream.on("error", close);
    });
    await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
    return {
        port: (server.address() as net.AddressInfo).port,
        stop: () => new Promise<void>((resolve) => server.close(() => resolve())),
    };
}
