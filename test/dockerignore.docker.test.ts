/**
 * The `.dockerignore` table, checked against a real Docker engine: for each row, what the engine
 * actually sends to a build (`FROM scratch` + `COPY . /ctx/`, exported with `--output
 * type=local`), and what hashContext hashes for the same context.
 *
 * The engine here is Debian's docker.io 20.10 with BuildKit. Its client matches paths with older
 * copies of Docker's fileutils and of fsutil, while docker.Image's provider hashes with
 * github.com/moby/patternmatcher v0.6.0 and a newer fsutil. On most rows they agree, and so must
 * we. Where they do not, the row says what the engine does (`docker`) and, separately, what the
 * provider's matcher does (`provider`) and why; hashContext follows the provider, since it is
 * the provider's digest that decides whether docker.Image builds and pushes again.
 * @balena/dockerignore was run over this table too and is not used. It differs from this engine
 * on six rows: "case matters" (it ignores case by default), "[[:alpha:]] class", both wildcard
 * re-include rows, and it accepts a lone `!` and a trailing `\` that Docker refuses. Where the
 * provider differs from this engine (`**foo`, regexp characters) it sides with the engine.
 *
 * Never skipped: without Docker these tests fail with the command that installs it.
 */
import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { hashContext } from "../lib/publication/contextHash";
import { docker, ensureDockerEngine } from "./support/docker";

jest.setTimeout(10 * 60_000);

beforeAll(async () => {
    await ensureDockerEngine();
});

let tmp: string;
beforeEach(() => {
    tmp = fs.mkdtempSync(path.join(os.tmpdir(), "dockerignore-"));
});
afterEach(() => {
    fs.rmSync(tmp, { recursive: true, force: true });
});

/** The context every row starts from: each file holds its own name. */
const TREE = [
    "README.md",
    "a.md",
    "docs/guide.md",
    "docs/deep/x.md",
    "src/main.py",
    "src/lib/util.py",
    "src/lib/util.pyc",
    "src/__pycache__/m.pyc",
    "build/out.bin",
    "build/keep.txt",
    "sub/build/out.bin",
    "sub/build/keep.txt",
    "logs/2024/app.log",
    "app.log",
    "data/train.csv",
    "data/keep.csv",
    "data/raw/keep.csv",
    "a.txt",
    "b.txt",
    "d.txt",
    "1.txt",
    "!.txt",
    "x+y.txt",
    "xy.txt",
    "(draft).txt",
    "file{1}.txt",
    "a|b.txt",
    "star*.txt",
    "starX.txt",
    "q?.txt",
    "qa.txt",
    "#hash.txt",
    "!bang.txt",
    "sp ace.txt",
    "UPPER.TXT",
    "upper.txt",
    "abfoo",
    "x/afoo",
];
const LINKS: Record<string, string> = { "link.txt": "a.txt" };
const ALL = [...TREE, ...Object.keys(LINKS), ".dockerignore"].sort();

/** What a build context leaves out: listed, or everything but what is listed; or a failure. */
type Outcome = { excludes: string[] } | { keeps: string[] } | { fails: RegExp };

interface Row {
    readonly name: string;
    /** The `.dockerignore` text. */
    readonly ignore: string;
    /** What this Docker engine does. */
    readonly docker: Outcome;
    /** What docker.Image's matcher does, where it differs from this engine; and why. */
    readonly provider?: { readonly outcome: Outcome; readonly why: string };
}

const NEWER_FSUTIL =
    "this engine's fsutil stops at an excluded directory unless a `!` pattern starts with its " +
    "path; the provider's fsutil (filterFS, 2023 on) walks on when a `!` pattern has a " +
    "wildcard, and re-includes what it matches (pulumi-docker's TestHashIgnoresWildcards)";

