import { createHash } from "crypto";
import { constants, promises as fs, Stats } from "fs";
import * as path from "path";
import { cleanPath, IgnoreMatcher, MatchInfo, parseDockerignore } from "./dockerignore";

/** What a build context holds, by content, as docker.Image sees it. */
export interface ContextDigest {
    /** `sha256:<contextDigest>`: what the model checksum label and the guard use. */
    readonly digest: string;
    /** Lowercase hex, byte for byte the `build.contextDigest` docker.Image computes in Check. */
    readonly contextDigest: string;
    /**
     * Context files hashed, slash-separated and relative to the context, in hashing order (the
     * Dockerfile's own entry, hashed first, is not listed).
     */
    readonly files: readonly string[];
    /** Bytes of file content hashed, the Dockerfile's own entry included. */
    readonly bytes: number;
    /**
     * The ignore file applied, as opened (`<dockerfile>.dockerignore`, else
     * `<context>/.dockerignore`); undefined when there is neither.
     */
    readonly ignoreFile: string | undefined;
}

/** Read buffer for streaming files through the hash: memory stays flat whatever the file size. */
const CHUNK_SIZE = 4 * 1024 * 1024;

/**
 * Hashes a Docker build context exactly as docker.Image does before deciding to rebuild and push,
 * so the two digests are equal and every change that makes docker.Image push again changes ours.
 *
 * `contextDir` and `dockerfile` are the strings given to docker.Image's `build.context` and
 * `build.dockerfile` (relative to the working directory; the Dockerfile path already joined with
 * the context), because the provider hashes some paths as spelled.
 *
 * The algorithm, from pulumi/pulumi-docker `provider/provider.go`, the native `docker.Image`
 * provider, as it has been since Dockerfile-specific ignore files came in (pulumi-docker#863).
 * Read at the newest version the reference index holds; the v5.2.0 tag itself was not there, so
 * the exact commit is unconfirmed. Its `provider/go.mod` pins github.com/moby/patternmatcher
 * v0.6.0 and github.com/tonistiigi/fsutil v0.0.0-20250417144416-3f76f8130144. (The `HashContext`
 * in `provider/internal/context.go` belongs to the experimental buildx Image and differs.)
 *
 * - `Check` calls `hashContext(build.Context, build.Dockerfile)` and stores the result as the
 *   input `build.contextDigest`; any difference there is a diff, and Update builds and pushes.
 * - `getIgnorePatterns`: the patterns of `dockerfile + ".dockerignore"` if that file exists, else
 *   of `filepath.Join(context, ".dockerignore")`, else none; read with patternmatcher's
 *   `ignorefile.ReadAll` (see lib/publication/dockerignore.ts).
 * - `(*contextHashAccumulator).hashPath(filePath, name, mode)` appends to one buffer: `name` (as
 *   `filepath.ToSlash(path.Clean(name))`), `mode.String()` (Go's `FileMode.String`, e.g.
 *   `-rw-rw-r--`, `-rwxr-xr-x`, `Lrwxrwxrwx`, `urwxr-xr-x` for setuid), the 32 raw bytes of the
 *   SHA-256 of the entry's content, and one zero byte. Content is: for a symlink, the text of
 *   `filepath.EvalSymlinks(filePath)` cleaned (the fully resolved path, relative to the working
 *   directory when the context path is relative; a dangling link is an error); for a regular file,
 *   its bytes; for anything else (fifo, device), nothing.
 * - The Dockerfile is hashed first, as `hashPath(dockerfile, "Dockerfile", 0)`: under the name
 *   `Dockerfile` and mode `----------`, whatever its real name or place, even when it is outside
 *   the context or excluded by the ignore file (inside the context and not excluded, it is hashed
 *   a second time under its own name during the walk).
 * - Then `fsutil.Walk(context, {ExcludePatterns})` (fsutil `filterFS.Walk` over
 *   `filepath.WalkDir`): every directory's entries in byte order of their names, depth first, so
 *   `a/b` comes before `a.txt`; each path is matched with `MatchesUsingParentResults`, the
 *   directory's results handed down; an excluded directory is skipped whole unless a `!` pattern
 *   could re-include something below it; directories themselves add nothing, only non-directory
 *   entries are hashed, each with its `lstat` mode (symlinks are not followed into).
 * - `hexSumContext`: the digest is the hex SHA-256 of the whole buffer.
 *
 * Streams every file through the hash in CHUNK_SIZE reads (memory stays flat for files of many
 * GiB) and fails when a file's size changed while it was read.
 */
