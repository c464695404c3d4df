// swift-tools-version:5.9
//
// llmedge for Swift (iOS, macOS, Linux): a Swift API over llmedge's C API.
//
// Two ways to get the C library:
//  - development (macOS/Linux): the `CLlmedge` system-library target below points at the
//    repository's include/llmedge.h through Sources/CLlmedge/module.modulemap and links
//    libllmedge built by cargo; pass its folder to the linker:
//        cargo build --release -p llmedge-ffi
//        swift build -Xlinker -L../../target/release
//  - apps (iOS): ./build-xcframework.sh builds build/CLlmedge.xcframework (static libraries for
//    iOS devices, the iOS simulator and macOS, with the header); when it exists this package
//    uses it as a binary target instead, and nothing else is needed.
import Foundation
import PackageDescription

let xcframework = "build/CLlmedge.xcframework"
let useXCFramework = FileManager.default.fileExists(atPath: Context.packageDirectory + "/" + xcframework)

let cLibrary: Target = useXCFramework
    ? .binaryTarget(name: "CLlmedge", path: xcframework)
    : .systemLibrary(name: "CLlmedge", path: "Sources/CLlmedge")

// The static library in the XCFramework is Rust + llama.cpp (C++), built with Metal.
let appleLinks: [LinkerSetting] = useXCFramework
    ? [
        .linkedLibrary("c++"),
        .linkedFramework("Accelerate"),
        .linkedFramework("Foundation"),
        .linkedFramework("Metal"),
        .linkedFramework("MetalKit"),
    ]
    : []

let package = Package(
    name: "Llmedge",
    platforms: [.iOS(.v15), .macOS(.v12)],
    products: [
        .library(name: "Llmedge", targets: ["Llmedge"]),
    ],
    targets: [
        cLibrary,
        .target(
            name: "Llmedge",
            dependencies: ["CLlmedge"],
            path: "Sources/Llmedge",
            linkerSettings: appleLinks
        ),
        .testTarget(
            name: "LlmedgeTests",
            dependencies: ["Llmedge"],
            path: "Tests/LlmedgeTests"
        ),
    ]
)
