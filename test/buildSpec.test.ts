import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { missingFingerprintLabel, modelBuildSpec } from "../lib/publication/buildSpec";

const LABELLED = [
    "FROM scratch",
    "ARG MODEL_PUBLISHER",
    "ARG MODEL_FINGERPRINT",
    'LABEL model-registry.publisher="${MODEL_PUBLISHER}" model-registry.fingerprint="${MODEL_FINGERPRINT}"',
    "COPY model.json /model.json",
].join("\n");

describe("the fingerprint covers docker.Image's build inputs", () => {
    it("is the same for a respelled context, and changes when the context moves", async () => {
        const parent = fs.mkdtempSync(path.join(os.tmpdir(), "spec-"));
        try {
            const dir = path.join(parent, "model");
            fs.mkdirSync(dir);
            fs.writeFileSync(path.join(dir, "Dockerfile"), LABELLED);
            fs.writeFileSync(path.join(dir, "model.json"), "{}");
            const spec = (context: string) =>
                modelBuildSpec({ context, version: "1.0.0", platform: "linux/amd64" });
            const plain = await spec(dir);
            const slash = await spec(`${dir}/`);
            expect(slash.context).toBe(plain.context);
            expect(slash.fingerprint).toBe(plain.fingerprint);
            const moved = path.join(parent, "models", "iris");
            fs.mkdirSync(path.dirname(moved));
            fs.renameSync(dir, moved);
            const after = await spec(moved);
            expect(after.modelSha256).toBe(plain.modelSha256);
            expect(after.fingerprint).not.toBe(plain.fingerprint);
        } finally {
            fs.rmSync(parent, { recursive: true, force: true });
        }
    });
});

describe("the Dockerfile's fingerprint label", () => {
    it("accepts a quoted key and a label continued over lines, as Docker does", () => {
        const quoted = [
            "FROM scratch",
            "ARG MODEL_FINGERPRINT",
            'LABEL a="1" \\',
            "  # a comment inside the continuation",
            '  "model-registry.fingerprint"="${MODEL_FINGERPRINT}"',
        ].join("\n");
        expect(missingFingerprintLabel(quoted)).toBeUndefined();
    });

    it("accepts the example model's Dockerfile", () => {
        expect(
            missingFingerprintLabel(fs.readFileSync("model/Dockerfile", "utf8")),
        ).toBeUndefined();
        expect(missingFingerprintLabel(LABELLED)).toBeUndefined();
    });

    it.each([
        ["no label at all", "FROM scratch\nCOPY model.json /\n"],
        [
            "the ARG only before FROM (out of scope for LABEL)",
            `ARG MODEL_FINGERPRINT\nFROM scratch\nLABEL model-registry.fingerprint="\${MODEL_FINGERPRINT}"\n`,
        ],
        [
            "the label only in an earlier stage",
            `${LABELLED}\nFROM scratch AS final\nCOPY --from=0 /model.json /\n`,
        ],
        [
            "the label without the build arg",
            'FROM scratch\nLABEL model-registry.fingerprint="fixed"\n',
        ],
    ])("refuses a Dockerfile with %s, saying what to add", (_label, text) => {
        expect(missingFingerprintLabel(text)).toContain(
            'ARG MODEL_FINGERPRINT and LABEL model-registry.fingerprint="${MODEL_FINGERPRINT}"',
        );
    });

    it("is checked before anything is built", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "spec-"));
        try {
            fs.writeFileSync(path.join(dir, "Dockerfile"), "FROM scratch\nCOPY . /\n");
            await expect(
                modelBuildSpec({ context: dir, version: "1.0.0", platform: "linux/amd64" }),
            ).rejects.toThrow(`Dockerfile "${dir}/Dockerfile" does not label the image`);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });

    it("passes the fingerprint and the publisher as build args; the fingerprint covers the publisher", async () => {
        const dir = fs.mkdtempSync(path.join(os.tmpdir(), "spec-"));
        try {
            fs.writeFileSync(path.join(dir, "Dockerfile"), LABELLED);
            fs.writeFileSync(path.join(dir, "model.json"), "{}");
            const input = { context: dir, version: "1.0.0", platform: "linux/amd64" };
            const dev = await modelBuildSpec({ ...input, publisher: "p/dev" });
            const prod = await modelBuildSpec({ ...input, publisher: "p/prod" });
            expect(dev.args.MODEL_FINGERPRINT).toBe(dev.fingerprint);
            expect(dev.args.MODEL_PUBLISHER).toBe("p/dev");
            expect(prod.fingerprint).not.toBe(dev.fingerprint);
            expect(prod.modelSha256).toBe(dev.modelSha256);
        } finally {
            fs.rmSync(dir, { recursive: true, force: true });
        }
    });
});
