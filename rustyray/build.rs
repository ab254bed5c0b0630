//! With the `ray` feature: compiles the C++ shim (`ray/shim.cc`) against Ray's C++ API and links
//! `libray_api.so`. Without it: nothing.
//!
//! Ray's C++ API comes from the `ray-cpp` Python package (same version as `ray`). It is found
//! through `RAY_CPP_DIR` (the package's `cpp` folder, holding `include/` and `lib/`), or else by
//! asking the Python in `RUSTYRAY_PYTHON` (default `python3`) where `ray` is installed.
//!
//! `RUSTYRAY_RAY_STUB=1` skips the shim: the `ray` code then type-checks (`cargo check`,
//! `cargo clippy`) on a machine without Ray's C++ API, but nothing built with it links. CI uses
//! it to check every feature combination on every run.

#[cfg(feature = "ray")]
use std::path::{Path, PathBuf};
#[cfg(feature = "ray")]
use std::process::Command;

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    #[cfg(feature = "ray")]
    build_shim();
}

#[cfg(feature = "ray")]
fn build_shim() {
    println!("cargo:rerun-if-changed=ray/shim.cc");
    println!("cargo:rerun-if-env-changed=RUSTYRAY_RAY_STUB");
    if std::env::var_os("RUSTYRAY_RAY_STUB").is_some_and(|v| !v.is_empty() && v != "0") {
        println!(
            "cargo:warning=RUSTYRAY_RAY_STUB is set: the Ray shim is not built, so this build \
             type-checks the `ray` code but cannot link"
        );
        return;
    }
    println!("cargo:rerun-if-env-changed=RAY_CPP_DIR");
    println!("cargo:rerun-if-env-changed=RUSTYRAY_PYTHON");
    let cpp = match find_ray_cpp() {
        Ok(dir) => dir,
        Err(why) => {
            eprintln!("{why}");
            panic!(
                "\n\nrustyray's `ray` feature needs Ray's C++ API, and {why}.\n\
                 Install it next to Ray, in the same version:\n\
                 \n    python3 -m pip install \"ray[default]==2.60.0\" ray-cpp==2.60.0\n\
                 \nthen build again (with that Python first on PATH, or RUSTYRAY_PYTHON=/path/to/python),\n\
                 or point RAY_CPP_DIR at the package's `ray/cpp` folder.\n\
                 Without the `ray` feature, RustyRay runs embedded and needs none of this.\n"
            );
        }
    };
    let include = cpp.join("include");
    let lib = cpp.join("lib");
    cc::Build::new()
        .cpp(true)
        .file("ray/shim.cc")
        .include(&include)
        .flag("-std=c++17")
        // The ABI libray_api.so was built with; with the default one, the process aborts in free().
        .define("_GLIBCXX_USE_CXX11_ABI", "0")
        .flag_if_supported("-Wno-unused-parameter")
        .flag_if_supported("-Wno-deprecated-declarations")
        .warnings(false)
        .cargo_metadata(false)
        .compile("rustyray_ray_shim");
    let out = PathBuf::from(std::env::var_os("OUT_DIR").expect("cargo sets OUT_DIR"));
    println!("cargo:rustc-link-search=native={}", out.display());
    // Whole archive: the shim's static initializers register its entry points with Ray, and a
    // worker library must keep them although nothing calls them directly.
    println!("cargo:rustc-link-lib=static:+whole-archive=rustyray_ray_shim");
    println!("cargo:rustc-link-lib=dylib=stdc++");
    println!("cargo:rustc-link-search=native={}", lib.display());
    // Listed after the shim, whose calls into it make the linker record libray_api.so as
    // NEEDED even under --as-needed: Ray's worker skips a library that does not depend on it
    // ("isn't integrated with Ray").
    println!("cargo:rustc-link-lib=dylib=ray_api");
    // For this package's own tests and examples; other crates pass their own rpath (see
    // docs/ray.md) or set LD_LIBRARY_PATH.
    println!("cargo:rustc-link-arg=-Wl,-rpath,{}", lib.display());
    // Read by dependents' build scripts as DEP_RAY_API_LIBDIR.
    println!("cargo:libdir={}", lib.display());
}

#[cfg(feature = "ray")]
fn find_ray_cpp() -> Result<PathBuf, String> {
    if let Some(dir) = std::env::var_os("RAY_CPP_DIR") {
        let dir = PathBuf::from(dir);
        return check(&dir).map(|()| dir);
    }
    let python = std::env::var("RUSTYRAY_PYTHON").unwrap_or_else(|_| "python3".to_owned());
    let output = Command::new(&python)
        .args(["-c", "import os, ray; print(os.path.dirname(ray.__file__))"])
        .output()
        .map_err(|e| format!("`{python}` could not be run ({e})"))?;
    if !output.status.success() {
        return Err(format!("`{python}` has no `ray` module installed"));
    }
    let ray = String::from_utf8_lossy(&output.stdout).trim().to_owned();
    let dir = Path::new(&ray).join("cpp");
    check(&dir).map(|()| dir)
}

#[cfg(feature = "ray")]
fn check(dir: &Path) -> Result<(), String> {
    let header = dir.join("include/ray/api.h");
    let lib = dir.join("lib/libray_api.so");
    if header.is_file() && lib.is_file() {
        Ok(())
    } else {
        Err(format!(
            "{} has no include/ray/api.h and lib/libray_api.so (is `ray-cpp` installed, in the \
             same version as `ray`?)",
            dir.display()
        ))
    }
}
