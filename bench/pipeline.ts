/**
 * Benchmark of the image pipeline. Prints figures; asserts nothing (the tests do that). Its
 * options: `npm run bench -- --help` (bench/args.ts).
 *
 * 1. Checksum: the program's context hasher vs `sha256sum` on the same generated model file
 *    (warm page cache, best of 3), as a throughput ratio, and the hasher's peak RSS above its
 *    baseline, measured in a child process of its own.
 * 2. Layers: the example image with a model of that size in 4 shards (lib/publication/layers.ts lays them
 *    out). Push time of the same model as one layer and as the program lays it out, each into a
 *    fresh local registry that already holds the base image (best of 2), and their ratio; then
 *    publish 1.0.0, re-export one shard for 1.1.0, and report what the registry received for the
 *    second push (new blobs, bytes) against that shard's size.
 * 3. Build cache: wall time of an unchanged rebuild vs the first build.
 * 4. Guard: registry requests and wall time of the tag guard's check for the version just
 *    published, on its first run after the push (no record: it reads the image's labels) and on
 *    an unchanged run (it confirms the digest it recorded), counted by a forwarder in front of
 *    the registry. The record after the image step makes no request in an unchanged run.
 * 5. Promote: the version just published, copied by digest to a second local registry with
 *    `copyImage` (in a child process of its own, for its peak RSS above its baseline), against
 *    (1) a rebuild and push of the same version to another registry (`docker build --no-cache`
 *    of the same inputs, `docker push`) and (2) `skopeo copy` of the same image to a third
 *    repository; best of 3 for the copies, each into a fresh registry of its own; and whether
 *    the destination digests are the source's.
 * 2 to 5 need a Docker engine (started, as root or through sudo, when none answers), a registry
 * server and skopeo: see test/support/tools.ts for where they are looked for.
 */
import { execFileSync, spawnSync } from "child_process";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { TagGuardInputs, tagGuardProvider } from "../components/tagGuard";
import { publicationRecordProvider } from "../components/publicationRecord";
import { modelBuildSpec, ModelBuildSpec } from "../lib/publication/buildSpec";
import { headManifest } from "../lib/oci/client";
import { ChildCopy, copyInChildProcess, writeRandomFile } from "../test/support/copyFixtures";
import {
    baseImage,
    buildWithSpec,
    docker,
    dockerCli,
    ensureDockerEngine,
} from "../test/support/docker";
import { LocalRegistry, startRegistry, storedBlobs } from "../test/support/registry";
import { tool } from "../test/support/tools";
import { BenchArgs, GiB, HELP, MiB, parseBenchArgs, USAGE, UsageError } from "./args";
import { countingForwarder } from "./forwarder";

const PROJECT = path.resolve(__dirname, "..");

function human(bytes: number): string {
    if (bytes >= GiB) return `${(bytes / GiB).toFixed(2)} GiB`;
    if (bytes >= MiB) return `${(bytes / MiB).toFixed(1)} MiB`;
    return `${bytes} B`;
}

function best<T extends { seconds: number }>(runs: T[]): T {
    return runs.reduce((a, b) => (b.seconds < a.seconds ? b : a));
}

/** The program's hasher in a fresh process: elapsed time, and peak RSS above the baseline. */
function timeHasher(dir: string): { seconds: number; peakAboveBaseline: number; digest: string } {
    const script = `
        require("ts-node").register({ transpileOnly: true, project: ${JSON.stringify(path.join(PROJECT, "tsconfig.json"))} });
        const { hashContext } = require(${JSON.stringify(path.join(PROJECT, "lib/publication/contextHash.ts"))});
        global.gc && global.gc();
        const baseline = process.memoryUsage().rss;
        const t0 = process.hrtime.bigint();
        hashContext(${JSON.stringify(dir)}, ${JSON.stringify(path.join(dir, "Dockerfile"))}).then((r) => {
            const seconds = Number(process.hrtime.bigint() - t0) / 1e9;
            const peak = process.resourceUsage().maxRSS * 1024;
            process.stdout.write(JSON.stringify({ seconds, peakAboveBaseline: Math.max(0, peak - baseline), digest: r.digest }));
        });`;
    const out = execFileSync(process.execPath, ["--expose-gc", "-e", script], {
        encoding: "utf8",
        cwd: PROJECT,
    });
    return JSON.parse(out);
}

/** Runs a command to completion; its wall time in seconds. */
function timed(command: string, args: string[], cwd?: string): number {
    const t0 = process.hrtime.bigint();
    const r = spawnSync(command, args, { encoding: "utf8", cwd, maxBuffer: 64 * MiB });
    if (r.status !== 0) throw new Error(`${command} ${args.join(" ")} failed: ${r.stderr}`);
    return Number(process.hrtime.bigint() - t0) / 1e9;
}

