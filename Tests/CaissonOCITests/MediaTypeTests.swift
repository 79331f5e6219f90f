import Testing
@testable import CaissonOCI

@Suite struct MediaTypeTests {
    @Test func acceptHeaderHasAllFourManifestTypes() {
        #expect(Set(MediaType.manifestAccept) == [
            "application/vnd.oci.image.index.v1+json",
            "application/vnd.oci.image.manifest.v1+json",
            "application/vnd.docker.distribution.manifest.list.v2+json",
            "application/vnd.docker.distribution.manifest.v2+json",
        ])
        #expect(MediaType.manifestAccept.count == 4)
        #expect(!MediaType.manifestAccept.contains(MediaType.dockerManifestSchema1Signed))
    }

    @Test func essenceStripsParameters() {
        #expect(MediaType.essence("application/vnd.oci.image.manifest.v1+json; charset=utf-8") == MediaType.ociManifest)
        #expect(MediaType.essence("  Application/VND.OCI.Image.Index.v1+JSON ") == MediaType.ociIndex)
        #expect(MediaType.essence("") == "")
    }

    @Test func classification() {
        #expect(MediaType.isManifest(MediaType.dockerManifest))
        #expect(!MediaType.isManifest(MediaType.ociIndex))
        #expect(MediaType.isIndex(MediaType.dockerManifestList + "; q=1"))
        #expect(MediaType.isSchema1(MediaType.dockerManifestSchema1Signed))
        #expect(MediaType.isConfig(MediaType.dockerConfig))
        #expect(MediaType.isLayer(MediaType.dockerLayerZstd))
        #expect(!MediaType.isLayer(MediaType.ociConfig))
    }

    @Test(arguments: [
        ("application/vnd.oci.image.layer.v1.tar", LayerCompression.none),
        ("application/vnd.oci.image.layer.v1.tar+gzip", .gzip),
        ("application/vnd.oci.image.layer.v1.tar+zstd", .zstd),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar", .none),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+gzip", .gzip),
        ("application/vnd.oci.image.layer.nondistributable.v1.tar+zstd", .zstd),
        ("application/vnd.docker.image.rootfs.diff.tar.gzip", .gzip),
        ("application/vnd.docker.image.rootfs.diff.tar", .none),
        ("application/vnd.docker.image.rootfs.diff.tar.zstd", .zstd),
        ("application/vnd.docker.image.rootfs.foreign.diff.tar.gzip", .gzip),
        ("Application/vnd.oci.image.layer.v1.tar+gzip; foo=bar", .gzip),
    ])
    func compressionFromMediaType(_ mediaType: String, _ expected: LayerCompression) {
        #expect(LayerCompression(mediaType: mediaType) == expected)
    }

    @Test(arguments: [MediaType.ociConfig, MediaType.ociManifest, "application/octet-stream", "", "application/vnd.oci.image.layer.v1.tar+bzip2"])
    func compressionUnknownForOtherTypes(_ mediaType: String) {
        #expect(LayerCompression(mediaType: mediaType) == nil)
    }

    @Test(arguments: [
        ([0x1f, 0x8b, 0x08, 0x00] as [UInt8], LayerCompression.gzip),
        ([0x1f, 0x8b], .gzip),
        ([0x28, 0xb5, 0x2f, 0xfd, 0x04, 0x00], .zstd),
        ([0x28, 0xb5, 0x2f], .none),
        ([0x1f], .none),
        ([], .none),
        (Array("etc/passwd".utf8) + [0, 0, 0], .none),
        ([0x8b, 0x1f], .none),
        ([0xfd, 0x2f, 0xb5, 0x28], .none),
    ])
    func sniffing(_ bytes: [UInt8], _ expected: LayerCompression) {
        #expect(LayerCompression.sniff(bytes) == expected)
        #expect(LayerCompression.sniff(bytes[...]) == expected)
    }

    @Test func detectPrefersMagicThenMediaType() {
        let zstd: [UInt8] = [0x28, 0xb5, 0x2f, 0xfd]
        let gzip: [UInt8] = [0x1f, 0x8b, 0x08]
        let plain = Array("bin/".utf8)
        #expect(LayerCompression.detect(mediaType: MediaType.dockerLayerGzip, firstBytes: zstd) == .zstd)
        #expect(LayerCompression.detect(mediaType: MediaType.ociLayerZstd, firstBytes: plain) == .zstd)
        #expect(LayerCompression.detect(mediaType: "application/octet-stream", firstBytes: gzip) == .gzip)
        #expect(LayerCompression.detect(mediaType: nil, firstBytes: plain) == LayerCompression.none)
        #expect(LayerCompression.detect(mediaType: MediaType.ociLayer, firstBytes: plain) == LayerCompression.none)
    }
}
