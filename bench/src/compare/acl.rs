//! `compare --acl-patterns N`: every connection of a run authenticates as an
//! ACL user whose channel permissions are a list of N patterns, so that the
//! server checks each PUBLISH (and SUBSCRIBE) against that list.
//!
//! The first N-1 patterns share the run's prefix and never match its
//! channels (`<prefix>:deny<i>:*`); the last one (`<prefix>*`) allows every
//! channel of the run, so a permitted PUBLISH is checked against all N.
//! A PSUBSCRIBE is checked by its pattern text, not by matching, so the
//! patterns a run subscribes are listed literally after the N.

use crate::conn::Target;
use crate::plan::Workload;
use anyhow::{Context, Result, bail};

/// The ACL user of the `+acl<N>` columns.
#[derive(Debug, Clone)]
pub(super) struct AclUser {
    pub(super) patterns: usize,
    pub(super) name: String,
    pub(super) password: String,
}

impl AclUser {
    pub(super) fn new(patterns: usize) -> Result<AclUser> {
        if patterns == 0 {
            bail!("--acl-patterns must be at least 1 (the last pattern allows the run's channels)");
        }
        Ok(AclUser {
            patterns,
            name: "rcb-bench".into(),
            password: format!("rcb-{:016x}", fastrand::u64(..)),
        })
    }

    /// The column label for a server run with this user.
    pub(super) fn label(&self, server: &str) -> String {
        format!("{server}+acl{}", self.patterns)
    }

    /// `ACL SETUSER` arguments for a run of `w`.
    pub(super) fn setuser(&self, w: &Workload) -> Result<Vec<Vec<u8>>> {
        let mut args: Vec<Vec<u8>> = ["ACL", "SETUSER", &self.name, "reset", "on"]
            .iter()
            .map(|a| a.as_bytes().to_vec())
            .collect();
        args.push(format!(">{}", self.password).into_bytes());
        args.push(b"+@all".to_vec());
        args.push(b"resetchannels".to_vec());
        for i in 0..self.patterns - 1 {
            args.push(format!("&{}:deny{i}:*", w.prefix).into_bytes());
        }
        args.push(format!("&{}*", w.prefix).into_bytes());
        for p in crate::run::subscribed_patterns(w)? {
            let mut a = b"&".to_vec();
            a.extend_from_slice(&p);
            args.push(a);
        }
        Ok(args)
    }

    /// Creates (or replaces) the user on the server `admin` reaches, and
    /// returns `target` authenticating as it.
    pub(super) fn install(&self, admin: &Target, w: &Workload, target: Target) -> Result<Target> {
        let args = self.setuser(w)?;
        let refs: Vec<&[u8]> = args.iter().map(Vec::as_slice).collect();
        admin.command(&refs).with_context(|| {
            format!(
                "ACL SETUSER {} with {} channel patterns",
                self.name, self.patterns
            )
        })?;
        Ok(Target {
            user: Some(self.name.clone()),
            password: Some(self.password.clone()),
            ..target
        })
    }

    /// Removes the user from a server that outlives the comparison.
    pub(super) fn remove(&self, admin: &Target) -> Result<()> {
        admin.command(&[b"ACL", b"DELUSER", self.name.as_bytes()])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::plan::Shape;

    fn texts(args: &[Vec<u8>]) -> Vec<String> {
        args.iter()
            .map(|a| String::from_utf8_lossy(a).into_owned())
            .collect()
    }

    #[test]
    fn the_last_of_n_patterns_allows_the_channels() {
        let user = AclUser::new(3).unwrap();
        let w = Workload::defaults();
        let args = texts(&user.setuser(&w).unwrap());
        let channels: Vec<&String> = args.iter().filter(|a| a.starts_with('&')).collect();
        assert_eq!(channels, ["&rcb:deny0:*", "&rcb:deny1:*", "&rcb*"]);
        assert_eq!(&args[..5], ["ACL", "SETUSER", "rcb-bench", "reset", "on"]);
        assert!(AclUser::new(0).is_err());
    }

    #[test]
    fn subscribed_patterns_are_listed_literally_after_the_n() {
        let user = AclUser::new(1).unwrap();
        let mut w = Workload::defaults();
        w.shape = Shape::Patterns;
        w.subscribers = Some(2);
        w.noise_patterns = 1;
        let args = texts(&user.setuser(&w).unwrap());
        let channels: Vec<&String> = args.iter().filter(|a| a.starts_with('&')).collect();
        assert_eq!(channels, ["&rcb*", "&rcbx:0:*", "&rcb:0:*", "&rcb:1:*"]);
    }
}
