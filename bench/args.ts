/**
 * The benchmark's command line, parsed strictly: a misspelt or unknown flag, or a size that is
 * not one, stops it with one message (exit 2) instead of a 1 GiB run nobody asked for.
 */
import { parseArgs } from "util";

export const MiB = 1024 * 1024;
export const GiB = 1024 * MiB;

export const USAGE =
    "usage: npm run bench -- [--size <size>] [--no-docker]   (size: 1GiB, 256MiB, 1048576 …)";

/** What `--help` prints: the usage, then each option. */
export const HELP = `${USAGE}

Benchmark of the image pipeline: prints figures, asserts nothing.
  --size <size>   size of the generated model (default 1GiB), in 4 shards for the layer
                  figures; bytes, or KiB, MiB, GiB
  --no-docker     checksum figures only: no Docker engine, registry or skopeo needed
  -h, --help      show this help and exit
`;

export interface BenchArgs {
    /** Model file size in bytes. Defaults to 1 GiB. */
    readonly size: number;
    /** Whether to run the Docker and registry figures (2 to 5); false with --no-docker. */
    readonly docker: boolean;
    /** `--help` or `-h`: print HELP and run nothing. */
    readonly help: boolean;
}

/** A bad command line: its message is what to print. */
export class UsageError extends Error {}

/** `1GiB`, `256MiB`, `512KiB`, `1048576` or `1048576B` (binary units) in bytes. */
export function parseSize(text: string): number {
    const m = /^(\d+(?:\.\d+)?)\s*(B|KiB|MiB|GiB)?$/i.exec(text.trim());
    const bytes = m
        ? Math.round(
              Number(m[1]) *
                  { b: 1, kib: 1024, mib: MiB, gib: GiB }[(m[2] ?? "B").toLowerCase() as "b"],
          )
        : NaN;
    if (!(bytes >= 1))
        throw new UsageError(
            `--size takes a size of at least 1 byte, such as 1GiB, 256MiB or 1048576; got ${JSON.stringify(text)}`,
        );
    return bytes;
}

/**
 * Parses the arguments after `npm run bench --`. `env` catches the flags npm took for itself
 * (`npm run bench --size=64MiB`, without `--`, sets npm_config_size and passes nothing on).
 */
export function parseBenchArgs(argv: string[], env: NodeJS.ProcessEnv = {}): BenchArgs {
    for (const [key, flag] of [
        ["npm_config_size", "--size"],
        ["npm_config_docker", "--no-docker"],
    ]) {
        if (env[key] !== undefined)
            throw new UsageError(
                `npm took ${flag} for itself and passed nothing on: put '--' before the benchmark's flags, as in 'npm run bench -- --size 64MiB'`,
            );
    }
    let values;
    try {
        ({ values } = parseArgs({
            args: argv,
            options: {
                size: { type: "string" },
                "no-docker": { type: "boolean" },
                help: { type: "boolean", short: "h" },
            },
            strict: true,
            allowPositionals: false,
        }));
    } catch (e) {
        throw new UsageError(e instanceof Error ? e.message : String(e));
    }
    // Help is asked for: show it whatever else the line holds (a size that is not one, say).
    if (values.help) return { size: GiB, docker: true, help: true };
    return {
        size: values.size === undefined ? GiB : parseSize(values.size),
        docker: !values["no-docker"],
        help: values.help ?? false,
    };
}
