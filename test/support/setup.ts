// Suites that run the program several times load a fresh @pulumi/pulumi each time
// (jest.resetModules), and each copy adds its own process exit handlers. That is expected here,
// not a leak; raise the warning threshold so real warnings stay visible.
process.setMaxListeners(64);
