// swift-tools-version:6.0
import PackageDescription

// The pipeline, one module per job:
//   CaissonShim    – the few Linux calls Swift cannot import (namespaces, openat2, seccomp, variadics)
//   CaissonSystem  – small POSIX layer: errno errors, owned file descriptors, files
//   CaissonConfig  – caisson.conf + environment → paths and defaults
//   CaissonRuntime – rootfs or .sqsh → namespaces → mounts → identity → environment → hooks → exec; joining one
//   CaissonStore   – named containers in the data path, and which processes run them
//   CaissonOCI     – image references, digests, manifests, indexes, configs, platforms
//   CaissonRegistry– the OCI distribution client: auth, manifests, verified blobs, the layer cache
//   CaissonLayers  – layer tarballs (libarchive) merged with whiteouts into one file tree
//   CaissonSquashfs– the file tree written as one squashfs image (libsquashfs)
//   CaissonImport  – the pipeline: source → manifest → cached blobs → merged layers → .sqsh
//   caisson        – the command line, one file per subcommand
//   CaissonSlurm   – the Slurm plugin's decisions (options, plugstack.conf, step model, environment rules), Slurm-free
//   CSpank         – SPANK's data symbols, variadic wrappers and the privilege-dropping spawn (C)
//   SpankCaisson   – the SPANK plugin spank_caisson.so: entry points, running caisson as the user, tasks joining
let package = Package(
    name: "Caisson",
    platforms: [.macOS(.v13)],
    products: [
        .executable(name: "caisson", targets: ["caisson"]),
        .executable(name: "caisson-import", targets: ["caisson-import"]),
        // The Slurm plugin (plugstack.conf: required PREFIX/lib/caisson/spank_caisson.so ...).
        .library(name: "spank_caisson", type: .dynamic, targets: ["SpankCaisson"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        .package(url: "https://github.com/swift-server/async-http-client", from: "1.37.0"),
        .package(url: "https://github.com/apple/swift-crypto", "3.12.3"..<"5.0.0"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.80.0"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.30.0"),
    ],
    targets: [
        .target(name: "CaissonShim"),
        .systemLibrary(name: "CArchive", pkgConfig: "libarchive", providers: [.apt(["libarchive-dev"])]),
        .systemLibrary(name: "CSquashfs", pkgConfig: "libsquashfs1", providers: [.apt(["libsquashfs-dev"])]),
        .target(name: "CaissonOCI"),
        .target(name: "CaissonRegistry", dependencies: [
            "CaissonOCI", "CaissonSystem",
            .product(name: "AsyncHTTPClient", package: "async-http-client"),
            .product(name: "Crypto", package: "swift-crypto"),
            .product(name: "NIOCore", package: "swift-nio"),
            .product(name: "NIOFoundationCompat", package: "swift-nio"),
            .product(name: "NIOHTTP1", package: "swift-nio"),
            .product(name: "NIOSSL", package: "swift-nio-ssl"),
        ]),
        .target(name: "CaissonSquashfs", dependencies: ["CSquashfs", "CaissonSystem"]),
        .target(name: "CaissonLayers", dependencies: [
            "CArchive", "CaissonSquashfs", "CaissonSystem", .product(name: "Crypto", package: "swift-crypto"),
        ]),
        .target(name: "CaissonSystem", dependencies: ["CaissonShim"]),
        .target(name: "CaissonConfig", dependencies: ["CaissonSystem"]),
        .target(name: "CaissonRuntime", dependencies: ["CaissonShim", "CaissonSystem", "CaissonConfig"]),
        .target(name: "CaissonStore", dependencies: ["CaissonShim", "CaissonSystem", "CaissonConfig"]),
        .target(name: "CaissonImport", dependencies: [
            "CaissonOCI", "CaissonRegistry", "CaissonLayers", "CaissonSquashfs", "CaissonConfig", "CaissonSystem", "CArchive", "CaissonShim",
        ]),
        .target(name: "CaissonSlurm", dependencies: ["CaissonRuntime"]),
        // slurm/spank.h comes from Debian's libslurm-dev; Slurm's symbols resolve when slurmstepd,
        // slurmd, srun, salloc or sbatch load the plugin, so nothing is linked against libslurm.
        .target(name: "CSpank"),
        .target(name: "SpankCaisson", dependencies: ["CSpank", "CaissonSlurm", "CaissonRuntime", "CaissonStore", "CaissonSystem"],
                exclude: ["exports.map"],
                linkerSettings: [.unsafeFlags(["-Xlinker", "--version-script=\(Context.packageDirectory)/Sources/SpankCaisson/exports.map"])]),
        .executableTarget(
            name: "caisson",
            dependencies: [
                "CaissonRuntime", "CaissonStore", "CaissonConfig", "CaissonSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
            ]
        ),
        // The image tools, a separate program so that `caisson start` never loads the network stack.
        .executableTarget(
            name: "caisson-import",
            dependencies: [
                "CaissonImport", "CaissonOCI", "CaissonRegistry", "CaissonSquashfs", "CaissonStore", "CaissonConfig", "CaissonSystem",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Crypto", package: "swift-crypto"),
            ]
        ),
        .testTarget(name: "CaissonRuntimeTests", dependencies: ["CaissonRuntime", "CaissonConfig", "CaissonSystem", "CaissonShim"]),
        .testTarget(name: "CaissonCLITests", dependencies: ["caisson"]),
        .testTarget(name: "CaissonOCITests", dependencies: ["CaissonOCI"]),
        .testTarget(name: "CaissonRegistryTests", dependencies: ["CaissonRegistry", "CaissonOCI"]),
        .testTarget(name: "CaissonSquashfsTests", dependencies: ["CaissonSquashfs", "CaissonSystem"]),
        .testTarget(name: "CaissonLayersTests", dependencies: ["CaissonLayers", "CaissonSquashfs", "CArchive"]),
        .testTarget(name: "CaissonSlurmTests", dependencies: ["CaissonSlurm"]),
        .testTarget(name: "EndToEndTests", dependencies: ["CaissonSystem"]),
    ]
)
