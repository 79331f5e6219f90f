// swift-tools-version:6.0
import PackageDescription

// The pipeline, one module per job:
//   CaissonShim    – the few Linux calls Swift cannot import (namespaces, openat2, seccomp, variadics)
//   CaissonSystem  – small POSIX layer: errno errors, owned file descriptors, files
//   CaissonConfig  – caisson.conf + environment → paths and defaults
//   CaissonRuntime – rootfs → namespaces → mounts → identity → environment → hooks → exec
//   CaissonOCI     – image references, digests, manifests, indexes, configs, platforms
//   CaissonLayers  – layer tarballs (libarchive) merged with whiteouts into one file tree
//   CaissonSquashfs– the file tree written as one squashfs image (libsquashfs)
//   caisson        – the command line, one file per subcommand
let package = Package(
    name: "Caisson",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "caisson", targets: ["caisson"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
    ],
    targets: [
        .target(name: "CaissonShim"),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CSquashfs", pkgConfig: "libsquashfs1", providers: [.apt(["libsquashfs-dev"])]),
        .target(name: "CaissonOCI"),
        .target(name: "CaissonSquashfs", dependencies: ["CSquashfs", "CaissonSystem"]),
        .target(name: "CaissonLayers", dependencies: ["CArchive", "CaissonSquashfs", "CaissonSystem"]),
        .target(name: "CaissonSystem", dependencies: ["CaissonShim"]),
        .target(name: "CaissonConfig", dependencies: ["CaissonSystem"]),
        .target(name: "CaissonRuntime", dependencies: ["CaissonShim", "CaissonSystem", "CaissonConfig"]),
        .executableTarget(
            name: "caisson",
            dependencies: [
                "CaissonRuntime", "CaissonConfig", "CaissonSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        .testTarget(name: "CaissonRuntimeTests", dependencies: ["CaissonRuntime", "CaissonConfig", "CaissonSystem", "CaissonShim"]),
        .testTarget(name: "CaissonCLITests", dependencies: ["caisson"]),
        .testTarget(name: "CaissonOCITests", dependencies: ["CaissonOCI"]),
        .testTarget(name: "CaissonSquashfsTests", dependencies: ["CaissonSquashfs", "CaissonSystem"]),
        .testTarget(name: "CaissonLayersTests", dependencies: ["CaissonLayers", "CaissonSquashfs", "CArchive"]),
        .testTarget(name: "EndToEndTests", dependencies: ["CaissonSystem"]),
    ]
)
