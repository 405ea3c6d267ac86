import { createHash } from "crypto";
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { modelBuildSpec } from "../lib/publication/buildSpec";
import { goModeString, hashContext } from "../lib/publication/contextHash";
import {
    DockerignoreError,
    parseDockerignore,
    readIgnoreFile,
} from "../lib/publication/dockerignore";

let tmp: string;
beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "ctx-"));
});
afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
});

/** Writes `files` under `tmp/name` with mode 644 whatever the umask, as a fresh checkout has. */
function makeContext(name: string, files: Record<string, string>): string {
    const dir = path.join(tmp, name);
    fs.mkdirSync(dir, { recursive: true });
    for (const [rel, content] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(dir, rel)), { recursive: true });
        fs.writeFileSync(path.join(dir, rel), content);
        fs.chmodSync(path.join(dir, rel), 0o644);
    }
    return dir;
}

/** Hashes as modelBuildSpec calls it: the Dockerfile path joined with the context. */
function hash(dir: string, dockerfile = path.join(dir, "Dockerfile")) {
    return hashContext(dir, dockerfile);
}

/** A Dockerfile the build spec accepts: it sets the guard's fingerprint label. */
const DOCKERFILE = [
    "FROM scratch",
    "ARG MODEL_PUBLISHER",
    "ARG MODEL_FINGERPRINT",
    'LABEL model-registry.publisher="${MODEL_PUBLISHER}" model-registry.fingerprint="${MODEL_FINGERPRINT}"',
    "COPY . /",
    "",
].join("\n");

const files = {
    Dockerfile: DOCKERFILE,
    "model.bin": "weights",
    "src/server.py": "print('hi')\n",
    ".dockerignore": "*.log\nsrc/__pycache__\n",
};

const sha = (data: string | Buffer): Buffer => createHash("sha256").update(data).digest();

