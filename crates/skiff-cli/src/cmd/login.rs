//! `skiff login` / `skiff logout`: credentials in Docker's config (`DOCKER_CONFIG` honoured,
//! credential helpers used as Docker uses them), checked against the registry first.

use anyhow::Context;
use clap::Args;
use skiff_registry::{CredentialSource, Credentials, DockerConfig, Registry, RegistryConfig};
use std::io::Read;

/// Log in to a registry; the credentials go where Docker keeps them
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff login registry.example.com                    asks for the user name and password\n  \
echo \"$TOKEN\" | skiff login registry.example.com -u me --password-stdin\n  \
skiff login localhost:5000 -u me -p secret          (the password shows in your shell history)\n\n\
Credentials are stored in $DOCKER_CONFIG/config.json (default ~/.docker/config.json, mode 0600),\n\
or in the credential helper that file names (credsStore, credHelpers), as Docker does.")]
pub struct LoginArgs {
    /// Registry host[:port] [default: docker.io]
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,

    /// The user name [default: asked on the terminal]
    #[arg(short = 'u', long, value_name = "USER")]
    pub username: Option<String>,

    /// The password or token (prefer --password-stdin)
    #[arg(
        short = 'p',
        long,
        value_name = "PASSWORD",
        conflicts_with = "password_stdin"
    )]
    pub password: Option<String>,

    /// Read the password or token from stdin
    #[arg(long)]
    pub password_stdin: bool,

    #[command(flatten)]
    pub registries: crate::remote::InsecureRegistries,
}

/// Log out of a registry: forget its credentials
#[derive(Debug, Args)]
#[command(after_help = "Example:\n  skiff logout registry.example.com")]
pub struct LogoutArgs {
    /// Registry host[:port] [default: docker.io]
    #[arg(value_name = "SERVER")]
    pub server: Option<String>,
}

fn server(s: Option<String>) -> String {
    let s = s.unwrap_or_else(|| "docker.io".into());
    // Accept what Docker accepts: a URL or a host.
    let s = s
        .trim_start_matches("https://")
        .trim_start_matches("http://");
    s.split('/').next().unwrap_or(s).to_string()
}

pub fn login(args: LoginArgs) -> anyhow::Result<u8> {
    use std::io::IsTerminal;
    let server = server(args.server);
    // As Docker: what is not given is asked on the terminal, the password without echo. With no
    // terminal (a script, CI) nothing is asked: a prompt there would hang or read the wrong input.
    let terminal = std::io::stdin().is_terminal();
    let no_terminal = |what: &str| {
        anyhow::anyhow!(
            "no {what} given and no terminal to ask on: give -u USER and --password-stdin \
             (e.g. echo \"$TOKEN\" | skiff login {server} -u me --password-stdin)"
        )
    };
    let username = match args.username {
        Some(u) => u,
        None if terminal && !args.password_stdin => {
            eprint!("Username: ");
            let mut line = String::new();
            std::io::stdin()
                .read_line(&mut line)
                .context("reading the user name")?;
            line.trim().to_string()
        }
        None => return Err(no_terminal("user name")),
    };
    if username.is_empty() {
        anyhow::bail!("the user name is empty");
    }
    let secret = match (args.password, args.password_stdin) {
        (Some(p), _) => {
            eprintln!(
                "WARNING! Using --password via the command line is insecure. Use --password-stdin."
            );
            p
        }
        (None, true) => {
            let mut s = String::new();
            std::io::stdin()
                .read_to_string(&mut s)
                .context("reading the password from stdin")?;
            s.trim_end_matches(['\n', '\r']).to_string()
        }
        (None, false) if terminal => {
            rpassword::prompt_password("Password: ").context("reading the password")?
        }
        (None, false) => return Err(no_terminal("password")),
    };
    if secret.is_empty() {
        anyhow::bail!("the password is empty");
    }
    let creds = Credentials::password(username, secret);
    let registry = Registry::new(RegistryConfig {
        insecure_registries: args.registries.insecure,
        certs_dirs: crate::remote::certs_dirs(),
        credentials: Some(creds.clone()),
        stall: crate::remote::stall_rule()?,
        ..Default::default()
    });
    let rt = runtime()?;
    let login = rt.block_on(registry.login(&server))?;
    if !login.challenged {
        eprintln!("note: {server} does not ask for credentials; storing them anyway");
    }
    // As Docker does: when the token server hands out an identity (refresh) token, keep that
    // and not the password; later pushes and pulls exchange it for access tokens.
    let creds = match login.identity_token {
        Some(token) => {
            tracing::info!(
                "the token server issued an identity token; storing it, not the password"
            );
            Credentials {
                username: creds.username,
                secret: String::new(),
                identity_token: Some(token),
            }
        }
        None => creds,
    };
    let config = DockerConfig::from_env()?;
    match config.store(&server, &creds)? {
        CredentialSource::File => {
            tracing::info!("credentials stored in {}", config.file().display())
        }
        CredentialSource::Helper(h) => {
            tracing::info!("credentials stored with docker-credential-{h}")
        }
    }
    println!("Login Succeeded");
    Ok(0)
}

pub fn logout(args: LogoutArgs) -> anyhow::Result<u8> {
    let server = server(args.server);
    let config = DockerConfig::from_env()?;
    if config.erase(&server)? {
        println!("Removing login credentials for {server}");
    } else {
        println!("Not logged in to {server}");
    }
    Ok(0)
}

pub fn runtime() -> anyhow::Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(4)
        .enable_all()
        .build()
        .context("starting the async runtime")
}