async function checksum(size: number, work: string): Promise<void> {
    const dir = path.join(work, "hash");
    fs.mkdirSync(dir);
    const file = path.join(dir, "weights.bin");
    writeRandomFile(file, size);
    fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\nCOPY weights.bin /\n");
    const sha256sum = () => timed("sha256sum", [file]);
    // openssl uses the same SHA code as Node; a stricter reference than coreutils' own.
    const openssl = () => timed("openssl", ["dgst", "-sha256", file]);
    sha256sum(); // warm the page cache so every run reads from memory
    const tool = Math.min(sha256sum(), sha256sum(), sha256sum());
    const ssl = Math.min(openssl(), openssl(), openssl());
    const ours = best([timeHasher(dir), timeHasher(dir), timeHasher(dir)]);
    const rate = (seconds: number) => `${human(size / seconds)}/s`;
    console.log(`model file: ${human(size)} of random bytes`);
    console.log(
        `checksum throughput: program ${rate(ours.seconds)}, sha256sum ${rate(tool)}, ` +
            `ratio ${(tool / ours.seconds).toFixed(2)} (goal >= 0.90); ` +
            `openssl dgst -sha256 ${rate(ssl)}, ratio ${(ssl / ours.seconds).toFixed(2)}`,
    );
    console.log(
        `checksum memory: peak RSS ${human(ours.peakAboveBaseline)} above baseline (goal < 100 MiB)`,
    );
    fs.rmSync(dir, { recursive: true, force: true });
}

/** Shards of the bench model: its size split in this many files, as a sharded export is. */
const SHARDS = 4;

/**
 * The example context with a sharded model of `size` random bytes: model.json lists the shards
 * (weights/shard-<n>.bin), which the example Dockerfile lays out in layers (lib/publication/layers.ts).
 */
function makeModel(work: string, size: number): { ctx: string; shards: string[] } {
    const ctx = path.join(work, "model");
    fs.cpSync(path.join(PROJECT, "model"), ctx, { recursive: true });
    const shards = Array.from({ length: SHARDS }, (_, i) => `weights/shard-${i + 1}.bin`);
    const model = JSON.parse(fs.readFileSync(path.join(ctx, "model.json"), "utf8"));
    fs.writeFileSync(path.join(ctx, "model.json"), JSON.stringify({ ...model, shards }));
    fs.mkdirSync(path.join(ctx, "weights"));
    const each = Math.floor(size / SHARDS);
    shards.forEach((s, i) =>
        writeRandomFile(path.join(ctx, s), i < SHARDS - 1 ? each : size - each * (SHARDS - 1)),
    );
    return { ctx, shards };
}

/** Seconds `docker push` takes for a local image into a fresh registry. */
async function timedPush(local: string): Promise<number> {
    const registry = await startRegistry();
    const ref = `${registry.host}/bench/model:1.0.0`;
    try {
        await docker(["tag", local, ref]);
        return timed(dockerCli(), ["push", ref]);
    } finally {
        await registry.stop();
        await docker(["rmi", ref]).catch(() => undefined);
    }
}