describe("hashContext", () => {
    it("is the same for the same files anywhere, whatever their timestamps", async () => {
        const a = makeContext("a", files);
        const b = makeContext("b/deeper", files);
        fs.utimesSync(path.join(b, "model.bin"), new Date(2001, 1, 1), new Date(2001, 1, 1));
        const [ha, hb] = [await hash(a), await hash(b)];
        expect(ha.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
        expect(ha.digest).toBe(`sha256:${ha.contextDigest}`);
        expect(hb.digest).toBe(ha.digest);
        expect(ha.files).toEqual([".dockerignore", "Dockerfile", "model.bin", "src/server.py"]);
        // Every file once, and the Dockerfile a second time under its fixed name.
        const total = Object.values(files).reduce((n, s) => n + s.length, 0);
        expect(ha.bytes).toBe(total + DOCKERFILE.length);
        expect(ha.ignoreFile).toBe(path.join(a, ".dockerignore"));
    });

    it("computes docker.Image's contextDigest: name, Go mode string, SHA-256 of the content and a zero byte per entry, the Dockerfile first, then the walk", async () => {
        const dir = makeContext("c", {
            Dockerfile: "FROM scratch\n",
            "a/b.txt": "in a directory",
            "a-b": "dash",
            "a.txt": "dot",
        });
        fs.chmodSync(path.join(dir, "a-b"), 0o755);
        fs.symlinkSync("a.txt", path.join(dir, "link"));
        fs.mkdirSync(path.join(dir, "empty"));
        // The provider's accumulator, written out from provider/provider.go `hashPath`.
        const entry = (name: string, mode: string, content: string | Buffer) =>
            Buffer.concat([Buffer.from(name), Buffer.from(mode), sha(content), Buffer.of(0)]);
        const expected = createHash("sha256")
            .update(entry("Dockerfile", "----------", "FROM scratch\n"))
            // Walk order is per directory, by name: `a/` (and so `a/b.txt`) sorts before `a-b`.
            .update(entry("Dockerfile", "-rw-r--r--", "FROM scratch\n"))
            .update(entry("a/b.txt", "-rw-r--r--", "in a directory"))
            .update(entry("a-b", "-rwxr-xr-x", "dash"))
            .update(entry("a.txt", "-rw-r--r--", "dot"))
            .update(entry("link", "Lrwxrwxrwx", fs.realpathSync(path.join(dir, "a.txt"))))
            .digest("hex");
        const result = await hash(dir);
        expect(result.contextDigest).toBe(expected);
        expect(result.files).toEqual(["Dockerfile", "a/b.txt", "a-b", "a.txt", "link"]);
    });

    it("hashes a symlink as its resolved target, spelled from the working directory as the context is", async () => {
        const dir = makeContext("c", { Dockerfile: "FROM scratch\n", "model.bin": "w" });
        fs.symlinkSync("model.bin", path.join(dir, "link"));
        const rel = path.relative(process.cwd(), dir);
        const expected = createHash("sha256")
            .update(Buffer.concat([Buffer.from("Dockerfile----------"), sha("FROM scratch\n")]))
            .update(Buffer.of(0))
            .update(Buffer.concat([Buffer.from("Dockerfile-rw-r--r--"), sha("FROM scratch\n")]))
            .update(Buffer.of(0))
            .update(Buffer.concat([Buffer.from("link"), Buffer.from("Lrwxrwxrwx")]))
            .update(sha(path.join(rel, "model.bin")))
            .update(Buffer.of(0))
            .update(Buffer.concat([Buffer.from("model.bin-rw-r--r--"), sha("w"), Buffer.of(0)]))
            .digest("hex");
        expect((await hash(rel, path.join(rel, "Dockerfile"))).contextDigest).toBe(expected);
    });

    it("fails, as docker.Image's Check does, on a dangling symlink", async () => {
        const dir = makeContext("c", { Dockerfile: "FROM scratch\n" });
        fs.symlinkSync("missing.bin", path.join(dir, "link"));
        await expect(hash(dir)).rejects.toThrow(/could not evaluate symlink at .*link/);
    });

    // Each change that makes docker.Image build and push again must change our digest too.
    it.each([
        ["an edited file", (d: string) => fs.writeFileSync(path.join(d, "model.bin"), "weightz")],
        ["an added file", (d: string) => fs.writeFileSync(path.join(d, "extra.txt"), "")],
        ["a removed file", (d: string) => fs.rmSync(path.join(d, "src/server.py"))],
        [
            "a renamed file",
            (d: string) => fs.renameSync(path.join(d, "model.bin"), path.join(d, "model2.bin")),
        ],
        [
            "mode 644 to 664 (a clone under umask 002)",
            (d: string) => fs.chmodSync(path.join(d, "model.bin"), 0o664),
        ],
        ["mode 644 to 755", (d: string) => fs.chmodSync(path.join(d, "src/server.py"), 0o755)],
        ["mode 644 to 600", (d: string) => fs.chmodSync(path.join(d, "model.bin"), 0o600)],
        ["an added symlink", (d: string) => fs.symlinkSync("model.bin", path.join(d, "link.bin"))],
        [
            "a symlink pointed elsewhere",
            (d: string) => {
                fs.rmSync(path.join(d, "current"));
                fs.symlinkSync(".dockerignore", path.join(d, "current"));
            },
        ],
        [
            "an edited Dockerfile",
            (d: string) => fs.appendFileSync(path.join(d, "Dockerfile"), "# comment\n"),
        ],
        [
            "an edited .dockerignore (a file of the context)",
            (d: string) => fs.appendFileSync(path.join(d, ".dockerignore"), "# comment\n"),
        ],
    ])("changes with %s", async (_what, change) => {
        const dir = makeContext("c", files);
        fs.symlinkSync("Dockerfile", path.join(dir, "current"));
        const before = await hash(dir);
        change(dir);
        expect((await hash(dir)).digest).not.toBe(before.digest);
    });

    it.each([
        [
            "an edited ignored file",
            (d: string) => fs.writeFileSync(path.join(d, "train.log"), "more noise"),
        ],
        [
            "a file added to an ignored directory",
            (d: string) => fs.writeFileSync(path.join(d, "src/__pycache__/b.pyc"), "bytecode"),
        ],
        [
            "a chmod of an ignored file",
            (d: string) => fs.chmodSync(path.join(d, "train.log"), 0o600),
        ],
        ["an added empty directory", (d: string) => fs.mkdirSync(path.join(d, "empty"))],
        [
            "a new timestamp",
            (d: string) =>
                fs.utimesSync(path.join(d, "model.bin"), new Date(2001, 1, 1), new Date()),
        ],
    ])("does not change with %s, as docker.Image's does not", async (_what, change) => {
        const dir = makeContext("c", {
            ...files,
            "train.log": "noise",
            "src/__pycache__/a.pyc": "bytecode",
        });
        const before = await hash(dir);
        change(dir);
        const after = await hash(dir);
        expect(after.digest).toBe(before.digest);
        expect(after.files).not.toContain("train.log");
    });

    it("counts a Dockerfile that .dockerignore excludes", async () => {
        const dir = makeContext("c", { ...files, ".dockerignore": "Dockerfile\n" });
        const before = await hash(dir);
        expect(before.files).not.toContain("Dockerfile");
        fs.appendFileSync(path.join(dir, "Dockerfile"), "# comment\n");
        expect((await hash(dir)).digest).not.toBe(before.digest);
    });

    it("counts a Dockerfile outside the context, whatever its name or directory", async () => {
        const dir = makeContext("c", { "model.bin": "weights" });
        const one = makeContext("one", { "model.Dockerfile": "FROM scratch\n" });
        const two = makeContext("two", { "other.Dockerfile": "FROM scratch\n" });
        const before = await hash(dir, path.join(one, "model.Dockerfile"));
        expect(before.files).toEqual(["model.bin"]);
        // Only the content counts: the same text elsewhere, under another name, is the same.
        expect((await hash(dir, path.join(two, "other.Dockerfile"))).digest).toBe(before.digest);
        fs.appendFileSync(path.join(one, "model.Dockerfile"), "COPY . /\n");
        expect((await hash(dir, path.join(one, "model.Dockerfile"))).digest).not.toBe(
            before.digest,
        );
    });

    describe("the ignore file", () => {
        const ctx = () =>
            makeContext("c", {
                Dockerfile: "FROM scratch\n",
                ".dockerignore": "a.txt\n",
                "a.txt": "a",
                "b.txt": "b",
            });

        it("is <Dockerfile>.dockerignore when it exists, ahead of .dockerignore", async () => {
            const dir = ctx();
            const plain = await hash(dir);
            expect(plain.files).toEqual([".dockerignore", "Dockerfile", "b.txt"]);
            fs.writeFileSync(path.join(dir, "Dockerfile.dockerignore"), "b.txt\n.dockerignore\n");
            const specific = await hash(dir);
            expect(specific.ignoreFile).toBe(path.join(dir, "Dockerfile.dockerignore"));
            expect(specific.files).toEqual(["Dockerfile", "Dockerfile.dockerignore", "a.txt"]);
            expect(specific.digest).not.toBe(plain.digest);
            // Now a.txt counts and b.txt does not; .dockerignore is not read at all.
            fs.writeFileSync(path.join(dir, "b.txt"), "b2");
            fs.writeFileSync(path.join(dir, ".dockerignore"), "*\n");
            expect((await hash(dir)).digest).toBe(specific.digest);
            fs.writeFileSync(path.join(dir, "a.txt"), "a2");
            expect((await hash(dir)).digest).not.toBe(specific.digest);
        });

        it("sits next to the Dockerfile, also outside the context", async () => {
            const dir = ctx();
            const df = makeContext("df", { "model.Dockerfile": "FROM scratch\n" });
            fs.writeFileSync(path.join(df, "model.Dockerfile.dockerignore"), "b.txt\n");
            const result = await hash(dir, path.join(df, "model.Dockerfile"));
            expect(result.ignoreFile).toBe(path.join(df, "model.Dockerfile.dockerignore"));
            expect(result.files).toEqual([".dockerignore", "Dockerfile", "a.txt"]);
        });

        it("changes the digest when an edit changes what it excludes, even from outside the context", async () => {
            const dir = ctx();
            const df = makeContext("df", { "model.Dockerfile": "FROM scratch\n" });
            const ignore = path.join(df, "model.Dockerfile.dockerignore");
            fs.writeFileSync(ignore, "b.txt\n");
            const before = await hash(dir, path.join(df, "model.Dockerfile"));
            fs.writeFileSync(ignore, "b.txt\n# only a comment\n");
            expect((await hash(dir, path.join(df, "model.Dockerfile"))).digest).toBe(before.digest);
            fs.writeFileSync(ignore, "a.txt\n");
            expect((await hash(dir, path.join(df, "model.Dockerfile"))).digest).not.toBe(
                before.digest,
            );
        });

        it("is optional", async () => {
            const dir = makeContext("c", { Dockerfile: "FROM scratch\n", "a.txt": "a" });
            const result = await hash(dir);
            expect(result.ignoreFile).toBeUndefined();
            expect(result.files).toEqual(["Dockerfile", "a.txt"]);
        });

        it("fails the hash when Docker would refuse it, naming the file", async () => {
            const dir = makeContext("c", { Dockerfile: "FROM scratch\n", ".dockerignore": "!\n" });
            await expect(hash(dir)).rejects.toThrow(
                /unable to parse ".*\.dockerignore": illegal exclusion pattern: "!"/,
            );
        });
    });

    it("re-includes below an excluded directory with a wildcard `!` pattern (pulumi-docker's TestHashIgnoresWildcards)", async () => {
        const dir = makeContext("c", {
            Dockerfile: "FROM scratch\n",
            ".dockerignore": "*\n!projects/*/src\n",
            "projects/foo/src/app.js": "app",
            "projects/foo/dist/app.js": "built",
        });
        const before = await hash(dir);
        expect(before.files).toEqual(["projects/foo/src/app.js"]);
        fs.writeFileSync(path.join(dir, "projects/foo/dist/app.js"), "rebuilt");
        expect((await hash(dir)).digest).toBe(before.digest);
        fs.writeFileSync(path.join(dir, "projects/foo/src/app.js"), "changed");
        expect((await hash(dir)).digest).not.toBe(before.digest);
    });

    it("does not mistake file boundaries: moving bytes between files changes the digest", async () => {
        const a = await hash(makeContext("a", { Dockerfile: "", x: "ab", y: "c" }));
        const b = await hash(makeContext("b", { Dockerfile: "", x: "a", y: "bc" }));
        expect(a.digest).not.toBe(b.digest);
    });

    it("streams large files in chunks and hashes them whole", async () => {
        const dir = makeContext("big", { Dockerfile: "" });
        const big = Buffer.alloc(9 * 1024 * 1024 + 17, 7); // more than two 4 MiB read chunks
        fs.writeFileSync(path.join(dir, "weights.bin"), big);
        fs.chmodSync(path.join(dir, "weights.bin"), 0o644);
        const result = await hash(dir);
        const entry = (name: string, mode: string, content: Buffer) =>
            Buffer.concat([Buffer.from(name + mode), sha(content), Buffer.of(0)]);
        const expected = createHash("sha256")
            .update(entry("Dockerfile", "----------", Buffer.alloc(0)))
            .update(entry("Dockerfile", "-rw-r--r--", Buffer.alloc(0)))
            .update(entry("weights.bin", "-rw-r--r--", big))
            .digest("hex");
        expect(result.contextDigest).toBe(expected);
        expect(result.bytes).toBe(big.length);
    });

    it("says so when the context is not a directory", async () => {
        await expect(hashContext(path.join(tmp, "missing"), "Dockerfile")).rejects.toThrow(
            /is not a directory/,
        );
    });

    it("names a missing Dockerfile", async () => {
        const dir = makeContext("c", { "a.txt": "a" });
        await expect(hash(dir)).rejects.toThrow(/Dockerfile ".*c\/Dockerfile" does not exist/);
    });
});

describe("Go's FileMode.String", () => {
    it.each([
        [0o100644, "-rw-r--r--"],
        [0o100664, "-rw-rw-r--"],
        [0o100755, "-rwxr-xr-x"],
        [0o104755, "urwxr-xr-x"],
        [0o102755, "grwxr-xr-x"],
        [0o041777, "dtrwxrwxrwx"],
        [0o120777, "Lrwxrwxrwx"],
        [0o010644, "prw-r--r--"],
        [0o020620, "Dcrw--w----"],
        [0o060660, "Drw-rw----"],
        [0o140755, "-rwxr-xr-x"], // fsutil clears the socket bit
        [0, "----------"],
    ])("%o is %s", (mode, text) => {
        expect(goModeString(mode)).toBe(text);
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
            "[!c].bak",
            "**foo",
            "x+y.txt",
            "cache/**",
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
        ["!.bak", true], // `[!c]` is the class of `!` and `c`, not a negation
        ["c.bak", true],
        ["d.bak", false],
        ["barfoo", true], // `**foo` is any path that ends in `foo`
        ["x/afoo", true],
        ["x+y.txt", true], // regexp characters are literal
        ["xy.txt", false],
        ["cache", false], // `dir/**` matches below the directory only
        ["cache/x", true],
        ["model.json", false],
    ])("%s ignored: %s", (p, ignored) => {
        expect(m.ignores(p)).toBe(ignored);
    });

    it("lets the last matching rule win", () => {
        const n = parseDockerignore("!*.md\n*.md\n");
        expect(n.ignores("README.md")).toBe(true);
        expect(parseDockerignore("*.md\n!README.md\n").ignores("README.md")).toBe(false);
    });

    it("reads the file as ignorefile.ReadAll does", () => {
        expect(
            readIgnoreFile(
                "\ufeff#bom then comment\r\n #not a comment \n! /a/../b \n\n./c/\n/\n  \t\n../d\n",
            ),
        ).toEqual(["#not a comment", "!b", "c", "/", "../d"]);
    });

    it.each([
        ["!", /illegal exclusion pattern: "!"/],
        ["[", /syntax error in pattern "\["/],
        ["a\\", /syntax error in pattern/],
        ["[]a]", /syntax error in pattern/],
        ["[a-].txt", /syntax error in pattern/],
    ])("refuses %j, as Docker does", (text, message) => {
        expect(() => parseDockerignore(text)).toThrow(DockerignoreError);
        expect(() => parseDockerignore(text)).toThrow(message);
    });

    it("refuses a bad expression when it is first matched, as Docker does", () => {
        const bad = parseDockerignore("[z-a].txt\n");
        expect(() => bad.ignores("a.txt")).toThrow(/not a valid expression/);
    });
});

describe("modelBuildSpec", () => {
    it("gives copies of a context in different places the same checksum, but not the same fingerprint", async () => {
        const a = makeContext("one/model", files);
        const b = makeContext("two/x/model", files);
        const sa = await modelBuildSpec({ context: a, version: "1.0.0", platform: "linux/amd64" });
        const sb = await modelBuildSpec({ context: b, version: "1.0.0", platform: "linux/amd64" });
        expect(sb.modelSha256).toBe(sa.modelSha256);
        // docker.Image compares its build context path too: another path builds and pushes again.
        expect(sb.fingerprint).not.toBe(sa.fingerprint);
        const { MODEL_FINGERPRINT: fa, ...restA } = sa.args;
        const { MODEL_FINGERPRINT: fb, ...restB } = sb.args;
        expect(restB).toEqual(restA);
        expect(fb).not.toBe(fa);
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
        // The Dockerfile is excluded by .dockerignore here, yet docker.Image hashes it into its
        // context digest (and so rebuilds when it changes): the model checksum sees it too.
        fs.appendFileSync(path.join(dir, "Dockerfile"), "# comment\n");
        const edited = await modelBuildSpec({
            context: dir,
            version: "1.0.0",
            platform: "linux/amd64",
        });
        expect(edited.modelSha256).not.toBe(base.modelSha256);
        expect(edited.fingerprint).not.toBe(base.fingerprint);
    });

    it("hashes the context as docker.Image gets it: context and Dockerfile as passed", async () => {
        const dir = makeContext("m", { ...files, "model.bin": "w" });
        const spec = await modelBuildSpec({
            context: dir,
            version: "1.0.0",
            platform: "linux/amd64",
        });
        const direct = await hashContext(spec.context, spec.dockerfile);
        expect(spec.modelSha256).toBe(direct.digest);
        fs.chmodSync(path.join(dir, "model.bin"), 0o664);
        const after = await modelBuildSpec({
            context: dir,
            version: "1.0.0",
            platform: "linux/amd64",
        });
        expect(after.modelSha256).not.toBe(spec.modelSha256);
        expect(after.fingerprint).not.toBe(spec.fingerprint);
    });

    it("names a missing Dockerfile", async () => {
        const dir = makeContext("m", { "model.bin": "x" });
        await expect(
            modelBuildSpec({ context: dir, version: "1.0.0", platform: "linux/amd64" }),
        ).rejects.toThrow(/Dockerfile ".*m\/Dockerfile" does not exist/);
    });
});
