//! `skiff rmi`: remove image names; an image with no name left is deleted.

use crate::cmd::images::human_size;
use crate::home::Home;
use clap::Args;
use skiff_image::reference::familiar;

/// Remove one or more images
#[derive(Debug, Args)]
#[command(after_help = "Examples:\n  \
skiff rmi hello:1.0\n  \
skiff rmi -f 3f2a1b4c5d6e         by ID: every name of that image\n\n\
Removing a name deletes the image once no other name points at it, with its blobs and\n\
compiled code (unless another skiff process is using the store: then skiff image prune\n\
reclaims the space).")]
pub struct RmiArgs {
    /// Remove an image given by digest or ID even when several names point at it
    #[arg(short, long)]
    pub force: bool,

    /// Images to remove: NAME[:TAG], a digest, or an ID
    #[arg(value_name = "IMAGE", required = true)]
    pub images: Vec<String>,
}

pub fn rmi(home: &Home, args: RmiArgs) -> anyhow::Result<u8> {
    let store = home.store()?;
    for spec in &args.images {
        let (reference, digest) = skiff_image::find(&store, spec)?;
        let tags = store.tags()?;
        let names: Vec<(String, String)> = match &reference {
            // By name: that one name (name@digest without a tag removes every name of it).
            Some(r) if r.digest().is_none() => vec![(
                r.repository(),
                r.tag_or_latest().unwrap_or("latest").to_string(),
            )],
            _ => {
                let all: Vec<_> = tags
                    .iter()
                    .filter(|t| t.digest == digest)
                    .map(|t| (t.repository.clone(), t.tag.clone()))
                    .collect();
                if all.len() > 1 && !args.force {
                    let list: Vec<String> = all
                        .iter()
                        .map(|(r, t)| format!("{}:{t}", familiar(r)))
                        .collect();
                    anyhow::bail!(
                        "{spec} is named {} (several names); remove them one by one, or use -f \
                         to remove them all",
                        list.join(", ")
                    );
                }
                all
            }
        };
        for (repo, tag) in &names {
            if store.remove_tag(repo, tag)? {
                println!("Untagged: {}:{tag}", familiar(repo));
            }
        }
        match store.remove_if_unreferenced(&digest)? {
            Some(report) if !report.blobs.is_empty() => {
                crate::cmd::files::prune(home, &store);
                println!(
                    "Deleted: {digest} ({} blobs, {}; {} compiled)",
                    report.blobs.len(),
                    human_size(report.blob_bytes),
                    report.cache_entries
                );
            }
            Some(_) => {} // still named elsewhere
            None => println!(
                "Untagged {digest}; its blobs stay until `skiff image prune` (the store is in \
                 use by another skiff process)"
            ),
        }
    }
    Ok(0)
}
