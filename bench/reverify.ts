/**
 * Benchmark of re-verification: what each `pulumi up` (the guard's check) and `pulumi refresh`
 * (the record's read) pay to confirm every version a stack recorded. Prints figures; asserts
 * nothing (the tests do that).
 *
 *   npx ts-node --transpile-only bench/reverify.ts [versions]     # default 100
 *
 * Publishes `versions` small images to a local distribution registry (see test/support/tools.ts
 * for where its server is looked for), then re-verifies them all through a forwarder on
 * 127.0.0.1 that counts the requests and how many were in flight at once: wall time (best of 3),
 * requests per version, and the peak concurrency against the cap.
 */
import { REVERIFY_CONCURRENCY, reverifyVersions } from "../components/publicationRecord";
import { pushLabelledImage, startRegistry } from "../test/support/registry";
import { countingForwarder } from "./forwarder";

async function main(): Promise<void> {
    const arg = process.argv[2] ?? "100";
    if (!/^[1-9]\d{0,4}$/.test(arg)) {
        process.stderr.write("usage: ts-node bench/reverify.ts [versions (1-99999)]\n");
        process.exit(2);
    }
    const count = Number(arg);
    const registry = await startRegistry();
    const forwarder = await countingForwarder(registry.apiUrl);
    try {
        const repository = "bench/reverify";
        const tags = Array.from({ length: count }, (_, i) => `1.${i}.0`);
        const t0 = Date.now();
        for (const tag of tags) {
            await pushLabelledImage(registry.endpoint(repository), tag, { version: tag });
        }
        console.log(`published ${count} versions in ${Date.now() - t0} ms (setup)`);
        const endpoint = registry.endpoint(repository, { apiUrl: forwarder.url });
        const runs: number[] = [];
        for (let i = 0; i < 3; i++) {
            forwarder.reset();
            const start = process.hrtime.bigint();
            const found = await reverifyVersions(endpoint, tags);
            runs.push(Number(process.hrtime.bigint() - start) / 1e6);
            const present = Object.values(found).filter((f) => f.exists).length;
            if (present !== count) throw new Error(`only ${present} of ${count} found`);
        }
        const requests = forwarder.requests.length;
        const { peak } = forwarder.stats;
        console.log(
            `re-verify ${count} recorded versions: best ${Math.min(...runs).toFixed(1)} ms ` +
                `(runs: ${runs.map((r) => r.toFixed(1)).join(", ")} ms; goal under 1000 ms)`,
        );
        console.log(
            `requests: ${requests} (${(requests / count).toFixed(2)} per version); ` +
                `at most ${peak} in flight (cap ${REVERIFY_CONCURRENCY})`,
        );
    } finally {
        await forwarder.stop();
        await registry.stop();
    }
}

main().catch((e: Error) => {
    process.stderr.write(`${e.stack ?? e.message}\n`);
    process.exit(1);
});
