import * as fs from "fs";
import * as os from "os";
import * as path from "path";
import { missingFingerprintLabel, modelBuildSpec } from "../lib/buildSpec";

const LABELLED = [
    "FROM scratch",
    "ARG MODEL_PUBLISHER",
    "ARG MODEL_FINGERPRINT",
    'LABEL model-registry.publisher="${MODEL_PUBLISHER}" model-registry.fingerprint="${MODEL_FINGERPRINT}"',
    "COPY model.json /model.json",
].join("\n");

describe("the Dockerfile's fingerprint label", () => {
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
