//! Link fixes for the native speech stack (see docs/architecture.md, "Build").

fn main() {
    // espeak-rs-sys builds espeak-ng against Debian's libsonic but does not
    // link it; without this the final link fails on `sonicDestroyStream`.
    println!("cargo:rustc-link-lib=dylib=sonic");

    // piper-rs loads ONNX Runtime dynamically from the folder scripts/setup
    // fills. An rpath lets binaries, tests and benches find it with no
    // LD_LIBRARY_PATH.
    let manifest = std::env::var("CARGO_MANIFEST_DIR").unwrap_or_else(|_| ".".into());
    let ort = std::path::Path::new(&manifest).join(".cache/onnxruntime");
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", ort.display());
    println!("cargo:rerun-if-changed=build.rs");
}
