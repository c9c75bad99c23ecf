//! The one precedence rule: an image's defaults below the operator's grants.

use crate::{EnvVar, GuestSpec};

/// What an image asks for by default (skiff's manifest annotations; Docker's CMD and ENV).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImageDefaults {
    /// Default args after argv\[0\]: replaced whole by args given.
    pub args: Option<Vec<String>>,
    /// Default environment, in the image's order.
    pub env: Vec<EnvVar>,
    /// An HTTP handler's default route.
    pub route: Option<String>,
}

/// The guest an image and the operator's grants describe together:
///
/// - **env**: the image's, then the grants' in their order (env files before `-e`). A later
///   value for a name replaces the earlier one where it stands: the order of first appearance
///   is kept, and the last value wins.
/// - **args**: given any, they replace the image's default args (Docker's CMD).
/// - **route**: given, it replaces the image's.
/// - everything else (mounts, network, stdin, limits, outbound) is the grants' alone: an image
///   may request a capability, only the operator grants one.
pub fn resolve(image: &ImageDefaults, grants: GuestSpec) -> GuestSpec {
    let mut env = Vec::with_capacity(image.env.len() + grants.env.len());
    for var in image.env.iter().cloned().chain(grants.env) {
        set_env(&mut env, var);
    }
    let args = if grants.args.is_empty() {
        image.args.clone().unwrap_or_default()
    } else {
        grants.args
    };
    GuestSpec {
        args,
        env,
        route: grants.route.or_else(|| image.route.clone()),
        ..grants
    }
}

/// Set `var` in `env`: in place if its name is there already, else at the end.
pub fn set_env(env: &mut Vec<EnvVar>, var: EnvVar) {
    match env.iter_mut().find(|e| e.name == var.name) {
        Some(slot) => slot.value = var.value,
        None => env.push(var),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Limits, Mount};

    fn env(pairs: &[(&str, &str)]) -> Vec<EnvVar> {
        pairs.iter().map(|(k, v)| EnvVar::new(*k, *v)).collect()
    }

    fn image() -> ImageDefaults {
        ImageDefaults {
            args: Some(vec!["--default".into()]),
            env: env(&[("Z", "img"), ("A", "img"), ("M", "img")]),
            route: Some("/img".into()),
        }
    }

    #[test]
    fn env_keeps_first_appearance_order_and_the_last_value() {
        // The grants' env as a verb hands it over: env files first, then -e.
        let grants = GuestSpec {
            env: env(&[("A", "file"), ("NEW", "file"), ("A", "flag"), ("Z", "flag")]),
            ..GuestSpec::default()
        };
        let s = resolve(&image(), grants);
        assert_eq!(
            s.env,
            env(&[("Z", "flag"), ("A", "flag"), ("M", "img"), ("NEW", "file")])
        );
    }

    #[test]
    fn given_args_and_route_replace_the_images() {
        let s = resolve(&image(), GuestSpec::default());
        assert_eq!(s.args, ["--default"]);
        assert_eq!(s.route.as_deref(), Some("/img"));
        let s = resolve(
            &image(),
            GuestSpec {
                args: vec!["a".into(), "b".into()],
                route: Some("example.com/".into()),
                ..GuestSpec::default()
            },
        );
        assert_eq!(s.args, ["a", "b"]);
        assert_eq!(s.route.as_deref(), Some("example.com/"));
        // No image (a bare .wasm): nothing but the grants.
        let s = resolve(&ImageDefaults::default(), GuestSpec::default());
        assert_eq!(s, GuestSpec::default());
    }

    #[test]
    fn grants_alone_decide_capabilities_and_limits() {
        let grants = GuestSpec {
            mounts: vec![Mount::parse("/a:/b:ro").unwrap()],
            network: true,
            stdin: true,
            limits: Limits {
                memory_bytes: Some(1 << 20),
                reuse: Some(8),
                ..Limits::default()
            },
            allow_outbound: vec!["https://example.com".into()],
            ..GuestSpec::default()
        };
        let s = resolve(&image(), grants.clone());
        assert_eq!(
            (&s.mounts, s.network, s.stdin, s.limits, &s.allow_outbound),
            (
                &grants.mounts,
                true,
                true,
                grants.limits,
                &grants.allow_outbound
            )
        );
    }

    #[test]
    fn fields_lists_every_serialized_name() {
        let full = GuestSpec {
            args: vec!["a".into()],
            env: env(&[("A", "1")]),
            mounts: vec![Mount::parse("/a:/b").unwrap()],
            network: true,
            stdin: true,
            limits: Limits::default(),
            route: Some("/".into()),
            allow_outbound: vec!["*".into()],
        };
        let json = serde_json::to_value(&full).unwrap();
        let mut names: Vec<&str> = json
            .as_object()
            .unwrap()
            .keys()
            .map(|k| k.as_str())
            .collect();
        let mut fields = GuestSpec::FIELDS.to_vec();
        names.sort();
        fields.sort();
        assert_eq!(names, fields);
    }
}
