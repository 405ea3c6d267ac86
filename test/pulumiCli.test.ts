import { CliError, StackConfig, loadProject, programConfig } from "./support/pulumiCli";

// The model of the CLI's config handling, held to the CLI's own test cases: pulumi/pulumi
// pkg/workspace/config_project_test.go (TestStackConfig..., TestUntyped...), the help text and
// behaviour of `pulumi config set` (pkg/cmd/pulumi/config/config.go) and config/object.go.

const run = (projectYaml: string, stackYaml: string, stack = "dev") =>
    programConfig(new StackConfig(loadProject(projectYaml), stackYaml), stack);
const cliError = (f: () => unknown): string => {
    try {
        f();
    } catch (e) {
        if (e instanceof CliError) return e.message;
        throw e;
    }
    throw new Error("expected a CLI error");
};

describe("the CLI's config model: pulumi/pulumi's own cases", () => {
    it("TestStackConfigIsInheritedFromProjectConfig: project values fill in, as text", () => {
        const { config } = run(
            "name: test\nruntime: dotnet\nconfig:\n  instanceSize: t3.micro\n  instanceCount: 20\n  protect: true",
            "config:\n  test:instanceSize: t4.large",
        );
        expect(config).toEqual({
            "test:instanceSize": "t4.large",
            "test:instanceCount": "20",
            "test:protect": "true",
        });
    });

    it("TestNamespacedConfigValuesAreInheritedCorrectly: lists as JSON", () => {
        const { config } = run(
            'name: test\nruntime: dotnet\nconfig:\n  aws:region: us-west-1\n  pulumi:disable-default-providers: ["*"]\n  instanceSize: t3.micro',
            "config:\n  test:instanceSize: t4.large",
        );
        expect(config["aws:region"]).toBe("us-west-1");
        expect(config["pulumi:disable-default-providers"]).toBe('["*"]');
    });

    it("TestLoadingStackConfigWithoutNamespacingTheProject: a bare key is the project's", () => {
        const { config } = run(
            "name: test\nruntime: dotnet\nconfig:\n  aws:region: us-west-1\n  instanceSize: t3.micro",
            "config:\n  instanceSize: t4.large",
        );
        expect(config).toEqual({ "test:instanceSize": "t4.large", "aws:region": "us-west-1" });
    });

    it("TestUntypedProjectConfigValuesAreNotValidated and ...DoNeedProjectDeclaration", () => {
        expect(
            run(
                "name: test\nruntime: dotnet\nconfig:\n  instanceSize: t3.micro\n  aws:region: us-west-1",
                "config:\n  instanceSize: 9999\n  aws:region: 42",
            ).config,
        ).toEqual({ "test:instanceSize": "9999", "aws:region": "42" });
        expect(
            run(
                "name: test\nruntime: dotnet\nconfig:\n  createVpc: true",
                "config:\n  instanceSize: 42",
            ).config,
        ).toEqual({ "test:instanceSize": "42", "test:createVpc": "true" });
    });

    it("TestUntypedProjectConfigValuesWithOnlyDefaultOrOnlyValue and object values", () => {
        expect(
            run(
                "name: test\nruntime: dotnet\nconfig:\n  instanceSize:\n    default: t3.micro\n  region:\n    value: us-west-1",
                "config:\n  aws:answer: 42",
            ).config,
        ).toEqual({
            "test:instanceSize": "t3.micro",
            "test:region": "us-west-1",
            "aws:answer": "42",
        });
        expect(
            run(
                "name: test\nruntime: dotnet\nconfig:\n  instanceSize:\n    value:\n      hello: world",
                "",
            ).config,
        ).toEqual({ "test:instanceSize": '{"hello":"world"}' });
    });

    it("TestStackConfigErrorsWhenStackValueIsNotCorrectlyTyped", () => {
        expect(
            cliError(() =>
                run(
                    "name: test\nruntime: dotnet\nconfig:\n  values:\n    type: array\n    items:\n      type: string\n    default: [value]",
                    "config:\n  test:values: someValue\n",
                ),
            ),
        ).toBe("Stack 'dev' with configuration key 'values' must be of type 'array<string>'");
    });

    it("TestStackConfigIntegerTypeIsCorrectlyValidated", () => {
        const project =
            "name: test\nruntime: dotnet\nconfig:\n  importantNumber:\n    type: integer\n";
        expect(run(project, "config:\n  test:importantNumber: 20\n").config).toEqual({
            "test:importantNumber": "20",
        });
        expect(cliError(() => run(project, "config:\n  test:importantNumber: hello\n"))).toBe(
            "Stack 'dev' with configuration key 'importantNumber' must be of type 'integer'",
        );
    });

    it("TestStackConfigErrorsWhenMissing...: every missing key in one message, sorted", () => {
        const array = "    type: array\n    items:\n      type: string\n";
        expect(
            cliError(() => run(`name: test\nruntime: dotnet\nconfig:\n  values:\n${array}`, "")),
        ).toBe("Stack 'dev' is missing configuration value 'values'");
        expect(
            cliError(() =>
                run(
                    `name: test\nruntime: dotnet\nconfig:\n  another:\n    type: string\n  values:\n${array}`,
                    "",
                ),
            ),
        ).toBe("Stack 'dev' is missing configuration values 'another' and 'values'");
        expect(
            cliError(() =>
                run(
                    `name: test\nruntime: dotnet\nconfig:\n  hello:\n    type: integer\n  values:\n${array}  world:\n    type: string`,
                    "",
                ),
            ),
        ).toBe("Stack 'dev' is missing configuration values 'hello', 'values' and 'world'");
    });

    it("TestStackConfigDoesNotErrorWhenProjectHasNotDefinedConfig", () => {
        expect(
            run("name: test\nruntime: dotnet", "config:\n  hello: 21\n  world: 42").config,
        ).toEqual({ "test:hello": "21", "test:world": "42" });
    });

    it("TestStackConfigSecretIsCorrectlyValidated", () => {
        const project =
            "name: test\nruntime: dotnet\nconfig:\n  importantNumber:\n    type: integer\n    secret: true\n";
        const secure = Buffer.from("20").toString("base64");
        const valid = run(project, `config:\n  test:importantNumber:\n    secure: ${secure}\n`);
        expect(valid).toEqual({
            config: { "test:importantNumber": "20" },
            secretKeys: ["test:importantNumber"],
        });
        expect(cliError(() => run(project, "config:\n  test:importantNumber: 20\n"))).toBe(
            "Stack 'dev' with configuration key 'importantNumber' must be encrypted as it's secret",
        );
    });

    it("a secret key's declared default is a plain value, so the CLI refuses every stack that does not set it", () => {
        expect(
            cliError(() =>
                run(
                    'name: test\nruntime: nodejs\nconfig:\n  pw:\n    type: string\n    secret: true\n    default: ""\n',
                    "",
                ),
            ),
        ).toBe("Stack 'dev' with configuration key 'pw' must be encrypted as it's secret");
    });

    it("Project.Validate: a default of another type than declared", () => {
        expect(
            cliError(() =>
                loadProject(
                    "name: test\nruntime: nodejs\nconfig:\n  n:\n    type: integer\n    default: many\n",
                ),
            ),
        ).toBe(
            "The default value specified for configuration key 'n' is not of the expected type 'integer'",
        );
    });
});

