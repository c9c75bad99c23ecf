//! Write a compat image-layout tar for `ctr images import`:
//!
//! ```sh
//! cargo run -p skiff-image --example compat-tar -- NAME FILE.wasm OUT.tar [ARG...]
//! ctr images import --platform wasi/wasm OUT.tar
//! ```
//!
//! `SKIFF_COMPAT_PLATFORM=linux/amd64` writes that platform instead of wasi/wasm (for
//! Kubernetes nodes; see docs/containerd.md).

fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.len() < 3 {
        eprintln!("usage: compat-tar NAME FILE.wasm OUT.tar [ARG...]");
        std::process::exit(2);
    }
    let wasm = std::fs::read(&args[1]).unwrap_or_else(|e| {
        eprintln!("compat-tar: cannot read {}: {e}", args[1]);
        std::process::exit(1)
    });
    let mut config = skiff_image::compat::CompatConfig {
        name: args[0].clone(),
        wasm,
        args: args[3..].to_vec(),
        ..Default::default()
    };
    if let Ok(p) = std::env::var("SKIFF_COMPAT_PLATFORM") {
        let Some((os, arch)) = p.split_once('/') else {
            eprintln!("compat-tar: SKIFF_COMPAT_PLATFORM must be OS/ARCH, e.g. linux/amd64");
            std::process::exit(2)
        };
        config.os = os.into();
        config.architecture = arch.into();
    }
    let image = skiff_image::compat::CompatImage::new(config).unwrap_or_else(|e| {
        eprintln!("compat-tar: {e}");
        std::process::exit(1)
    });
    let tar = image.layout_tar().unwrap_or_else(|e| {
        eprintln!("compat-tar: {e}");
        std::process::exit(1)
    });
    if let Err(e) = std::fs::write(&args[2], tar) {
        eprintln!("compat-tar: cannot write {}: {e}", args[2]);
        std::process::exit(1);
    }
    println!("{} {}", image.name, image.manifest.digest);
}