async function pipeline(size: number, work: string): Promise<void> {
    await ensureDockerEngine();
    const base = baseImage();
    const { ctx, shards } = makeModel(work, size);
    const specFor = (version: string, oneLayer = false, from = base) =>
        modelBuildSpec({
            context: ctx,
            version,
            platform: "linux/amd64",
            baseImage: from,
            publisher: "model-registry/bench",
            // Each layout's generated Dockerfile in a directory of its own.
            layersDir: path.join(work, oneLayer ? "gen-one" : "gen"),
            parallelLayers: oneLayer ? 1 : undefined,
        });
    const local = {
        one: "model-registry-bench/one:1.0.0",
        laid: "model-registry-bench/laid:1.0.0",
        laidScratch: "model-registry-bench/laid-scratch:1.0.0",
    };
    const registry = await startRegistry();
    const ref = `${registry.host}/bench/model`;
    const tag = (v: string) => `${ref}:${v}`;
    try {
        const v1 = await specFor("1.0.0");
        let t0 = Date.now();
        await buildWithSpec(v1, local.laid, work);
        const firstBuild = (Date.now() - t0) / 1000;
        t0 = Date.now();
        await buildWithSpec(await specFor("1.0.0"), local.laid, work);
        const cachedBuild = (Date.now() - t0) / 1000;
        console.log(
            `build time: first build of the context ${firstBuild.toFixed(1)} s, unchanged rebuild ${cachedBuild.toFixed(2)} s ` +
                `(${((100 * cachedBuild) / firstBuild).toFixed(1)}% of the first; includes hashing the context)`,
        );
        // Push time, one layer against the program's layout: best of 2 (of 1 below 256 MiB,
        // where fixed costs drown the figure anyway), alternating. Both on
        // `scratch` instead of the base image (the Dockerfile runs nothing), so that only the
        // model and the server are pushed: the base's layers would be the same in both.
        const one = await specFor("1.0.0", true, "scratch");
        await buildWithSpec(one, local.one, work);
        const laid = await specFor("1.0.0", false, "scratch");
        await buildWithSpec(laid, local.laidScratch, work);
        const times = { one: [] as number[], laid: [] as number[] };
        for (let round = 0; round < (size >= 256 * MiB ? 2 : 1); round++) {
            times.one.push(await timedPush(local.one));
            times.laid.push(await timedPush(local.laidScratch));
        }
        const [t1, tn] = [Math.min(...times.one), Math.min(...times.laid)];
        const sizes = v1.layers.map((l) => human(l.bytes)).join(", ");
        console.log(
            `push time (${os.cpus().length} cores, best of ${times.one.length}): one layer (${one.layers.length}) ${t1.toFixed(1)} s ` +
                `[${times.one.map((t) => t.toFixed(1)).join(", ")}]; laid out in ${v1.layers.length} layers ` +
                `(${sizes}) ${tn.toFixed(1)} s [${times.laid.map((t) => t.toFixed(1)).join(", ")}]; ` +
                `ratio ${(tn / t1).toFixed(2)} (goal <= 0.6)`,
        );

        // A new version that re-exports one shard: what the registry receives.
        await docker(["tag", local.laid, tag("1.0.0")]);
        await docker(["push", tag("1.0.0")]);
        const before = storedBlobs(registry);
        const changed = shards[1];
        writeRandomFile(path.join(ctx, changed), fs.statSync(path.join(ctx, changed)).size);
        const v2 = await specFor("1.1.0");
        await buildWithSpec(v2, tag("1.1.0"), work);
        const pushSeconds = timed(dockerCli(), ["push", tag("1.1.0")]);
        const after = storedBlobs(registry);
        const added = [...after.keys()].filter((d) => !before.has(d));
        const addedBytes = added.reduce((n, d) => n + (after.get(d) ?? 0), 0);
        const shardBytes = fs.statSync(path.join(ctx, changed)).size;
        console.log(
            `one-shard change: registry received ${added.length} new blobs, ${human(addedBytes)} (${addedBytes} B) ` +
                `in ${pushSeconds.toFixed(1)} s; the shard ${human(shardBytes)} (${shardBytes} B); ` +
                `ratio ${(addedBytes / shardBytes).toFixed(4)} (goal <= 1.02); ${(addedBytes / size).toFixed(4)}x the model`,
        );
        await guardFigures(registry.apiUrl, "bench/model", v2);
        await promoteFigures(registry, "bench/model", v2, work);
    } finally {
        await registry.stop();
        for (const t of [tag("1.0.0"), tag("1.1.0"), ...Object.values(local)])
            await docker(["rmi", "-f", t]).catch(() => undefined);
    }
}

async function guardFigures(apiUrl: string, repository: string, spec: ModelBuildSpec) {
    const forwarder = await countingForwarder(apiUrl);
    try {
        const inputs: TagGuardInputs = {
            repositoryUri: `127.0.0.1:${forwarder.port}/${repository}`,
            apiUrl: forwarder.url,
            repositoryPath: repository,
            tag: spec.args.MODEL_VERSION,
            fingerprint: spec.fingerprint,
            platform: spec.platform,
            publisher: spec.args.MODEL_PUBLISHER,
        };
        const timed = async (olds: Partial<TagGuardInputs>) => {
            forwarder.reset();
            const t0 = process.hrtime.bigint();
            const result = await tagGuardProvider.check!(olds, inputs);
            const ms = Number(process.hrtime.bigint() - t0) / 1e6;
            if (result.failures?.length) throw new Error(result.failures[0].reason);
            return { ms, requests: forwarder.requests.length, inputs: result.inputs };
        };
        const first = await timed({});
        const unchanged = await timed(first.inputs);
        // The record's diff in an unchanged run: it confirms the recorded digest.
        forwarder.reset();
        const t0 = process.hrtime.bigint();
        const digest = String((first.inputs as TagGuardInputs).verifiedDigest);
        const diff = await publicationRecordProvider.diff!(
            "id",
            { ...inputs, digest },
            { ...inputs, repoDigest: `sha256:${"0".repeat(64)}` },
        );
        const recordMs = Number(process.hrtime.bigint() - t0) / 1e6;
        if (diff.changes) throw new Error("the record saw a change in an unchanged run");
        const recordRequests = forwarder.requests.length;
        console.log(
            `guard: first run after the push ${first.requests} registry requests in ${first.ms.toFixed(1)} ms ` +
                `(reads the image's labels); unchanged run: guard ${unchanged.requests} in ` +
                `${unchanged.ms.toFixed(1)} ms + record ${recordRequests} in ${recordMs.toFixed(1)} ms = ` +
                `${unchanged.requests + recordRequests} requests (goal <= 2)`,
        );
    } finally {
        await forwarder.stop();
    }
}