const ROWS: Row[] = [
    {
        name: "leading slash",
        ignore: "/build\n",
        docker: { excludes: ["build/keep.txt", "build/out.bin"] },
    },
    {
        name: "dot slash",
        ignore: "./build\n",
        docker: { excludes: ["build/keep.txt", "build/out.bin"] },
    },
    {
        name: "directory with a trailing slash",
        ignore: "build/\n",
        docker: { excludes: ["build/keep.txt", "build/out.bin"] },
    },
    {
        name: "directory without a slash",
        ignore: "build\n",
        docker: { excludes: ["build/keep.txt", "build/out.bin"] },
    },
    { name: "*.md at the top only", ignore: "*.md\n", docker: { excludes: ["README.md", "a.md"] } },
    {
        name: "**/ prefix",
        ignore: "**/*.md\n",
        docker: { excludes: ["README.md", "a.md", "docs/deep/x.md", "docs/guide.md"] },
    },
    {
        name: "**/ prefix on a directory",
        ignore: "**/build\n",
        docker: {
            excludes: [
                "build/keep.txt",
                "build/out.bin",
                "sub/build/keep.txt",
                "sub/build/out.bin",
            ],
        },
    },
    {
        name: "/** suffix",
        ignore: "docs/**\n",
        docker: { excludes: ["docs/deep/x.md", "docs/guide.md"] },
    },
    {
        name: "** in the middle",
        ignore: "logs/**/*.log\n",
        docker: { excludes: ["logs/2024/app.log"] },
    },
    {
        name: "** without a slash",
        ignore: "**foo\n",
        docker: { excludes: [] },
        provider: {
            outcome: { excludes: ["abfoo", "x/afoo"] },
            why:
                "patternmatcher v0.6.0 turns a leading `**` into a suffix match (any path ending " +
                "in `foo`); this engine's fileutils made it `^(.*/)?foo$`",
        },
    },
    {
        name: "** with a directory re-included",
        ignore: "**\n!src\n",
        docker: {
            keeps: ["src/__pycache__/m.pyc", "src/lib/util.py", "src/lib/util.pyc", "src/main.py"],
        },
    },
    {
        name: "* with a deep wildcard re-include",
        ignore: "*\n!src/lib/*.py\n",
        docker: { keeps: ["src/lib/util.py"] },
    },
    {
        name: "! re-include inside an excluded directory",
        ignore: "data\n!data/keep.csv\n",
        docker: { excludes: ["data/raw/keep.csv", "data/train.csv"] },
    },
    {
        name: "! wildcard re-include deeper inside an excluded directory",
        ignore: "data\n!data/*/keep.csv\n",
        docker: { excludes: ["data/keep.csv", "data/raw/keep.csv", "data/train.csv"] },
        provider: { outcome: { excludes: ["data/keep.csv", "data/train.csv"] }, why: NEWER_FSUTIL },
    },
    {
        name: "! re-include with a leading wildcard",
        ignore: "data\n!*/keep.csv\n",
        docker: { excludes: ["data/keep.csv", "data/raw/keep.csv", "data/train.csv"] },
        provider: {
            outcome: { excludes: ["data/raw/keep.csv", "data/train.csv"] },
            why: NEWER_FSUTIL,
        },
    },
    {
        name: "last match wins",
        ignore: "docs\n!docs/guide.md\ndocs/guide.md\n",
        docker: { excludes: ["docs/deep/x.md", "docs/guide.md"] },
    },
    {
        name: "*/ one level down",
        ignore: "*/build\n",
        docker: { excludes: ["sub/build/keep.txt", "sub/build/out.bin"] },
    },
    {
        name: "**/ directory with a file re-included",
        ignore: "**/build\n!sub/build/keep.txt\n",
        docker: { excludes: ["build/keep.txt", "build/out.bin", "sub/build/out.bin"] },
    },
    { name: "[a-c] range", ignore: "[a-c].txt\n", docker: { excludes: ["a.txt", "b.txt"] } },
    {
        name: "[!a] is not a negation",
        ignore: "[!a].txt\n",
        docker: { excludes: ["!.txt", "a.txt"] },
    },
    {
        name: "[^a] negation",
        ignore: "[^a].txt\n",
        docker: { excludes: ["!.txt", "1.txt", "b.txt", "d.txt"] },
    },
    {
        name: "[[:alpha:]] class",
        ignore: "[[:alpha:]].txt\n",
        docker: { excludes: ["a.txt", "b.txt", "d.txt"] },
    },
    { name: "\\d class", ignore: "\\d.txt\n", docker: { excludes: ["1.txt"] } },
    { name: "# comments", ignore: "# *.txt\n#hash.txt\n", docker: { excludes: [] } },
    {
        name: "# after a space is a pattern",
        ignore: " #hash.txt\n",
        docker: { excludes: ["#hash.txt"] },
    },
    { name: "\\# escape", ignore: "\\#hash.txt\n", docker: { excludes: ["#hash.txt"] } },
    { name: "\\! escape", ignore: "\\!bang.txt\n", docker: { excludes: ["!bang.txt"] } },
    {
        name: "\\* and \\? escapes",
        ignore: "star\\*.txt\nq\\?.txt\n",
        docker: { excludes: ["q?.txt", "star*.txt"] },
    },
    {
        name: "* and ? unescaped",
        ignore: "star*.txt\nq?.txt\n",
        docker: { excludes: ["q?.txt", "qa.txt", "star*.txt", "starX.txt"] },
    },
    {
        name: "trailing spaces",
        ignore: "app.log   \nsp ace.txt \n",
        docker: { excludes: ["app.log", "sp ace.txt"] },
    },
    {
        name: "CRLF line ends",
        ignore: "app.log\r\n*.md\r\n",
        docker: { excludes: ["README.md", "a.md", "app.log"] },
    },
    {
        name: "byte order mark",
        ignore: "\ufeff*.md\n",
        docker: { excludes: ["README.md", "a.md"] },
    },
    {
        name: ".. cleaned",
        ignore: "docs/../build\n../app.log\n/../a.md\n",
        docker: { excludes: ["a.md", "build/keep.txt", "build/out.bin"] },
    },
    {
        name: "regexp characters",
        ignore: "x+y.txt\n(draft).txt\nfile{1}.txt\na|b.txt\n",
        docker: {
            excludes: ["a.md", "a.txt", "abfoo", "app.log", "a|b.txt", "b.txt", "xy.txt"],
        },
        provider: {
            outcome: { excludes: ["(draft).txt", "a|b.txt", "file{1}.txt", "x+y.txt"] },
            why:
                "patternmatcher escapes `. + ( ) | { } $`; this engine's fileutils only `.` and " +
                "`$`, so `x+y.txt` matched xy.txt and `a|b.txt` was an alternation",
        },
    },
    { name: "case matters", ignore: "upper.TXT\n", docker: { excludes: [] } },
    {
        name: ".dockerignore excluding itself",
        ignore: ".dockerignore\n*.md\n",
        docker: { excludes: [".dockerignore", "README.md", "a.md"] },
    },
    { name: "/ and . match nothing", ignore: "/\n.\n", docker: { excludes: [] } },
    { name: "a lone !", ignore: "!\n", docker: { fails: /illegal exclusion pattern: "!"/ } },
    { name: "an unterminated [", ignore: "[\n", docker: { fails: /syntax error in pattern/ } },
    { name: "a trailing \\", ignore: "a\\\n", docker: { fails: /syntax error in pattern/ } },
    {
        name: "a reversed range",
        ignore: "[z-a].txt\n",
        docker: { fails: /failed to match excludepatterns: syntax error in pattern/ },
        provider: {
            outcome: { fails: /not a valid expression for Docker's matcher/ },
            why: "the same refusal, in our words",
        },
    },
];

/** Writes the context; the Dockerfile sits outside it unless `files` holds one. */
function makeRow(ignore: string, files: Record<string, string> = {}): string {
    const ctx = path.join(tmp, "ctx");
    for (const rel of TREE) {
        fs.mkdirSync(path.dirname(path.join(ctx, rel)), { recursive: true });
        fs.writeFileSync(path.join(ctx, rel), rel);
    }
    for (const [link, target] of Object.entries(LINKS)) {
        fs.symlinkSync(target, path.join(ctx, link));
    }
    fs.writeFileSync(path.join(ctx, ".dockerignore"), ignore);
    for (const [rel, text] of Object.entries(files)) {
        fs.mkdirSync(path.dirname(path.join(tmp, rel)), { recursive: true });
        fs.writeFileSync(path.join(tmp, rel), text);
    }
    return ctx;
}

const COPY_ALL = "FROM scratch\nCOPY . /ctx/\n";

/** The files (and symlinks) a build with this Dockerfile and context actually received. */
async function sentByDocker(ctx: string, dockerfile: string): Promise<string[]> {
    const out = path.join(tmp, "out");
    await docker(["build", "-q", "-f", dockerfile, "-o", `type=local,dest=${out}`, ctx]);
    return listFiles(path.join(out, "ctx"));
}

function listFiles(dir: string, rel = ""): string[] {
    if (!fs.existsSync(dir)) return [];
    return fs
        .readdirSync(path.join(dir, rel), { withFileTypes: true })
        .flatMap((d) => {
            const r = rel === "" ? d.name : `${rel}/${d.name}`;
            return d.isDirectory() ? listFiles(dir, r) : [r];
        })
        .sort();
}

/** The context files an outcome keeps, sorted. */
function kept(outcome: { excludes: string[] } | { keeps: string[] }, all = ALL): string[] {
    if ("keeps" in outcome) return [...outcome.keeps].sort();
    return all.filter((f) => !outcome.excludes.includes(f));
}

describe("what reaches the build context", () => {
    it.each(ROWS.map((row) => [row.name, row] as const))("%s", async (_name, row) => {
        const ctx = makeRow(row.ignore, { Dockerfile: COPY_ALL });
        const dockerfile = path.join(tmp, "Dockerfile");
        const ours = row.provider?.outcome ?? row.docker;

        if ("fails" in row.docker) {
            await expect(sentByDocker(ctx, dockerfile)).rejects.toThrow(row.docker.fails);
        } else {
            expect(await sentByDocker(ctx, dockerfile)).toEqual(kept(row.docker));
        }
        if ("fails" in ours) {
            await expect(hashContext(ctx, dockerfile)).rejects.toThrow(ours.fails);
        } else {
            const hashed = await hashContext(ctx, dockerfile);
            expect([...hashed.files].sort()).toEqual(kept(ours));
        }
    });
});

describe("which ignore file applies", () => {
    it("is <Dockerfile>.dockerignore next to a Dockerfile in the context, ahead of .dockerignore", async () => {
        const ctx = makeRow("a.txt\n", {
            "ctx/Dockerfile": COPY_ALL,
            "ctx/Dockerfile.dockerignore": "b.txt\n",
        });
        const dockerfile = path.join(ctx, "Dockerfile");
        const all = [...ALL, "Dockerfile", "Dockerfile.dockerignore"].sort();
        const expected = kept({ excludes: ["b.txt"] }, all);
        expect(await sentByDocker(ctx, dockerfile)).toEqual(expected);
        const hashed = await hashContext(ctx, dockerfile);
        expect(hashed.ignoreFile).toBe(`${dockerfile}.dockerignore`);
        expect([...hashed.files].sort()).toEqual(expected);
    });

    it("may exclude the Dockerfile and .dockerignore themselves: BuildKit then leaves them out", async () => {
        const ctx = makeRow("Dockerfile\n.dockerignore\n", { "ctx/Dockerfile": COPY_ALL });
        const dockerfile = path.join(ctx, "Dockerfile");
        const expected = kept({ excludes: [".dockerignore"] });
        expect(await sentByDocker(ctx, dockerfile)).toEqual(expected);
        expect([...(await hashContext(ctx, dockerfile)).files].sort()).toEqual(expected);
    });

    it("is <Dockerfile>.dockerignore next to a Dockerfile outside the context, too", async () => {
        const ctx = makeRow("b.txt\n", {
            "df/model.Dockerfile": COPY_ALL,
            "df/model.Dockerfile.dockerignore": "a.txt\n",
        });
        const dockerfile = path.join(tmp, "df/model.Dockerfile");
        const expected = kept({ excludes: ["a.txt"] });
        expect(await sentByDocker(ctx, dockerfile)).toEqual(expected);
        const hashed = await hashContext(ctx, dockerfile);
        expect(hashed.ignoreFile).toBe(`${dockerfile}.dockerignore`);
        expect([...hashed.files].sort()).toEqual(expected);
    });
});
