//! Gives the binaries an rpath to Ray's `libray_api.so`, whose folder rustyray's build script
//! found (it reaches dependents as DEP_RAY_API_LIBDIR). A Ray worker needs none: it has the
//! library loaded already when it opens our cdylib.
fn main() {
    if let Ok(dir) = std::env::var("DEP_RAY_API_LIBDIR") {
        println!("cargo:rustc-link-arg=-Wl,-rpath,{dir}");
    }
}
