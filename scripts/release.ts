/**
 * `npm run release -- <version> [--to <stack>] [--from <stack>] [--preview]`: publish a model
 * version to the dev stack, or promote it to a stack with promoteFrom. See lib/release/ and
 * `npm run release -- --help`.
 */
import * as path from "path";
import { releaseMain } from "../lib/release";

/** The project directory: this script's parent, wherever the command is run from. */
export const PROJECT_DIR = path.resolve(__dirname, "..");

if (require.main === module) {
    releaseMain(process.argv.slice(2), {
        projectDir: PROJECT_DIR,
        env: process.env,
        io: {
            stdout: (text) => process.stdout.write(text),
            stderr: (text) => process.stderr.write(text),
        },
    }).then(
        (code) => {
            process.exitCode = code;
        },
        (e: unknown) => {
            process.stderr.write(
                `release: unexpected error: ${(e as Error)?.stack ?? String(e)}\n`,
            );
            process.exitCode = 1;
        },
    );
}
