// llmedge for Android: an AAR with the same Java API and Kotlin coroutine layer as the JVM
// library (sources shared from ../java) and libllmedge_jni.so for every ABI in `abis` below,
// built from the same Rust crate (../java/Cargo.toml) by ./build-rust.sh (cargo-ndk).
plugins {
    id("com.android.library") version "8.5.2"
    id("org.jetbrains.kotlin.android") version "1.9.25"
}

/** Android ABI -> Rust target. Keep in sync with build-rust.sh. */
val abis = mapOf(
    "arm64-v8a" to "aarch64-linux-android",
    "x86_64" to "x86_64-linux-android",
)

val rustJniLibs = layout.buildDirectory.dir("rustJniLibs")

android {
    namespace = "io.llmedge"
    compileSdk = 34
    // The NDK build-rust.sh uses; override with -PndkVersion=... to match yours.
    ndkVersion = (findProperty("ndkVersion") as String?) ?: "26.3.11579264"

    defaultConfig {
        // Android 8.0: java.nio.file (used by the JVM loader path) and a 64-bit llama.cpp.
        minSdk = 26
        ndk {
            abiFilters += abis.keys
        }
        // Keep the classes, fields and constructors the native library reaches by name.
        consumerProguardFiles("consumer-rules.pro")
    }

    sourceSets {
        getByName("main") {
            manifest.srcFile("src/main/AndroidManifest.xml")
            // One source of truth: the JVM library's Java and Kotlin sources.
            java.srcDirs("../java/llmedge/src/main/java", "../java/llmedge-kotlin/src/main/kotlin")
            jniLibs.srcDirs(rustJniLibs)
        }
    }

    compileOptions {
        sourceCompatibility = JavaVersion.VERSION_11
        targetCompatibility = JavaVersion.VERSION_11
    }

    kotlinOptions {
        jvmTarget = "11"
    }

    buildTypes {
        getByName("release") {
            isMinifyEnabled = false
        }
    }
}

dependencies {
    implementation("org.jetbrains.kotlinx:kotlinx-coroutines-android:1.8.1")
}

// Build the Rust library for every ABI before the native libraries are merged into the AAR.
val cargoBuild by tasks.registering(Exec::class) {
    group = "build"
    description = "Builds libllmedge_jni.so for ${abis.keys.joinToString()} with cargo-ndk"
    workingDir = projectDir
    commandLine("./build-rust.sh", rustJniLibs.get().asFile.absolutePath)
    inputs.files(fileTree("../../core/src"), fileTree("../java/src"), "../java/Cargo.toml", "../../Cargo.lock")
    outputs.dir(rustJniLibs)
}

tasks.matching { it.name.startsWith("merge") && it.name.endsWith("JniLibFolders") }.configureEach {
    dependsOn(cargoBuild)
}
