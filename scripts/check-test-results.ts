/**
 * Reads jest's JSON results (jest --json --outputFile=FILE) and prints one plain summary line.
 * Fails when a test failed; under CI=true also when any test was skipped, or when a suite that
 * needs a real service (registry, Docker engine) did not pass tests: those must run in CI.
 * Usage: ts-node scripts/check-test-results.ts <results.json>
 */
import * as fs from "fs";

const MUST_RUN = [
    "test/guard.registry.test.ts",
    "test/registryClient.test.ts",
    "test/image.docker.test.ts",
];

interface Results {
    numPassedTests: number;
    numFailedTests: number;
    numPendingTests: number;
    numTodoTests: number;
    numRuntimeErrorTestSuites: number;
    testResults: { name: string; assertionResults: { status: string }[] }[];
}

function main(): number {
    const file = process.argv[2];
    if (!file || !fs.existsSync(file)) {
        console.error(`no jest results at ${file}: did jest run?`);
        return 1;
    }
    const r = JSON.parse(fs.readFileSync(file, "utf8")) as Results;
    const skipped = r.numPendingTests + r.numTodoTests;
    console.log(`jest: ${r.numPassedTests} passed, ${r.numFailedTests} failed, ${skipped} skipped`);

    const problems: string[] = [];
    if (r.numFailedTests > 0) problems.push(`${r.numFailedTests} tests failed`);
    if (r.numRuntimeErrorTestSuites > 0)
        problems.push(`${r.numRuntimeErrorTestSuites} test suites did not run`);
    if (process.env.CI === "true") {
        if (skipped > 0)
            problems.push(`${skipped} tests were skipped; under CI every test must run`);
        for (const suite of MUST_RUN) {
            const found = r.testResults.find((t) => t.name.endsWith(suite));
            const passed = found?.assertionResults.filter((a) => a.status === "passed").length ?? 0;
            if (passed === 0)
                problems.push(
                    `${suite} passed no test; it needs a real service and must run in CI`,
                );
        }
    }
    if (problems.length > 0) {
        console.error(problems.join("\n"));
        return 1;
    }
    return 0;
}

process.exit(main());
