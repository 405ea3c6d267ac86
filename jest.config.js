/** @type {import('jest').Config} */
module.exports = {
    preset: "ts-jest",
    testEnvironment: "node",
    roots: ["<rootDir>/test"],
    testMatch: ["**/*.test.ts"],
    setupFiles: ["<rootDir>/test/support/setup.ts"],
    // Suites that start a registry or a Docker engine set their own, longer timeouts.
    testTimeout: 30000,
};