async function promoteFigures(
    source: LocalRegistry,
    repository: string,
    spec: ModelBuildSpec,
    work: string,
): Promise<void> {
    const skopeoCli = tool("skopeo");
    const version = spec.args.MODEL_VERSION;
    const published = await headManifest(source.endpoint(repository), version);
    if (!published.exists) throw new Error(`${repository}:${version} is not in the registry`);
    const from = `docker://${source.host}/${repository}:${version}`;
    const digestOf = async (registry: LocalRegistry, repo: string) => {
        const found = await headManifest(registry.endpoint(repo), version);
        return found.exists ? found.digest : "absent";
    };

    // Best of 3, each copy into a fresh registry of its own: a registry that already holds the
    // blobs commits them faster, and skopeo's blob-info cache remembers where it put them.
    const promotes: ChildCopy[] = [];
    const skopeos: number[] = [];
    const equal = { promoted: true, skopeo: true };
    for (let trial = 0; trial < 3; trial++) {
        const [ours, theirs] = await Promise.all([startRegistry(), startRegistry()]);
        try {
            promotes.push(
                await copyInChildProcess(
                    source.endpoint(repository),
                    version,
                    ours.endpoint("bench/promoted"),
                    version,
                ),
            );
            equal.promoted &&= (await digestOf(ours, "bench/promoted")) === published.digest;
            skopeos.push(
                timed(skopeoCli, [
                    "copy",
                    "--quiet",
                    "--src-tls-verify=false",
                    "--dest-tls-verify=false",
                    from,
                    `docker://${theirs.host}/bench/skopeo:${version}`,
                ]),
            );
            equal.skopeo &&= (await digestOf(theirs, "bench/skopeo")) === published.digest;
        } finally {
            await Promise.all([ours.stop(), theirs.stop()]);
        }
    }
    const promote = best(promotes);
    const skopeo = Math.min(...skopeos);
    const peak = Math.max(...promotes.map((p) => p.peakAboveBaseline));

    // The same inputs, built again from nothing and pushed: what promoting by rebuilding costs.
    const second = await startRegistry();
    const rebuilt = `${second.host}/bench/rebuilt:${version}`;
    let rebuild: number;
    let rebuiltDigest: string;
    try {
        const build = ["build", "--no-cache", "--platform", spec.platform, "-f", spec.dockerfile];
        for (const [k, v] of Object.entries(spec.args)) build.push("--build-arg", `${k}=${v}`);
        build.push("-t", rebuilt, "--progress", "plain", spec.context);
        rebuild = timed(dockerCli(), build, work) + timed(dockerCli(), ["push", rebuilt]);
        rebuiltDigest = await digestOf(second, "bench/rebuilt");
    } finally {
        await second.stop();
        await docker(["rmi", "-f", rebuilt]).catch(() => undefined);
    }

    console.log(
        `promote (best of 3): copyImage ${promote.seconds.toFixed(2)} s (${promote.result.blobsUploaded} blobs, ` +
            `${human(promote.result.bytesUploaded)}); rebuild+push ${rebuild.toFixed(1)} s; ` +
            `skopeo copy ${skopeo.toFixed(2)} s; ` +
            `ratio promote/rebuild ${(promote.seconds / rebuild).toFixed(3)} (goal <= 0.25), ` +
            `promote/skopeo ${(promote.seconds / skopeo).toFixed(2)} (goal <= 1.0)`,
    );
    console.log(
        `promote memory: peak RSS ${human(peak)} above baseline (goal < 100 MiB); ` +
            `digest equal to the source's: ${equal.promoted} (${published.digest}); ` +
            `skopeo's: ${equal.skopeo}; the rebuild's: ${rebuiltDigest === published.digest}`,
    );
}

async function main({ size, docker }: BenchArgs): Promise<void> {
    const work = fs.mkdtempSync(path.join(os.tmpdir(), "model-bench-"));
    console.log(
        `machine: ${os.cpus().length} cores, ${human(os.totalmem())} memory, node ${process.version}`,
    );
    try {
        await checksum(size, work);
        if (docker) await pipeline(size, work);
    } finally {
        fs.rmSync(work, { recursive: true, force: true });
    }
}

let args: BenchArgs;
try {
    args = parseBenchArgs(process.argv.slice(2), process.env);
} catch (e) {
    if (!(e instanceof UsageError)) throw e;
    console.error(`bench: ${e.message}\n${USAGE}`);
    process.exit(2);
}
if (args.help) {
    process.stdout.write(HELP);
} else {
    main(args).catch((e) => {
        console.error(e instanceof Error ? e.message : e);
        process.exit(1);
    });
}
