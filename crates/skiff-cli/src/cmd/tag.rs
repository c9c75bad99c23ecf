//! `skiff tag SOURCE TARGET`.

use crate::home::Home;
use clap::Args;
use skiff_image::Reference;

/// Give an image another name
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff tag hello:1.0 hello:latest\n  \
skiff tag hello:1.0 localhost:5000/team/hello:1.0      ready to push to a registry")]
pub struct TagArgs {
    /// The image: a name, name@digest, sha256:… or a short ID
    #[arg(value_name = "SOURCE")]
    pub source: String,
    /// The new name: NAME[:TAG]
    #[arg(value_name = "TARGET")]
    pub target: String,
}

pub fn tag(home: &Home, args: TagArgs) -> anyhow::Result<u8> {
    let target = Reference::parse(&args.target)?;
    if target.digest().is_some() {
        anyhow::bail!(
            "{}: a tag is NAME[:TAG]; a digest names content and cannot be assigned",
            args.target
        );
    }
    let store = home.store()?;
    let (_, digest) = skiff_image::find(&store, &args.source)?;
    // Refuse to name something that is not a runnable image in the layout skiff reads.
    skiff_image::Image::read(&store, &digest)?;
    let tag = target.tag_or_latest().unwrap_or("latest");
    store.set_tag(&target.repository(), tag, &digest)?;
    Ok(0)
}
