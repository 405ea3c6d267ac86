import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { modelBuildSpec } from "../lib/buildSpec";
import { hashContext } from "../lib/contextHash";
import { parseDockerignore } from "../lib/dockerignore";

let tmp: string;
beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ctx-"));
});
afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
});

function makeContext(name: string, files: Record<string, string>): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir, { recursive: true });
    for (const [rel, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), content);
    }
    return dir;
}

const files = {
    Dockerfile: "FROM scratch\nCOPY . /\n",
    "model.bin": "weights",
    "src/server.py": "print('hi')\n",
    ".dockerignore": "*.log\nsrc/__pycache__\n",
};

describe("hashContext", () => {
    it("is the same for the same files anywhere, whatever their timestamps", async () => {
        const a = makeContext("a", files);
        const b = makeContext("b/deeper", files);
        fs.utimesSync(path.join(b, "model.bin"), new Date(2001, 1, 1), new Date(2001, 1, 1));
        const [ha, hb] = [await hashContext(a), await hashContext(b)];
        expect(ha.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(hb.digest).toBe(ha.digest);
        expect(ha.files).toEqual([".dockerignore", "Dockerfile", "model.bin", "src/server.py"]);
        expect(ha.bytes).toBe(Object.values(files).reduce((n, s) => n + s.length, 0));
    });

    it.each([
        ["an edited file", (d: string) => fs.writeFileSync(path.join(d, "model.bin"), "weightz")],
        ["an added file", (d: string) => fs.writeFileSync(path.join(d, "extra.txt"), "")],
        ["a removed file", (d: string) => fs.rmSync(path.join(d, "src/server.py"))],
        [
            "a renamed file",
            (d: string) => fs.renameSync(path.join(d, "model.bin"), path.join(d, "model2.bin")),
        ],
        ["an executable bit", (d: string) => fs.chmodSync(path.join(d, "src/server.py"), 0o755)],
        ["a symlink", (d: string) => fs.symlinkSync("model.bin", path.join(d, "link.bin"))],
    ])("changes with %s", async (_what, change) => {
        const dir = makeContext("c", files);
        const before = await hashContext(dir);
        change(dir);
        expect((await hashContext(dir)).digest).not.toBe(before.digest);
    });

    it("ignores what .dockerignore leaves out of the context", async () => {
        const dir = makeContext("c", files);
        const before = await hashContext(dir);
        fs.writeFileSync(path.join(dir, "train.log"), "noise");
        fs.mkdirSync(path.join(dir, "src/__pycache__"));
        fs.writeFileSync(path.join(dir, "src/__pycache__/server.pyc"), "bytecode");
        const after = await hashContext(dir);
        expect(after.digest).toBe(before.digest);
        expect(after.files).not.toContain("train.log");
    });

    it("does not mistake file boundaries: moving bytes between files changes the digest", async () => {
        const a = await hashContext(makeContext("a", { x: "ab", y: "c" }));
        const b = await hashContext(makeContext("b", { x: "a", y: "bc" }));
        expect(a.digest).not.toBe(b.digest);
    });

    it("streams large files in chunks and hashes them whole", async () => {
        const dir = makeContext("big", {});
        const big = Buffer.alloc(9 * 1024 * 1024 + 17, 7); // more than two 4 MiB read chunks
        fs.writeFileSync(path.join(dir, "weights.bin"), big);
        const result = await hashContext(dir);
        const expected = createHash("sha256")
            .update(`file\0weights.bin\0-\0${big.length}\0`)
            .update(big)
            .digest("hex");
        expect(result.digest).toBe(`sha256:${expected}`);
        expect(result.bytes).toBe(big.length);
    });

    it("says so when the context is not a directory", async () => {
        await expect(hashContext(path.join(tmp, "missing"))).rejects.toThrow(/is not a directory/);
    });
});

describe(".dockerignore", () => {
    const m = parseDockerignore(
        [
            "# comment",
            "",
            "*.log",
            "/build",
            "**/__pycache__",
            "docs/**/*.md",
            "data/*",
            "!data/keep.csv",
            "secret?.txt",
            "[ab].tmp",
        ].join("\n"),
    );

    it.each([
        ["train.log", true],
        ["logs/train.log", false], // `*` stays within the top directory
        ["build", true],
        ["build/out.bin", true], // a matched directory excludes everything below it
        ["src/build", false],
        ["__pycache__/x.pyc", true],
        ["a/b/__pycache__/x.pyc", true],
        ["docs/readme.md", true],
        ["docs/a/b/c.md", true],
        ["data/train.csv", true],
        ["data/keep.csv", false], // re-included by `!`
        ["secret1.txt", true],
        ["secret12.txt", false],
        ["a.tmp", true],
        ["c.tmp", false],
        ["model.json", false],
    ])("%s ignored: %s", (p, ignored) => {
        expect(m.ignores(p)).toBe(ignored);
    });

    it("lets the last matching rule win", () => {
        const n = parseDockerignore("!*.md\n*.md\n");
        expect(n.ignores("README.md")).toBe(true);
        expect(parseDockerignore("*.md\n!README.md\n").ignores("README.md")).toBe(false);
    });
});

describe("modelBuildSpec", () => {
    it("gives the same build args and fingerprint for copies of a context in different places", async () => {
        const a = makeContext("one/model", files);
        const b = makeContext("two/x/model", files);
        const sa = await modelBuildSpec({ context: a, version: "1.0.0", platform: "linux/amd64" });
        const sb = await modelBuildSpec({ context: b, version: "1.0.0", platform: "linux/amd64" });
        expect(sb.args).toEqual(sa.args);
        expect(sb.fingerprint).toBe(sa.fingerprint);
    });

    it("changes the fingerprint with the Dockerfile, the build args and the platform", async () => {
        const dir = makeContext("m", { ...files, ".dockerignore": "Dockerfile\n" });
        const base = await modelBuildSpec({
            context: dir,
            version: "1.0.0",
            platform: "linux/amd64",
        });
        const variants = [
            await modelBuildSpec({ context: dir, version: "1.0.0", platform: "linux/arm64" }),
            await modelBuildSpec({
                context: dir,
                version: "1.0.0",
                platform: "linux/amd64",
                baseImage: "other:1",
            }),
            await modelBuildSpec({
                context: dir,
                version: "1.0.0",
                platform: "linux/amd64",
                revision: "abc",
            }),
        ];
        for (const v of variants) expect(v.fingerprint).not.toBe(base.fingerprint);
        // The Dockerfile is ignored by .dockerignore here, so only the fingerprint can see it change.
        fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\n");
        const edited = await modelBuildSpec({
            context: dir,
            version: "1.0.0",
            platform: "linux/amd64",
        });
        expect(edited.modelSha256).toBe(base.modelSha256);
        expect(edited.fingerprint).not.toBe(base.fingerprint);
    });

    it("names a missing Dockerfile", async () => {
        const dir = makeContext("m", { "model.bin": "x" });
        await expect(
            modelBuildSpec({ context: dir, version: "1.0.0", platform: "linux/amd64" }),
        ).rejects.toThrow(/Dockerfile ".*m\/Dockerfile" does not exist/);
    });
});
