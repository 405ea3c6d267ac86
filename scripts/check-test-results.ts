/**
 * Reads the summary of a jest run (written by test/support/resultsFile.js, jest's
 * testResultsProcessor in .ci/run) and prints one plain line. Fails when a test failed or a suite
 * did not run; under CI=true also when any test was skipped, or when a suite that needs a real
 * service (registry, Docker engine) did not pass tests: those must run in CI.
 * Usage: ts-node scripts/check-test-results.ts <results.json>
 */
import * as fs from "fs";

const MUST_RUN = [
    "test/guard.registry.test.ts",
    "test/registryClient.test.ts",
    "test/image.docker.test.ts",
];

export interface Results {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
    numTodoTests: number;
    numRuntimeErrorTestSuites: number;
    suites: { path: string; statuses: string[] }[];
}

/** The problems with a run; none when it passes. */
export function problems(r: Results, ci: boolean): string[] {
    const skipped = r.numPendingTests + r.numTodoTests;
    const found: string[] = [];
    if (r.numFailedTests > 0) found.push(`${r.numFailedTests} tests failed`);
    if (r.numRuntimeErrorTestSuites > 0)
        found.push(`${r.numRuntimeErrorTestSuites} test suites did not run`);
    if (ci) {
        if (skipped > 0) found.push(`${skipped} tests were skipped; under CI every test must run`);
        for (const suite of MUST_RUN) {
            const run = r.suites.find((s) => s.path.split("\\").join("/").endsWith(suite));
            const passed = run?.statuses.filter((s) => s === "passed").length ?? 0;
            if (passed === 0)
                found.push(`${suite} passed no test; it needs a real service and must run in CI`);
        }
    }
    return found;
}

function main(): number {
    const file = process.argv[2];
    if (!file || !fs.existsSync(file)) {
        console.error(`no jest results at ${file}: jest did not finish (see its output above)`);
        return 1;
    }
    const r = JSON.parse(fs.readFileSync(file, "utf8")) as Results;
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);
    const found = problems(r, process.env.CI === "true");
    if (found.length > 0) {
        console.error(found.join("\n"));
        return 1;
    }
    return 0;
}

if (require.main === module) process.exit(main());
