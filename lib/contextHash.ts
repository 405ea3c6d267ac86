import { createHash } from "crypto";
import { promises as fs } from "fs";
import * as path from "path";
import { parseDockerignore } from "./dockerignore";

/** What a build context holds, by content. */
export interface ContextDigest {
    /** `sha256:<hex>` over every file Docker would send, in a stable order. */
    readonly digest: string;
    /** Files hashed, slash-separated paths relative to the context, in hashing order. */
    readonly files: readonly string[];
    /** Bytes of file content hashed. */
    readonly bytes: number;
}

/** Read buffer for streaming files through the hash: memory stays flat whatever the file size. */
const CHUNK_SIZE = 4 * 1024 * 1024;

/**
 * Hashes a Docker build context: the files `.dockerignore` lets through, sorted by path, each as
 * its path, type, executable bit, size and content (a symlink as its target). Renaming, adding,
 * removing or editing any file, or making one executable, changes the digest; timestamps,
 * ownership and the machine the context sits on do not.
 */
export async function hashContext(contextDir: string): Promise<ContextDigest> {
    const stat = await fs.stat(contextDir).catch(() => undefined);
    if (!stat?.isDirectory()) {
        throw new Error(`build context ${JSON.stringify(contextDir)} is not a directory`);
    }
    const ignoreText = await fs
        .readFile(path.join(contextDir, ".dockerignore"), "utf8")
        .catch((e: NodeJS.ErrnoException) => {
            if (e.code === "ENOENT") return "";
            throw e;
        });
    const matcher = parseDockerignore(ignoreText);

    const entries: { rel: string; abs: string; kind: "file" | "link" }[] = [];
    const walk = async (relDir: string): Promise<void> => {
        const dirents = await fs.readdir(path.join(contextDir, relDir), { withFileTypes: true });
        dirents.sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0));
        for (const d of dirents) {
            const rel = relDir === "" ? d.name : `${relDir}/${d.name}`;
            const ignored = matcher.ignores(rel);
            if (d.isDirectory()) {
                // An ignored directory is skipped whole unless a `!` rule may re-include a path in it.
                if (!ignored || matcher.hasExclusions) await walk(rel);
            } else if (!ignored && (d.isFile() || d.isSymbolicLink())) {
                entries.push({
                    rel,
                    abs: path.join(contextDir, rel),
                    kind: d.isFile() ? "file" : "link",
                });
            }
        }
    };
    await walk("");
    entries.sort((a, b) => (a.rel < b.rel ? -1 : a.rel > b.rel ? 1 : 0));

    const hash = createHash("sha256");
    const buffer = Buffer.allocUnsafe(CHUNK_SIZE);
    let bytes = 0;
    for (const entry of entries) {
        if (entry.kind === "link") {
            const target = await fs.readlink(entry.abs);
            hash.update(`link\0${entry.rel}\0${target}\0`);
            continue;
        }
        const handle = await fs.open(entry.abs, "r");
        try {
            const { size, mode } = await handle.stat();
            const exec = (mode & 0o111) !== 0 ? "x" : "-";
            hash.update(`file\0${entry.rel}\0${exec}\0${size}\0`);
            let read = 0;
            for (;;) {
                const { bytesRead } = await handle.read(buffer, 0, CHUNK_SIZE, null);
                if (bytesRead === 0) break;
                hash.update(buffer.subarray(0, bytesRead));
                read += bytesRead;
            }
            if (read !== size) {
                throw new Error(
                    `${entry.rel} changed while it was being hashed (${size} bytes, read ${read})`,
                );
            }
            bytes += read;
        } finally {
            await handle.close();
        }
    }
    return { digest: `sha256:${hash.digest("hex")}`, files: entries.map((e) => e.rel), bytes };
}
