/**
 * What a building stack builds, checked before any resource is registered (the image component
 * would only find out after the repository had been created): the build context and Dockerfile,
 * inside the project and relative to it; the platform; the base image; the source labels.
 */
import * as fs from "fs";
import * as path from "path";
import {
    Problem,
    checkImageReference,
    checkPlatform,
    credentialsIn,
    normalizePlatform,
} from "../lib/validation";
import { configValue } from "./messages";
import { ConfigReader } from "./reader";

/** A promoting stack does not build, so it needs no build context or Dockerfile. */
export function readBuild(r: ConfigReader, promoting: boolean) {
    const modelContext = r.str("modelContext");
    // An absolute path differs between machines (CI runners), and docker.Image, which compares
    // its build inputs as given, would build and push the version again on each.
    const absolute = !promoting && path.isAbsolute(modelContext);
    if (absolute) {
        r.fail("modelContext", modelContext, {
            reason: "an absolute path differs from machine to machine, and the image would be built and pushed again on each; give the path relative to the project",
            suggestion: path.relative(process.cwd(), modelContext) || ".",
        });
    }
    const contextIsDir = promoting || absolute || isKind(modelContext, "dir");
    // The whole context goes to the Docker engine: it stays inside the project, symlinks
    // resolved (modelContext=../../etc, or a link to ~/.ssh, would ship those files).
    const escapes = !promoting && !absolute && contextIsDir && outsideProject(modelContext);
    if (escapes) {
        r.fail("modelContext", modelContext, {
            reason: `it resolves to ${JSON.stringify(fs.realpathSync(modelContext))}, outside the project ${JSON.stringify(process.cwd())}, and the whole build context is sent to the Docker engine; give a directory inside the project`,
        });
    }
    if (!contextIsDir) {
        r.fail(
            "modelContext",
            modelContext,
            contextProblem(modelContext, r.isSet("dockerfile") ? r.raw.dockerfile : undefined),
        );
    }
    const dockerfile = r.str("dockerfile");
    if (!promoting && path.isAbsolute(dockerfile)) {
        // It would be joined to modelContext ("model//abs/Dockerfile"), and differ between machines.
        const relative = path.relative(path.resolve(modelContext), dockerfile);
        const inside = relative !== "" && !relative.startsWith("..") && !path.isAbsolute(relative);
        r.fail("dockerfile", dockerfile, {
            mentions: ["modelContext"],
            reason:
                "an absolute path is read relative to modelContext, so it names no file, and it would differ " +
                `from machine to machine; give the Dockerfile's path relative to modelContext (${JSON.stringify(modelContext)})`,
            suggestion: inside ? relative.split(path.sep).join("/") : undefined,
        });
    } else if (!promoting && contextIsDir && !isKind(path.join(modelContext, dockerfile), "file")) {
        r.fail("dockerfile", dockerfile, {
            mentions: ["modelContext"],
            reason: `no file ${JSON.stringify(path.join(modelContext, dockerfile))}; expected a Dockerfile path relative to modelContext`,
        });
    } else if (
        !promoting &&
        contextIsDir &&
        !escapes &&
        outsideProject(path.join(modelContext, dockerfile))
    ) {
        r.fail("dockerfile", dockerfile, {
            mentions: ["modelContext"],
            reason: `it resolves to ${JSON.stringify(fs.realpathSync(path.join(modelContext, dockerfile)))}, outside the project; give a Dockerfile inside it, relative to modelContext`,
        });
    }

    const platformText = r.str("platform");
    const platform = normalizePlatform(platformText);
    r.fail("platform", platformText, checkPlatform(platform));

    const baseImage = r.str("baseImage");
    if (baseImage !== "") r.fail("baseImage", baseImage, checkImageReference(baseImage));
    return { modelContext, dockerfile, platform, baseImage };
}

