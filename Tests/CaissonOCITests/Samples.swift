@testable import CaissonOCI

/// Real-world-shaped documents (structure as registries serve them; digests made up).
enum Samples {
    /// An OCI image manifest with annotations everywhere and fields this module does not know.
    static let ociManifest = """
    {
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.manifest.v1+json",
      "config": {
        "mediaType": "application/vnd.oci.image.config.v1+json",
        "digest": "\(sha("1"))",
        "size": 7023,
        "data": "e30="
      },
      "layers": [
        {
          "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
          "digest": "\(sha("2"))",
          "size": 32654,
          "annotations": { "org.opencontainers.image.title": "base.tar.gz" }
        },
        {
          "mediaType": "application/vnd.oci.image.layer.v1.tar+zstd",
          "digest": "\(sha("3"))",
          "size": 16724,
          "x-unknown-field": [1, 2, { "deep": null }]
        },
        {
          "mediaType": "application/vnd.oci.image.layer.nondistributable.v1.tar+gzip",
          "digest": "\(sha("4"))",
          "size": 73109,
          "urls": ["https://mcr.microsoft.com/v2/windows/blobs/\(sha("4"))"]
        }
      ],
      "subject": {
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "digest": "\(sha("5"))",
        "size": 1234
      },
      "annotations": {
        "org.opencontainers.image.created": "2024-05-21T10:11:12Z",
        "org.opencontainers.image.source": "https://github.com/example/app",
        "com.example.key1": "value1",
        "com.example.empty": ""
      },
      "x-vendor-extension": { "nested": true, "list": [] }
    }
    """

    /// A Docker image manifest v2 schema 2, as Docker Hub serves `library/ubuntu` per platform.
    static let dockerManifest = """
    {
       "schemaVersion": 2,
       "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
       "config": {
          "mediaType": "application/vnd.docker.container.image.v1+json",
          "size": 2297,
          "digest": "\(sha("a"))"
       },
       "layers": [
          {
             "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
             "size": 29534055,
             "digest": "\(sha("b"))"
          },
          {
             "mediaType": "application/vnd.docker.image.rootfs.diff.tar.gzip",
             "size": 5000000000,
             "digest": "\(sha("c"))"
          }
       ]
    }
    """

    /// A BuildKit-made OCI index: two images, each followed by its attestation manifest.
    static let ociIndexWithAttestations = """
    {
      "schemaVersion": 2,
      "mediaType": "application/vnd.oci.image.index.v1+json",
      "manifests": [
        {
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "digest": "\(sha("1"))",
          "size": 1611,
          "platform": { "architecture": "amd64", "os": "linux" }
        },
        {
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "digest": "\(sha("2"))",
          "size": 1611,
          "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" }
        },
        {
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "digest": "\(sha("3"))",
          "size": 839,
          "annotations": {
            "vnd.docker.reference.digest": "\(sha("1"))",
            "vnd.docker.reference.type": "attestation-manifest"
          },
          "platform": { "architecture": "unknown", "os": "unknown" }
        },
        {
          "mediaType": "application/vnd.oci.image.manifest.v1+json",
          "digest": "\(sha("4"))",
          "size": 839,
          "annotations": {
            "vnd.docker.reference.digest": "\(sha("2"))",
            "vnd.docker.reference.type": "attestation-manifest"
          },
          "platform": { "architecture": "unknown", "os": "unknown" }
        }
      ],
      "annotations": { "org.opencontainers.image.created": "2024-06-01T00:00:00Z" }
    }
    """

    /// A Docker manifest list, shaped like Docker Hub's `library/ubuntu`.
    static let dockerManifestList = """
    {
      "manifests": [
        {
          "digest": "\(sha("a"))",
          "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "platform": { "architecture": "amd64", "os": "linux" },
          "size": 424
        },
        {
          "digest": "\(sha("b"))",
          "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "platform": { "architecture": "arm", "os": "linux", "variant": "v7" },
          "size": 424
        },
        {
          "digest": "\(sha("c"))",
          "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "platform": { "architecture": "arm64", "os": "linux", "variant": "v8" },
          "size": 424
        },
        {
          "digest": "\(sha("d"))",
          "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "platform": { "architecture": "ppc64le", "os": "linux" },
          "size": 424
        },
        {
          "digest": "\(sha("e"))",
          "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "platform": { "architecture": "s390x", "os": "linux" },
          "size": 424
        },
        {
          "digest": "\(sha("f"))",
          "mediaType": "application/vnd.docker.distribution.manifest.v2+json",
          "platform": { "architecture": "amd64", "os": "windows", "os.version": "10.0.17763.5820", "os.features": ["win32k"] },
          "size": 424
        }
      ],
      "mediaType": "application/vnd.docker.distribution.manifest.list.v2+json",
      "schemaVersion": 2
    }
    """

    /// What Docker Hub sends without a v2 `Accept` header (truncated signature).
    static let schema1 = """
    {
       "schemaVersion": 1,
       "name": "library/hello-world",
       "tag": "latest",
       "architecture": "amd64",
       "fsLayers": [ { "blobSum": "\(sha("a"))" } ],
       "history": [ { "v1Compatibility": "{}" } ],
       "signatures": [ { "header": { "alg": "ES256" }, "signature": "abc", "protected": "def" } ]
    }
    """

    /// A Docker image config with fields this module ignores (Healthcheck, container_config, history).
    static let dockerConfig = """
    {
      "architecture": "amd64",
      "config": {
        "Hostname": "",
        "User": "1000:1000",
        "ExposedPorts": { "8888/tcp": {}, "6006/tcp": {} },
        "Env": ["PATH=/usr/local/nvidia/bin:/usr/local/cuda/bin:/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "CUDA_VERSION=12.4.1"],
        "Entrypoint": ["/opt/nvidia/nvidia_entrypoint.sh"],
        "Cmd": null,
        "Healthcheck": { "Test": ["CMD", "true"], "Interval": 30000000000 },
        "Volumes": { "/workspace": {}, "/data": {} },
        "WorkingDir": "/workspace",
        "Labels": { "com.nvidia.cudnn.version": "9.1.0.70", "maintainer": "NVIDIA CORPORATION" },
        "StopSignal": "SIGINT",
        "OnBuild": null
      },
      "container_config": { "Cmd": ["/bin/sh", "-c", "#(nop) CMD"] },
      "created": "2024-05-20T19:51:21.123456789Z",
      "history": [ { "created": "2024-05-01T00:00:00Z", "created_by": "/bin/sh -c #(nop) ADD file", "empty_layer": true } ],
      "os": "linux",
      "rootfs": {
        "type": "layers",
        "diff_ids": ["\(sha("7"))", "\(sha("8"))"]
      },
      "docker_version": "20.10.7"
    }
    """
}