describe("pulumi config set / rm, as the CLI stores them", () => {
    const project = loadProject(
        "name: test\nruntime: nodejs\nconfig:\n  names:\n    type: array\n    items:\n      type: string\n    default: []\n  flag:\n    type: boolean\n    default: false\n",
    );

    it("a top-level value is always a string; YAML booleans and numbers in a stack file are their text", () => {
        const stack = new StackConfig(project, "config:\n  test:flag: false\n  test:n: 007\n");
        stack.set("v", "true");
        expect(programConfig(stack, "dev").config).toMatchObject({
            "test:flag": "false",
            "test:v": "true",
            "test:n": "7",
        });
        expect(stack.toYaml()).toContain('test:v: "true"');
    });

    it("--path builds lists, coercing true/false and digits (not with a leading 0)", () => {
        const stack = new StackConfig(project)
            .set("names[0]", "a", { path: true })
            .set("names[1]", "42", { path: true })
            .set("names[2]", "007", { path: true });
        expect(cliError(() => programConfig(stack, "dev"))).toBe(
            "Stack 'dev' with configuration key 'names' must be of type 'array<string>'",
        );
        stack.rm("names[1]", { path: true });
        expect(programConfig(stack, "dev").config["test:names"]).toBe('["a","007"]');
        expect(() => stack.set("names[5]", "x", { path: true })).toThrow(
            "array index out of range",
        );
    });

    it("--secret stores a secure value: the program gets the text and the key is secret", () => {
        const stack = new StackConfig(project).set("password", "hunter2", { secret: true });
        expect(stack.toYaml()).not.toContain("hunter2");
        expect(programConfig(stack, "dev")).toMatchObject({
            config: { "test:password": "hunter2" },
            secretKeys: ["test:password"],
        });
    });

    it("rm of a key brings back its declared default; an empty value reads as an empty string", () => {
        const stack = new StackConfig(project, "config:\n  test:flag: true\n  test:empty:\n");
        stack.rm("flag");
        expect(programConfig(stack, "dev").config).toMatchObject({
            "test:flag": "false",
            "test:empty": "",
            "test:names": "[]",
        });
    });

    it("objects reach the program as Go's JSON: sorted keys, <, > and & escaped", () => {
        const stack = new StackConfig(project, "config:\n  test:o:\n    b: <&>\n    a: 1\n");
        expect(programConfig(stack, "dev").config["test:o"]).toBe(
            '{"a":1,"b":"\\u003c\\u0026\\u003e"}',
        );
    });
});
