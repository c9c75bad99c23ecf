//! `skiff key generate`: a signing key pair in cosign's format; and how the signing verbs read
//! a private key and its password.

use anyhow::{bail, Context};
use clap::{Args, Subcommand};
use skiff_store::atomic::{write_atomic, Atomic};
use skiff_trust::PrivateKey;
use std::io::IsTerminal;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

#[derive(Debug, Subcommand)]
pub enum KeyCommand {
    Generate(GenerateArgs),
}

/// Generate a signing key pair in cosign's format (ECDSA P-256; the private key encrypted)
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff key generate                                writes cosign.key (0600) and cosign.pub\n  \
SKIFF_KEY_PASSWORD=… skiff key generate --output-key-prefix ci\n\n\
The password comes from SKIFF_KEY_PASSWORD (or COSIGN_PASSWORD), else it is asked on the\n\
terminal. The files work with cosign and skopeo as they are.")]
pub struct GenerateArgs {
    /// Write PREFIX.key and PREFIX.pub
    #[arg(long, value_name = "PREFIX", default_value = "cosign")]
    pub output_key_prefix: PathBuf,

    /// Replace existing key files
    #[arg(long)]
    pub force: bool,
}

pub fn key(cmd: KeyCommand) -> anyhow::Result<u8> {
    match cmd {
        KeyCommand::Generate(args) => generate(args),
    }
}

fn generate(args: GenerateArgs) -> anyhow::Result<u8> {
    let with = |ext: &str| {
        let mut p = args.output_key_prefix.clone().into_os_string();
        p.push(ext);
        PathBuf::from(p)
    };
    let (private, public) = (with(".key"), with(".pub"));
    for p in [&private, &public] {
        if p.exists() && !args.force {
            bail!(
                "{} exists; give --force to replace it (a replaced private key cannot sign for the \
                 old public key), or --output-key-prefix to write elsewhere",
                p.display()
            );
        }
    }
    let password = password(true)?;
    let pair = skiff_trust::key::generate(&password)?;
    write_atomic(&private, Atomic::PRIVATE, pair.private_pem.as_bytes())
        .with_context(|| format!("writing {}", private.display()))?;
    let public_mode = Atomic {
        mode: 0o644,
        temp_dir: None,
    };
    write_atomic(&public, public_mode, pair.public_pem.as_bytes())
        .with_context(|| format!("writing {}", public.display()))?;
    println!("Private key written to {}", private.display());
    println!("Public key written to {}", public.display());
    Ok(0)
}

/// The key password: `SKIFF_KEY_PASSWORD`, else `COSIGN_PASSWORD` (as cosign), else asked on the
/// terminal (twice when `confirm`). Empty is allowed, as cosign allows it.
pub fn password(confirm: bool) -> anyhow::Result<Vec<u8>> {
    for var in ["SKIFF_KEY_PASSWORD", "COSIGN_PASSWORD"] {
        if let Some(v) = std::env::var_os(var) {
            return Ok(v.into_encoded_bytes());
        }
    }
    if !std::io::stdin().is_terminal() {
        bail!(
            "the key password is needed: set SKIFF_KEY_PASSWORD (or COSIGN_PASSWORD), or run on a \
             terminal to be asked"
        );
    }
    let first = rpassword::prompt_password("Enter password for private key: ")?;
    if confirm {
        let again = rpassword::prompt_password("Enter password for private key again: ")?;
        if again != first {
            bail!("the passwords do not match; nothing was written");
        }
    }
    Ok(first.into_bytes())
}

/// Read and decrypt a private key file (cosign.key). One readable by others is refused, as ssh
/// refuses such keys: its password is then the only thing protecting it.
pub fn load_private_key(path: &Path) -> anyhow::Result<PrivateKey> {
    let meta = std::fs::metadata(path)
        .with_context(|| format!("cannot read the private key {}", path.display()))?;
    let mode = meta.permissions().mode() & 0o777;
    if mode & 0o077 != 0 {
        bail!(
            "the private key {} is readable by others (mode {mode:03o}); run `chmod 600 {}`",
            path.display(),
            path.display()
        );
    }
    if meta.len() > skiff_trust::key::MAX_KEY_FILE {
        bail!("{} is too large to be a cosign private key", path.display());
    }
    let text = std::fs::read(path)
        .with_context(|| format!("cannot read the private key {}", path.display()))?;
    let password = password(false)?;
    PrivateKey::from_pem(&text, &password)
        .with_context(|| format!("private key {}", path.display()))
}