export async function hashContext(contextDir: string, dockerfile: string): Promise<ContextDigest> {
    const { entries, ignoreFile } = await listContext(contextDir, dockerfile);

    const outer = createHash("sha256");
    const buffer = Buffer.allocUnsafe(CHUNK_SIZE);
    let bytes = 0;
    const record = (name: string, mode: string, content: Buffer): void => {
        outer.update(cleanPath(name)).update(mode).update(content).update(Buffer.of(0));
    };

    const own = await hashFile(dockerfile, buffer).catch((e: NodeJS.ErrnoException) => {
        throw e.code === "ENOENT"
            ? new Error(`Dockerfile ${JSON.stringify(dockerfile)} does not exist`)
            : e;
    });
    record("Dockerfile", goModeString(0), own.digest);
    bytes += own.bytes;

    for (const { path: rel, stat: st } of entries) {
        const abs = path.join(contextDir, rel);
        const mode = goModeString(st.mode);
        if (st.isSymbolicLink()) {
            const target = await evalSymlinks(abs).catch((e: Error) => {
                throw new Error(`could not evaluate symlink at ${abs}: ${e.message}`);
            });
            record(rel, mode, createHash("sha256").update(target).digest());
        } else if (st.isFile()) {
            const file = await hashFile(abs, buffer);
            record(rel, mode, file.digest);
            bytes += file.bytes;
        } else {
            record(rel, mode, createHash("sha256").digest());
        }
    }

    const hex = outer.digest("hex");
    const files = entries.map((e) => e.path);
    return { digest: `sha256:${hex}`, contextDigest: hex, files, bytes, ignoreFile };
}

/** One non-directory entry of a build context, as the walk finds it. */
export interface ContextEntry {
    /** Slash-separated, relative to the context. */
    readonly path: string;
    /** Its `lstat` (a symlink is not followed). */
    readonly stat: Stats;
}

/**
 * The entries of a build context that docker.Image hashes and BuildKit receives, in the
 * provider's walk order, without reading any content: the walk `hashContext` describes, with
 * the same ignore file. The layer planner (lib/publication/layers.ts) packs these.
 */
export async function listContext(
    contextDir: string,
    dockerfile: string,
): Promise<{ entries: ContextEntry[]; ignoreFile: string | undefined }> {
    const { matcher, ignoreFile } = await readIgnore(contextDir, dockerfile);
    const stat = await fs.stat(contextDir).catch(() => undefined);
    if (!stat?.isDirectory()) {
        throw new Error(`build context ${JSON.stringify(contextDir)} is not a directory`);
    }
    const entries: ContextEntry[] = [];
    const walk = async (
        relDir: string,
        parent: MatchInfo | undefined,
        excluded = false,
    ): Promise<void> => {
        const dirents = await fs
            .readdir(path.join(contextDir, relDir), { withFileTypes: true })
            .catch((e: NodeJS.ErrnoException) => {
                // fsutil walks into an excluded directory only to look for re-included paths,
                // and passes over one there that it may not read.
                if (excluded && (e.code === "EACCES" || e.code === "EPERM")) return [];
                throw e;
            });
        dirents.sort((a, b) => Buffer.compare(Buffer.from(a.name), Buffer.from(b.name)));
        for (const d of dirents) {
            const rel = relDir === "" ? d.name : `${relDir}/${d.name}`;
            const isDir = d.isDirectory();
            const verdict = matcher.check(rel, isDir, parent);
            if (verdict.excluded) {
                if (isDir && !verdict.skipDir) await walk(rel, verdict.info, true);
            } else if (isDir) {
                await walk(rel, verdict.info);
            } else {
                entries.push({ path: rel, stat: await fs.lstat(path.join(contextDir, rel)) });
            }
        }
    };
    await walk("", undefined);
    return { entries, ignoreFile };
}

