/** @type {import('jest').Config} */
module.exports = {
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
