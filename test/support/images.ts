/** Small images pushed through the registry API, with the labels the guard reads. */
import { createHash } from "crypto";
import { RegistryEndpoint, authorizedRequest } from "../../lib/registryClient";
import { pushBlob } from "./registry";

const sha256 = (data: Buffer) => `sha256:${createHash("sha256").update(data).digest("hex")}`;

/**
 * Publishes a one-layer OCI image whose config carries `labels`, as an image built from this
 * project's Dockerfile would. Returns the manifest digest the registry reports.
 */
export async function pushLabelledImage(
    endpoint: RegistryEndpoint,
    tag: string,
    labels: Record<string, string>,
    platform = "linux/amd64",
): Promise<string> {
    const [os, architecture] = platform.split("/");
    const layer = Buffer.from(`layer ${JSON.stringify(labels)}\n`);
    const config = Buffer.from(
        JSON.stringify({
            architecture,
            os,
            config: { Labels: labels },
            rootfs: { type: "layers", diff_ids: [sha256(layer)] },
        }),
    );
    const layerDigest = await pushBlob(endpoint, layer);
    const configDigest = await pushBlob(endpoint, config);
    const manifest = Buffer.from(
        JSON.stringify({
            schemaVersion: 2,
            mediaType: "application/vnd.oci.image.manifest.v1+json",
            config: {
                mediaType: "application/vnd.oci.image.config.v1+json",
                digest: configDigest,
                size: config.length,
            },
            layers: [
                {
                    mediaType: "application/vnd.oci.image.layer.v1.tar",
                    digest: layerDigest,
                    size: layer.length,
                },
            ],
        }),
    );
    const res = await authorizedRequest(
        endpoint,
        "PUT",
        `/v2/${endpoint.repository}/manifests/${tag}`,
        { "Content-Type": "application/vnd.oci.image.manifest.v1+json" },
        "push,pull",
        manifest,
    );
    if (res.status !== 201) throw new Error(`manifest PUT answered ${res.status}`);
    return String(res.headers["docker-content-digest"]);
}
