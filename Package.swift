// swift-tools-version:6.1
import PackageDescription

/// A nonisolated async function runs where its caller runs (SE-0461) instead of hopping to the
/// generic executor on entry and after each call: a request's pipeline runs on its event loop's
/// task executor throughout, and each hop was a check of the task's executor preference under
/// the task's status lock (docs/ARCHITECTURE.md, "Threads and tasks").
let callerIsolation: [SwiftSetting] = [.enableUpcomingFeature("NonisolatedNonsendingByDefault")]

let package = Package(
    name: "sluice",
    platforms: [.macOS(.v14)],
    products: [
        .library(name: "Kernel", targets: ["Kernel"]),
        .library(name: "Plugins", targets: ["Plugins"]),
        .library(name: "KernelTesting", targets: ["KernelTesting"]),
        .library(name: "SluiceCLI", targets: ["SluiceCLI"]),
        .executable(name: "sluice", targets: ["sluice"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-atomics.git", from: "1.3.0"),
        .package(url: "https://github.com/apple/swift-log.git", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle.git", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-argument-parser.git", from: "1.8.2"),
        .package(url: "https://github.com/vapor/jwt-kit.git", from: "5.7.1"),
        .package(url: "https://github.com/apple/swift-crypto.git", from: "4.5.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus.git", from: "2.4.1"),
        // The state database (Sources/Kernel/State): SQLite embedded, PostgreSQL shared by replicas.
        .package(url: "https://github.com/vapor/sqlite-nio.git", from: "1.13.2"),
        .package(url: "https://github.com/vapor/postgres-nio.git", from: "1.33.2"),
    ],
    targets: [
        .systemLibrary(name: "CCurl", pkgConfig: "libcurl", providers: [.apt(["libcurl4-openssl-dev"])]),
        .systemLibrary(name: "CJansson", pkgConfig: "jansson", providers: [.apt(["libjansson-dev"])]),
        .systemLibrary(name: "CSystemd", pkgConfig: "libsystemd", providers: [.apt(["libsystemd-dev"])]),
        .systemLibrary(name: "CHiredis", pkgConfig: "hiredis", providers: [.apt(["libhiredis-dev"])]),
        .target(name: "CJSONBudget", dependencies: ["CJansson"]),
        .target(
            name: "Kernel",
            dependencies: [
                "CCurl", "CJansson", "CJSONBudget", "CSystemd",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "Atomics", package: "swift-atomics"),
                .product(name: "SQLiteNIO", package: "sqlite-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: callerIsolation
        ),
        .target(
            name: "Plugins",
            dependencies: [
                "Kernel", "CHiredis",
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "JWTKit", package: "jwt-kit"),
                .product(name: "Crypto", package: "swift-crypto"),
                .product(name: "_CryptoExtras", package: "swift-crypto"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "Atomics", package: "swift-atomics"),
            ],
            swiftSettings: callerIsolation
        ),
        .target(
            name: "KernelTesting",
            dependencies: [
                "Kernel",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: callerIsolation
        ),
        .target(name: "CConcurrencyHook"),
        .target(
            name: "SluiceCLI",
            dependencies: [
                "Kernel", "CConcurrencyHook",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: callerIsolation
        ),
        // The gateway binary allocates with mimalloc (its malloc replaces glibc's for the whole
        // process): less CPU per proxied request than glibc's malloc, and memory freed after a burst
        // of streams goes back to the system (bench/RESULTS.md). Embedders choose their own.
        .executableTarget(name: "sluice", dependencies: ["Kernel", "Plugins", "SluiceCLI"], swiftSettings: callerIsolation,
                          linkerSettings: [.linkedLibrary("mimalloc")]),
        .testTarget(name: "KernelTests", dependencies: ["Kernel", "KernelTesting", .product(name: "NIOHTTP1", package: "swift-nio"),
                                                        .product(name: "NIOEmbedded", package: "swift-nio")],
                    exclude: ["Golden"], swiftSettings: callerIsolation),
        .testTarget(name: "PluginsTests", dependencies: ["Kernel", "Plugins", "KernelTesting", .product(name: "NIOHTTP1", package: "swift-nio"),
                                                 .product(name: "Crypto", package: "swift-crypto"),
                                                 .product(name: "_CryptoExtras", package: "swift-crypto")],
                    swiftSettings: callerIsolation),
    ],
    swiftLanguageModes: [.v6]
)