/** `getIgnorePatterns`: `<dockerfile>.dockerignore` first, then `<context>/.dockerignore`. */
async function readIgnore(
    contextDir: string,
    dockerfile: string,
): Promise<{ matcher: IgnoreMatcher; ignoreFile: string | undefined }> {
    for (const candidate of [
        `${dockerfile}.dockerignore`,
        path.join(contextDir, ".dockerignore"),
    ]) {
        const text = await fs.readFile(candidate, "utf8").catch((e: NodeJS.ErrnoException) => {
            if (e.code === "ENOENT") return undefined;
            throw e;
        });
        if (text === undefined) continue;
        try {
            return { matcher: parseDockerignore(text), ignoreFile: candidate };
        } catch (e) {
            throw new Error(
                `unable to parse ${JSON.stringify(candidate)}: ${(e as Error).message}`,
            );
        }
    }
    return { matcher: new IgnoreMatcher([]), ignoreFile: undefined };
}

/** Streams one file through SHA-256: its digest and the bytes read. */
async function hashFile(file: string, buffer: Buffer): Promise<{ digest: Buffer; bytes: number }> {
    const hash = createHash("sha256");
    const handle = await fs.open(file, "r");
    try {
        const { size } = await handle.stat();
        let read = 0;
        for (;;) {
            const { bytesRead } = await handle.read(buffer, 0, buffer.length, null);
            if (bytesRead === 0) break;
            hash.update(buffer.subarray(0, bytesRead));
            read += bytesRead;
        }
        if (read !== size) {
            throw new Error(
                `${file} changed while it was being hashed (${size} bytes, read ${read})`,
            );
        }
        return { digest: hash.digest(), bytes: read };
    } finally {
        await handle.close();
    }
}

/**
 * Go's `FileMode.String()` of the mode `os.Lstat` gives for a Unix `st_mode`, with the socket bit
 * cleared as fsutil's `mkstat` does: type letters in Go's order (`d`, `L`, `D`, `p`, `u`, `g`,
 * `c`, `t`), `-` when there is none, then `rwxrwxrwx`.
 */
export function goModeString(stMode: number): string {
    const { S_IFMT, S_IFLNK, S_IFBLK, S_IFDIR, S_IFCHR, S_IFIFO } = constants;
    const type = stMode & S_IFMT;
    let letters = "";
    if (type === S_IFDIR) letters += "d";
    if (type === S_IFLNK) letters += "L";
    if (type === S_IFBLK || type === S_IFCHR) letters += "D";
    if (type === S_IFIFO) letters += "p";
    if (stMode & 0o4000) letters += "u";
    if (stMode & 0o2000) letters += "g";
    if (type === S_IFCHR) letters += "c";
    if (stMode & 0o1000) letters += "t";
    let perms = "";
    for (let bit = 8; bit >= 0; bit--) perms += stMode & (1 << bit) ? "rwx"[(8 - bit) % 3] : "-";
    return (letters === "" ? "-" : letters) + perms;
}

/**
 * Go's `filepath.EvalSymlinks` (`walkSymlinks` on Unix): resolves every link along the path,
 * component by component, keeping a relative path relative; the result is cleaned.
 */
async function evalSymlinks(input: string): Promise<string> {
    let p = input;
    let volLen = p.startsWith("/") ? 1 : 0;
    let vol = p.slice(0, volLen);
    let dest = vol;
    let links = 0;
    for (let start = volLen, end = volLen; start < p.length; start = end) {
        while (start < p.length && p[start] === "/") start++;
        end = start;
        while (end < p.length && p[end] !== "/") end++;
        if (end === start) break;
        const part = p.slice(start, end);
        if (part === ".") continue;
        if (part === "..") {
            const r = dest.lastIndexOf("/");
            if (r < volLen || dest.slice(r + 1) === "..") {
                if (dest.length > volLen) dest += "/";
                dest += "..";
            } else {
                dest = dest.slice(0, r);
            }
            continue;
        }
        if (dest.length > 0 && !dest.endsWith("/")) dest += "/";
        dest += part;
        const st = await fs.lstat(dest);
        if (!st.isSymbolicLink()) {
            if (!st.isDirectory() && end < p.length) throw new Error(`${dest}: not a directory`);
            continue;
        }
        if (++links > 255) throw new Error("EvalSymlinks: too many links");
        const link = await fs.readlink(dest);
        p = link + p.slice(end);
        if (link.startsWith("/")) {
            dest = "/";
            end = 1;
            vol = "/";
            volLen = 1;
        } else {
            const r = dest.lastIndexOf("/");
            dest = r < volLen ? vol : dest.slice(0, r);
            end = 0;
        }
    }
    return cleanPath(dest);
}
