const os = require("os");

/** @type {import('jest').Config} */
module.exports = {
    // jest's default, one core fewer than the machine has, runs every suite in one worker on a
    // 2-core machine while its own process idles: two workers there (npm test 217 s -> 142 s).
    maxWorkers: Math.max(2, os.availableParallelism() - 1),
    // tsconfig.json sets isolatedModules, so ts-jest transpiles each file without type-checking
    // it (fast); `tsc --noEmit` in .ci/run checks the types of everything once.
    preset: "ts-jest",
    testEnvironment: "node",
    roots: ["<rootDir>/test"],
    testMatch: ["**/*.test.ts"],
    setupFiles: ["<rootDir>/test/support/setup.ts"],
    // Checks once, before any suite starts, that the selected suites' tools (registry server,
    // Docker, skopeo) are installed, and fails the run with one message when they are not.
    testSequencer: "<rootDir>/test/support/sequencer.js",
    globalSetup: "<rootDir>/test/support/globalSetup.ts",
    // Suites that start a registry or a Docker engine set their own, longer timeouts.
    testTimeout: 30000,
};
