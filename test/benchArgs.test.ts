/**
 * The benchmark's command line (bench/args.ts): both spellings of --size, and one clear refusal
 * of what it does not understand, instead of a silent 1 GiB run.
 */
import { execFile } from "child_process";
import * as path from "path";
import { HELP, parseBenchArgs, parseSize, USAGE, UsageError } from "../bench/args";

const MiB = 1024 * 1024;

describe("npm run bench -- <flags>", () => {
    it("takes --size 64MiB and --size=64MiB alike, and defaults to 1 GiB with Docker", () => {
        expect(parseBenchArgs(["--size", "64MiB"])).toEqual({
            size: 64 * MiB,
            docker: true,
            help: false,
        });
        expect(parseBenchArgs(["--size=64MiB"])).toEqual({
            size: 64 * MiB,
            docker: true,
            help: false,
        });
        expect(parseBenchArgs(["--no-docker", "--size=1.5GiB"])).toEqual({
            size: 1536 * MiB,
            docker: false,
            help: false,
        });
        expect(parseBenchArgs([])).toEqual({ size: 1024 * MiB, docker: true, help: false });
    });

    it("reads sizes in bytes and binary units, and refuses anything else", () => {
        expect(parseSize("1048576")).toBe(MiB);
        expect(parseSize("512KiB")).toBe(512 * 1024);
        expect(parseSize("32mib")).toBe(32 * MiB);
        for (const bad of ["lots", "64MB", "0", "-1MiB", ""])
            expect(() => parseSize(bad)).toThrow(
                new UsageError(
                    `--size takes a size of at least 1 byte, such as 1GiB, 256MiB or 1048576; got ${JSON.stringify(bad)}`,
                ),
            );
    });

    it.each([
        [["--sise", "64MiB"], "Unknown option '--sise'"],
        [["--size"], "Option '--size <value>' argument missing"],
        [["--size", "--no-docker"], "Option '--size' argument is ambiguous"],
        [["64MiB"], "Unexpected argument '64MiB'"],
        [["--no-docker=yes"], "Option '--no-docker' does not take an argument"],
    ])("refuses %j", (argv, message) => {
        expect(() => parseBenchArgs(argv)).toThrow(UsageError);
        expect(() => parseBenchArgs(argv)).toThrow(message);
    });

    it("sees the flags npm kept for itself when '--' is missing", () => {
        // `npm run bench --size=64MiB` sets npm_config_size and passes no argument on.
        expect(() => parseBenchArgs([], { npm_config_size: "64MiB" })).toThrow(
            "npm took --size for itself and passed nothing on: put '--' before the benchmark's flags",
        );
        expect(() => parseBenchArgs([], { npm_config_docker: "" })).toThrow("--no-docker");
    });

    it("takes --help and -h, also beside other flags, as a request for help", () => {
        for (const argv of [
            ["--help"],
            ["-h"],
            ["--size", "lots", "--help"],
            ["--no-docker", "-h"],
        ])
            expect(parseBenchArgs(argv)).toMatchObject({ help: true });
        expect(HELP.startsWith(`${USAGE}\n`)).toBe(true);
        for (const flag of ["--size <size>", "--no-docker", "-h, --help"])
            expect(HELP).toContain(flag);
    });

    /** Runs bench/pipeline.ts as `npm run bench -- <argv>` does. */
    function bench(argv: string[]) {
        const script = path.resolve(__dirname, "../bench/pipeline.ts");
        return new Promise<{ code: number | null; stdout: string; stderr: string }>((resolve) =>
            execFile(
                process.execPath,
                ["-r", "ts-node/register/transpile-only", script, ...argv],
                { cwd: path.resolve(__dirname, "..") },
                (err, stdout, stderr) =>
                    resolve({ code: err ? Number(err.code) : 0, stdout, stderr }),
            ),
        );
    }

    // The three runs start bench/pipeline.ts in processes of their own, side by side.
    it.concurrent("exits 2 with one message and the usage, before any work", async () => {
        expect(await bench(["--size=64MiB", "--sise", "1"])).toEqual({
            code: 2,
            stdout: "",
            stderr:
                "bench: Unknown option '--sise'\n" +
                "usage: npm run bench -- [--size <size>] [--no-docker]   (size: 1GiB, 256MiB, 1048576 …)\n",
        });
    });

    it.concurrent.each([["--help"], ["-h"]])(
        "prints its help for %s and exits 0, running nothing",
        async (flag) => {
            expect(await bench([flag])).toEqual({ code: 0, stdout: HELP, stderr: "" });
        },
    );
});
