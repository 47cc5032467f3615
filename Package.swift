// swift-tools-version: 6.1
// rlbench: a reinforcement-learning and generative-model workbench.
//
// Dependency direction (never the other way):
//   SeededRandom, Support, Imaging, CKernels  <-  RLCore, Environments  <-  Training, Datasets  <-  Interop
//     <-  Agents, Classifiers  <-  Generative  <-  Viewer  <-  Benchmarks  <-  rlbench (CLI)
//   Training, Environments, Imaging  <-  Sweeps  <-  Benchmarks, rlbench
// Only the Viewer imports SDL (through CSDL2).
import PackageDescription

/// Release builds skip exclusivity checks in the hot numeric modules, and let square roots compile to vector
/// instructions (on Linux `squareRoot()` otherwise becomes a `sqrtf` call per lane that may set errno; the values
/// are the same, IEEE-rounded either way). Everything else keeps Swift's defaults.
let fastMath: [SwiftSetting] = [.unsafeFlags(["-enforce-exclusivity=unchecked", "-Xcc", "-fno-math-errno"],
                                             .when(configuration: .release))]

let package = Package(
    name: "rlbench",
    platforms: [.macOS(.v14)],
    products: [
        .executable(name: "rlbench", targets: ["rlbench"]),
        .library(name: "RLCore", targets: ["RLCore"]),
        .library(name: "Environments", targets: ["Environments"]),
        .library(name: "Agents", targets: ["Agents"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.5.0"),
        // rl-baselines3-zoo style hyperparameter files are YAML.
        .package(url: "https://github.com/jpsim/Yams", from: "6.0.0"),
    ],
    targets: [
        // System libraries (Debian: libopenblas-dev, zlib1g-dev, libsdl2-dev).
        .systemLibrary(name: "CBLAS", path: "Sources/CBLAS", pkgConfig: "openblas",
                       providers: [.apt(["libopenblas-dev"])]),
        .systemLibrary(name: "CZlib", path: "Sources/CZlib", pkgConfig: "zlib",
                       providers: [.apt(["zlib1g-dev"])]),
        .systemLibrary(name: "CSDL2", path: "Sources/CSDL2", pkgConfig: "sdl2",
                       providers: [.apt(["libsdl2-dev"])]),

        // Shared leaves.
        .target(name: "SeededRandom", path: "Sources/SeededRandom", swiftSettings: fastMath),
        .target(name: "Support", path: "Sources/Support"),
        .target(name: "Imaging", dependencies: ["CZlib", "Support"], path: "Sources/Imaging", swiftSettings: fastMath),

        // Element-wise kernels in C, with AVX2 versions chosen at run time (bit-identical to the portable ones),
        // products with one tiny dimension (the values of OpenBLAS's kernels, several times faster), and the panel
        // product for medium ones (no packing, C written once).
        .target(name: "CKernels", path: "Sources/CKernels", linkerSettings: [.linkedLibrary("m")]),

        // The tensor core: tensors, autodiff, layers, losses, optimizers, checkpoints.
        .target(name: "RLCore", dependencies: ["CBLAS", "CKernels", "CZlib", "SeededRandom", "Support"],
                path: "Sources/RLCore", swiftSettings: fastMath),

        // Gymnasium-compatible environments (no dependency on the core).
        .target(name: "Environments", dependencies: ["SeededRandom", "Imaging", "Support", "CZlib"],
                path: "Environments", resources: [.copy("Maps")], swiftSettings: fastMath),

        // What every trainer shares: run folders, metrics, checkpoints, progress, Ctrl-C, layered configs.
        .target(name: "Training", dependencies: ["RLCore", "SeededRandom", "Support", .product(name: "Yams", package: "Yams")],
                path: "Sources/Training", swiftSettings: fastMath),

        // Sweeps (many runs as child processes, on this machine's cores or a Ray cluster) and reports over run folders.
        .target(name: "Sweeps", dependencies: ["Training", "Environments", "Imaging", "SeededRandom", "Support"],
                path: "Sources/Sweeps", resources: [.copy("Ray")]),

        // The data sets: the bundled 8x8 digits, MNIST-format IDX files, 2-D Gaussian mixtures.
        .target(name: "Datasets", dependencies: ["RLCore", "SeededRandom"], path: "Sources/Datasets",
                resources: [.copy("Resources")]),

        // Generative models (autoencoder, VAE, GAN) and their training runs.
        .target(name: "Generative", dependencies: ["RLCore", "Datasets", "Training", "Classifiers", "Imaging", "SeededRandom", "Support"],
                path: "Sources/Generative", resources: [.copy("Configs")], swiftSettings: fastMath),

        // Image classifiers (MLP, LeNet-5, a small ResNet), their training runs, and the LeNet scorer of generated images.
        .target(name: "Classifiers", dependencies: ["RLCore", "Datasets", "Training", "Imaging", "SeededRandom", "Support"],
                path: "Sources/Classifiers", resources: [.copy("Configs")], swiftSettings: fastMath),

        // Learning agents on the core and the environments.
        .target(name: "Agents", dependencies: ["RLCore", "Environments", "SeededRandom", "Imaging", "Interop", "Support", "Training",
                                               .product(name: "Yams", package: "Yams")],
                path: "Agents", resources: [.copy("Configs")], swiftSettings: fastMath),

        // Other tools' formats: ONNX export of acting and generating networks.
        .target(name: "Interop", dependencies: ["RLCore", "CZlib", "Environments", "Training", "Support"], path: "Sources/Interop"),

        // The optional SDL2 window.
        .target(name: "Viewer", dependencies: ["CSDL2", "Imaging", "Environments", "Agents", "Generative", "RLCore"],
                path: "Sources/Viewer"),

        // What the command-line tool and its benchmarks share: failure messages, seed parsing.
        .target(name: "CLIKit", dependencies: ["Support", .product(name: "ArgumentParser", package: "swift-argument-parser")],
                path: "Sources/CLIKit"),

        // `rlbench bench ...`: the benchmark harness, with its Python peers (PyTorch, Stable-Baselines3) as resources.
        .target(name: "Benchmarks",
                dependencies: ["RLCore", "CBLAS", "CKernels", "Environments", "Training", "Agents", "Datasets", "Generative",
                               "Viewer", "Sweeps", "SeededRandom", "Support", "CLIKit",
                               .product(name: "ArgumentParser", package: "swift-argument-parser")],
                path: "Sources/Benchmarks", resources: [.copy("Peers")], swiftSettings: fastMath),

        // The command-line tool.
        .executableTarget(name: "rlbench",
                          dependencies: ["RLCore", "CKernels", "Environments", "Training", "Agents", "Datasets", "Generative",
                                         "Classifiers", "Viewer", "Sweeps", "Imaging", "SeededRandom", "Support", "CLIKit", "Benchmarks",
                                         "Interop",
                                         .product(name: "ArgumentParser", package: "swift-argument-parser")],
                          path: "Sources/rlbench"),

        .testTarget(name: "RLCoreTests", dependencies: ["RLCore", "CKernels", "SeededRandom", "TestSupport"]),
        .testTarget(name: "ImagingTests", dependencies: ["Imaging"]),
        .testTarget(name: "EnvironmentsTests", dependencies: ["Environments", "SeededRandom", "Imaging", "Support", "TestSupport"],
                    exclude: ["Recordings"]),
        .testTarget(name: "AgentsTests", dependencies: ["Agents", "Interop", "Training", "RLCore", "Environments", "SeededRandom", "Support",
                                                      "TestSupport"]),
        .testTarget(name: "ViewerTests", dependencies: ["Viewer", "Training", "Imaging", "Environments", "Agents", "TestSupport"]),
        .testTarget(name: "CLITests", dependencies: ["TestSupport", "Imaging", "Support"]),
        // Helpers shared by test targets: a private Xvfb display, running the built `rlbench`, scratch folders.
        .target(name: "TestSupport", dependencies: ["Environments", "SeededRandom"], path: "Tests/TestSupport"),
        .testTarget(name: "GenerativeTests", dependencies: ["Generative", "Datasets", "Training", "RLCore", "SeededRandom",
                                                            "Imaging", "TestSupport"]),
        .testTarget(name: "ClassifiersTests", dependencies: ["Classifiers", "Datasets", "Training", "RLCore", "SeededRandom",
                                                             "TestSupport"]),
        .testTarget(name: "SweepsTests", dependencies: ["Sweeps", "Training", "TestSupport"]),
        .testTarget(name: "SupportTests", dependencies: ["Support", "SeededRandom", "TestSupport"]),
        .testTarget(name: "InteropTests", dependencies: ["Interop", "Agents", "Generative", "Classifiers", "Training", "RLCore",
                                                         "Environments", "SeededRandom", "Support", "TestSupport"]),
    ]
)
