//! What containerd knows of a container's image: its name (the container record's `image`, as
//! `ctr run` and CRI set it) and the digest the name points to in containerd's image store (the
//! manifest or index containerd pulled and verified by digest). Asked over containerd's gRPC
//! API (`containerd.services.containers.v1`, `…images.v1`), with the messages written out for
//! prost as the CRI test harness writes its own: only the fields read here.

use crate::grpc;
use std::path::Path;

#[derive(Clone, PartialEq, prost::Message)]
struct GetContainerRequest {
    #[prost(string, tag = "1")]
    id: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GetContainerResponse {
    #[prost(message, optional, tag = "1")]
    container: Option<Container>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Container {
    #[prost(string, tag = "1")]
    id: String,
    #[prost(string, tag = "3")]
    image: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GetImageRequest {
    #[prost(string, tag = "1")]
    name: String,
}

#[derive(Clone, PartialEq, prost::Message)]
struct GetImageResponse {
    #[prost(message, optional, tag = "1")]
    image: Option<Image>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Image {
    #[prost(string, tag = "1")]
    name: String,
    #[prost(message, optional, tag = "3")]
    target: Option<Descriptor>,
}

#[derive(Clone, PartialEq, prost::Message)]
struct Descriptor {
    #[prost(string, tag = "1")]
    media_type: String,
    #[prost(string, tag = "2")]
    digest: String,
}

/// containerd's API on `socket`, in `namespace`.
pub struct Containerd<'a> {
    pub socket: &'a Path,
    pub namespace: &'a str,
}

impl Containerd<'_> {
    /// The image name of container `id` (empty when it was created without one).
    pub async fn container_image(&self, id: &str) -> Result<String, String> {
        let r: GetContainerResponse = self
            .call(
                "/containerd.services.containers.v1.Containers/Get",
                &GetContainerRequest { id: id.into() },
            )
            .await?;
        Ok(r.container.map(|c| c.image).unwrap_or_default())
    }

    /// The digest image `name` points to in containerd's store.
    pub async fn image_digest(&self, name: &str) -> Result<String, String> {
        let r: GetImageResponse = self
            .call(
                "/containerd.services.images.v1.Images/Get",
                &GetImageRequest { name: name.into() },
            )
            .await?;
        r.image
            .and_then(|i| i.target)
            .map(|t| t.digest)
            .filter(|d| !d.is_empty())
            .ok_or_else(|| format!("containerd has no image {name}"))
    }

    async fn call<Req: prost::Message, Resp: prost::Message + Default>(
        &self,
        method: &str,
        req: &Req,
    ) -> Result<Resp, String> {
        grpc::call(
            self.socket,
            method,
            &[("containerd-namespace", self.namespace)],
            req,
        )
        .await
        .map_err(|e| {
            format!(
                "asking containerd ({}) {method}: {e}",
                self.socket.display()
            )
        })
    }
}
