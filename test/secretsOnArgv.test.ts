/**
 * Test support and scripts keep passwords off argv (any local user can read a process's command
 * line) and write no file at a fixed /tmp path (another user could plant a link there).
 */
import * as fs from "fs";
import * as path from "path";

function files(dir: string): string[] {
    return fs
        .readdirSync(dir, { withFileTypes: true })
        .flatMap((e) =>
            e.isDirectory() ? files(path.join(dir, e.name)) : [path.join(dir, e.name)],
        )
        .filter((f) => /\.(ts|js|sh)$/.test(f) && f !== path.join("test", "secretsOnArgv.test.ts"));
}

/** A password on argv: htpasswd's -b (password as an argument), skopeo's --creds. */
const ON_ARGV = /["'\s]-[A-Za-z]*b[A-Za-z]*n["'\s]|--creds\b|--password[= ]/;
/** A fixed file name under /tmp (`mktemp` and mkdtemp make their own). */
const FIXED_TMP = /(\/tmp|TMPDIR[^}]*\})\/[^"'\n]+\.(log|json|txt)/;

describe("test support and scripts", () => {
    const all = [...files("test"), ...files("scripts"), ".ci/run"];

    it("put no password on a command line and no file at a fixed /tmp path", () => {
        const offending = all.filter((f) => {
            const text = fs.readFileSync(f, "utf8");
            return ON_ARGV.test(text) || FIXED_TMP.test(text);
        });
        expect(offending).toEqual([]);
    });

    it("give htpasswd the password on stdin, skopeo an auth file, dockerd a mktemp log", () => {
        const registry = fs.readFileSync("test/support/registry.ts", "utf8");
        expect(registry).toMatch(
            /\["-Bin", credentials\.username\][^)]*input: credentials\.password/,
        );
        expect(registry).toContain(
            "writeFileSync(authFile, JSON.stringify(json), { mode: 0o600 })",
        );
        expect(fs.readFileSync("scripts/start-docker.sh", "utf8")).toMatch(/^log=\$\(mktemp /m);
    });
});
