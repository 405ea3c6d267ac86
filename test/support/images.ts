/** Small images pushed through the registry API, with the labels the guard reads. */
import { createHash, randomBytes } from "crypto";
import { RegistryEndpoint } from "../../lib/oci/client";
import { authorizedRequest, pushBlob } from "./registry";

export { pushLabelledImage } from "./registry";

const sha256 = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** An OCI index whose only image is linux/arm64 (an arm-only build, or a foreign image). */
export async function pushArmOnlyIndex(endpoint: RegistryEndpoint, tag: string): Promise<string> {
    const layer = randomBytes(1024);
    const config = Buffer.from(
        JSON.stringify({
            architecture: "arm64",
            os: "linux",
            config: { Labels: { "model-registry.model.sha256": sha256(layer) } },
            rootfs: { type: "layers", diff_ids: [sha256(layer)] },
        }),
    );
    const manifest = Buffer.from(
        JSON.stringify({
            schemaVersion: 2,
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            config: {
                mediaType: "application/vnd.oci.image.config.v1+json",
                digest: await pushBlob(endpoint, config),
                size: config.length,
            },
            layers: [
                {
                    mediaType: "application/vnd.oci.image.layer.v1.tar",
                    digest: await pushBlob(endpoint, layer),
                    size: layer.length,
                },
            ],
        }),
    );
    const put = async (ref: string, body: Buffer, type: string) => {
        const res = await authorizedRequest(
            endpoint,
            "PUT",
            `/v2/${endpoint.repository}/manifests/${ref}`,
            { "Content-Type": type },
            "push,pull",
            body,
        );
        if (res.status !== 201) throw new Error(`PUT ${ref} answered ${res.status}`);
    };
    await put(sha256(manifest), manifest, "application/vnd.oci.image.manifest.v1+json");
    const index = Buffer.from(
        JSON.stringify({
            schemaVersion: 2,
            mediaType: "application/vnd.oci.image.index.v1+json",
            manifests: [
                {
                    mediaType: "application/vnd.oci.image.manifest.v1+json",
                    digest: sha256(manifest),
                    size: manifest.length,
                    platform: { architecture: "arm64", os: "linux" },
                },
            ],
        }),
    );
    await put(tag, index, "application/vnd.oci.image.index.v1+json");
    return sha256(index);
}
