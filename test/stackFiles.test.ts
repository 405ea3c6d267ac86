import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { listStacks, readProjectName, readStackConfig, stackFileName } from "../lib/stackFiles";

/** A project directory holding `files` (name -> text), removed after the test. */
function withProject(files: Record<string, string>, check: (dir: string) => void) {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), "stack-files-"));
    try {
        for (const [name, text] of Object.entries(files)) {
            fs.writeFileSync(path.join(dir, name), text);
        }
        check(dir);
    } finally {
        fs.rmSync(dir, { recursive: true, force: true });
    }
}

describe("listStacks", () => {
    it("this project: its four stacks", () => {
        expect(listStacks(".")).toEqual(["dev", "local", "prod", "staging"]);
    });

    it("only stack files with the project file's extension, as the Pulumi CLI finds them", () => {
        const stackFiles = {
            "Pulumi.dev.yaml": "",
            "Pulumi.qa.yml": "",
            "Pulumi.ci.json": "{}",
            "Pulumi.bad name.yaml": "",
            "PulumiPolicy.yaml": "",
        };
        withProject({ "Pulumi.yaml": "name: p\n", ...stackFiles }, (dir) => {
            expect(listStacks(dir)).toEqual(["dev"]);
            expect(stackFileName(dir, "dev")).toBe("Pulumi.dev.yaml");
        });
        withProject({ "Pulumi.yml": "name: p\n", ...stackFiles }, (dir) => {
            expect(listStacks(dir)).toEqual(["qa"]);
        });
        withProject({ "Pulumi.json": '{"name": "p"}', ...stackFiles }, (dir) => {
            expect(listStacks(dir)).toEqual(["ci"]);
            expect(readProjectName(dir)).toBe("p");
            expect(readStackConfig(dir, "ci")).toEqual({ config: {} });
        });
    });
});

describe("readProjectName and readStackConfig", () => {
    it("this project", () => {
        expect(readProjectName(".")).toBe("model-registry");
        const read = readStackConfig(".", "dev");
        expect("config" in read && read.config["model-registry:modelVersion"]).toBeTruthy();
    });

    it("say what is wrong with a file", () => {
        const files = {
            "Pulumi.yaml": "runtime: nodejs\n",
            "Pulumi.broken.yaml": "config: [unclosed\n",
            "Pulumi.scalar.yaml": "config: plain\n",
        };
        withProject(files, (dir) => {
            expect(readProjectName(dir)).toEqual({
                problem: `Pulumi.yaml in ${dir} has no name. Fix: set name: in Pulumi.yaml.`,
            });
            expect(readStackConfig(dir, "broken")).toEqual({
                problem: expect.stringMatching(/^it is not valid YAML \(.+\)$/),
            });
            expect(readStackConfig(dir, "scalar")).toEqual({
                problem: `"config" is not a mapping`,
            });
            expect(readStackConfig(dir, "absent")).toEqual({
                problem: expect.stringMatching(/^cannot read it \(ENOENT/),
            });
        });
    });
});
