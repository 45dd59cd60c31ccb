// swift-tools-version:6.1
// A platform team's own gateway: Sluice's Kernel and built-in plugins, two plugins of the
// team's own, and one binary that serves them all with the whole `sluice` command line.
import PackageDescription

let package = Package(
    name: "CustomGateway",
    products: [
        .executable(name: "acme-gateway", targets: ["acme-gateway"]),
        .library(name: "AcmePlugins", targets: ["AcmePlugins"]),
    ],
    dependencies: [
        // In your own repository: .package(url: "https://…/sluice.git", from: "…").
        .package(name: "sluice", path: "../.."),
        .package(url: "https://github.com/apple/swift-nio.git", from: "2.101.2"),
    ],
    targets: [
        .target(
            name: "AcmePlugins",
            dependencies: [
                .product(name: "Kernel", package: "sluice"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
        .executableTarget(
            name: "acme-gateway",
            dependencies: [
                "AcmePlugins",
                .product(name: "Kernel", package: "sluice"),
                .product(name: "Plugins", package: "sluice"),
                .product(name: "SluiceCLI", package: "sluice"),
            ]
        ),
        .testTarget(
            name: "AcmePluginsTests",
            dependencies: [
                "AcmePlugins",
                .product(name: "Kernel", package: "sluice"),
                .product(name: "Plugins", package: "sluice"),
                .product(name: "KernelTesting", package: "sluice"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]
        ),
    ],
    swiftLanguageModes: [.v6]
)