/** The source URL and revision, which become image labels anyone who can pull can read. */
export function readLabels(r: ConfigReader) {
    const sourceUrl = r.str("sourceUrl");
    const sourceWithCredentials = withoutUserinfo(sourceUrl);
    // `git remote get-url origin` often prints this form: a user name, no credentials.
    const scp = /^[\w.-]+@([\w-]+(?:\.[\w-]+)+):(?!\/)([^\s?#]+?)(?:\.git)?$/.exec(sourceUrl);
    if (scp) {
        r.fail("sourceUrl", sourceUrl, {
            reason: "it is a git remote in scp form (user@host:path), not a URL; give the repository's web address",
            suggestion: `https://${scp[1]}/${scp[2]}`,
        });
    } else if (sourceWithCredentials !== undefined) {
        r.fail("sourceUrl", sourceUrl, {
            redacted: true,
            reason: "it holds credentials (a user name, password or token), and it becomes the org.opencontainers.image.source label that anyone who pulls the image can read; give the URL without them",
            suggestion: sourceWithCredentials || undefined,
        });
    } else if (sourceUrl !== "" && !/^[a-z][a-z0-9+.-]*:\/\/\S+$/i.test(sourceUrl)) {
        r.fail("sourceUrl", sourceUrl, {
            reason: "expected an absolute URL such as https://example.com/team/model",
            suggestion: /^[\w-]+(\.[\w-]+)+(\/\S*)?$/.test(sourceUrl)
                ? `https://${sourceUrl}`
                : undefined,
        });
    }
    const modelRevision = r.str("modelRevision");
    if (credentialsIn(modelRevision).length > 0) {
        r.fail("modelRevision", modelRevision, {
            redacted: true,
            reason: "it holds credentials (a user name and password, or a token), and it becomes the org.opencontainers.image.revision label that anyone who pulls the image can read; give the revision alone",
        });
    } else if (/\s/.test(modelRevision)) {
        r.fail("modelRevision", modelRevision, {
            reason: "a revision (for example a git commit) has no white space",
            suggestion: /^\S+$/.test(modelRevision.trim()) ? modelRevision.trim() : undefined,
        });
    }
    return { sourceUrl, modelRevision };
}

/** What is wrong with a modelContext that is not a directory, and the fix when one is clear. */
function contextProblem(
    modelContext: string,
    dockerfileSet: string | undefined,
): Problem & { fix?: string } {
    const resolved = JSON.stringify(path.resolve(modelContext));
    if (modelContext.trim() === "") {
        return {
            reason: "it is empty; expected the model image's build context, a directory relative to the project",
        };
    }
    if (!isKind(modelContext, "file")) {
        return {
            reason: `no directory ${resolved}; expected the model image's build context, relative to the project`,
        };
    }
    const name = path.basename(modelContext);
    const reason = `${resolved} is a file, not a directory; modelContext is the build context (the directory the image is built from), and dockerfile names the Dockerfile in it`;
    if (!/(^|[.-])(dockerfile|containerfile)([.-]|$)/i.test(name)) return { reason };
    // A Dockerfile given as the context: its directory is the context, its name the dockerfile.
    const directory = path.dirname(modelContext).split(path.sep).join("/");
    // The default dockerfile is "Dockerfile": only another name needs setting.
    const setDockerfile =
        dockerfileSet === undefined && name === "Dockerfile"
            ? ""
            : ` && pulumi config set dockerfile ${configValue(name)}`;
    return {
        reason: `${reason}; this file looks like a Dockerfile, so its directory is the context`,
        fix: `pulumi config set modelContext ${configValue(directory)}${setDockerfile}`,
    };
}

/** Whether a path, symlinks resolved, is outside the project (the working directory). */
function outsideProject(p: string): boolean {
    const relative = path.relative(fs.realpathSync("."), fs.realpathSync(p));
    return relative.startsWith("..") || path.isAbsolute(relative);
}

/** Whether a path is a directory or a file; a path the system refuses (too long) is neither. */
function isKind(p: string, kind: "dir" | "file"): boolean {
    if (p.trim() === "") return false;
    let stat: fs.Stats | undefined;
    try {
        stat = fs.statSync(p, { throwIfNoEntry: false });
    } catch {
        return false;
    }
    return kind === "dir" ? stat?.isDirectory() === true : stat?.isFile() === true;
}

/**
 * The URL without credentials, query and fragment when it carries credentials
 * (`https://user:token@host/...`): "" when it cannot be parsed; undefined when it carries none.
 */
function withoutUserinfo(text: string): string | undefined {
    const found = credentialsIn(text);
    if (!URL.canParse(text)) return found.length > 0 || /^[^\s/]*@/.test(text) ? "" : undefined;
    const url = new URL(text);
    if (url.username === "" && url.password === "" && found.length === 0) return undefined;
    url.username = "";
    url.password = "";
    // A query or fragment may hold a token too: the label needs neither.
    url.search = "";
    url.hash = "";
    // An `@` left in the path may be a password's end (`https://h\\@bob:pw@host/x`); a path
    // may hold a credential too (`;password=…`): then no suggestion.
    const cleaned = url.toString();
    const kept = found.some((c) => cleaned.includes(c));
    return url.pathname.includes("@") || kept ? "" : cleaned;
}
