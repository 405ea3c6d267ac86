// jest's testResultsProcessor for .ci/run: writes a summary of the run to the file named by
// MODEL_REGISTRY_TEST_RESULTS, for scripts/check-test-results.ts. (jest --json --outputFile
// would do too, but prints a "Test results written to" line into the log.)
// jest loads this file itself, untranspiled: CommonJS.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const fs = require("fs");

module.exports = function writeResults(results) {
    const file = process.env.MODEL_REGISTRY_TEST_RESULTS;
    if (!file) return results;
    const summary = {
        numPassedTests: results.numPassedTests,
        numFailedTests: results.numFailedTests,
        numPendingTests: results.numPendingTests,
        numTodoTests: results.numTodoTests,
        numRuntimeErrorTestSuites: results.numRuntimeErrorTestSuites,
        suites: results.testResults.map((suite) => ({
            path: suite.testFilePath,
            statuses: suite.testResults.map((test) => test.status),
        })),
    };
    fs.writeFileSync(file, `${JSON.stringify(summary, null, 1)}\n`);
    return results;
};
