// jest's default order, and a note of the suites this run will start, for globalSetup
// (test/support/globalSetup.ts): it checks once, before any suite starts, that the tools those
// suites need are installed. jest sorts before it runs globalSetup, in the same process.
// jest loads this file itself, untranspiled: CommonJS.
// eslint-disable-next-line @typescript-eslint/no-require-imports
const Sequencer = require("@jest/test-sequencer").default;

const SELECTED = Symbol.for("model-registry.selectedSuites");

class RecordingSequencer extends Sequencer {
    sort(tests) {
        globalThis[SELECTED] = tests.map((t) => t.path);
        return super.sort(tests);
    }
}

module.exports = RecordingSequencer;
