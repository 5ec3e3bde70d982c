//! `compare --target NAME=HOST:PORT`: a Redis-protocol server that is
//! already running (Valkey, Dragonfly, KeyDB...), as a column of the table
//! beside the servers `compare` starts.
//!
//! Such a server is not restarted between runs, and its CPU and RSS are
//! read only when its pid is known: given (`pid=`), or found through
//! INFO's `process_id` when it listens on this machine.

use crate::conn::{Proto, Target};
use crate::tls::{TlsArgs, TlsClient};
use anyhow::{Context, Result, bail};
use std::sync::Arc;

/// What `--target` says, before anything is contacted.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct TargetSpec {
    pub(super) name: String,
    pub(super) host: String,
    pub(super) port: u16,
    pub(super) pid: Option<u32>,
    pub(super) tls: bool,
    /// Speaks NATS core rather than RESP.
    pub(super) nats: bool,
    pub(super) user: Option<String>,
    pub(super) password: Option<String>,
}

/// Parses `NAME=HOST:PORT[,pid=N][,tls][,nats][,user=U][,password=P]`.
pub(super) fn parse(text: &str) -> Result<TargetSpec> {
    let usage = "--target takes NAME=HOST:PORT[,pid=N][,tls][,nats][,user=U][,password=P]";
    let mut parts = text.split(',');
    let first = parts.next().unwrap_or_default();
    let (name, addr) = first
        .split_once('=')
        .with_context(|| format!("{text:?}: {usage}"))?;
    let (host, port) = addr
        .rsplit_once(':')
        .with_context(|| format!("{text:?}: {usage}"))?;
    let host = host.trim_start_matches('[').trim_end_matches(']');
    if name.is_empty() || host.is_empty() {
        bail!("{text:?}: {usage}");
    }
    let port: u16 = port
        .parse()
        .with_context(|| format!("{text:?}: bad port; {usage}"))?;
    let mut t = TargetSpec {
        name: name.into(),
        host: host.into(),
        port,
        pid: None,
        tls: false,
        nats: false,
        user: None,
        password: None,
    };
    for p in parts {
        match p.split_once('=') {
            Some(("pid", v)) => t.pid = Some(v.parse().with_context(|| format!("pid {v:?}"))?),
            Some(("user", v)) => t.user = Some(v.into()),
            Some(("password", v)) => t.password = Some(v.into()),
            None if p == "tls" => t.tls = true,
            None if p == "nats" => t.nats = true,
            _ => bail!("{text:?}: unknown part {p:?}; {usage}"),
        }
    }
    if t.user.is_some() && t.password.is_none() {
        bail!("{text:?}: user= needs password=");
    }
    Ok(t)
}

/// A running server, reachable and with its pid when it could be found.
#[derive(Debug, Clone)]
pub(super) struct Running {
    pub(super) target: Target,
    pub(super) pid: Option<u32>,
}

impl Running {
    /// Checks the server answers PING and looks for its pid. `tls` is the
    /// client side of `--tls` (CA, client certificate) used for `,tls`.
    pub(super) fn connect(t: &TargetSpec, tls: &TlsArgs) -> Result<Running> {
        let tls = if t.tls {
            let args = TlsArgs {
                tls: true,
                ..tls.clone()
            };
            Some(Arc::new(TlsClient::new(&args, &t.host)?))
        } else {
            None
        };
        let target = Target {
            proto: if t.nats { Proto::Nats } else { Proto::Resp2 },
            user: t.user.clone(),
            password: t.password.clone(),
            tls,
            ..Target::plain(&t.host, t.port)
        };
        target
            .ping()
            .with_context(|| format!("--target {}: {}:{}", t.name, t.host, t.port))?;
        let pid = match t.pid {
            Some(pid) if crate::sys::pid_alive(pid) => Some(pid),
            Some(pid) => bail!("--target {}: pid={pid}: no such process here", t.name),
            None => target.local_server_pid(),
        };
        Ok(Running { target, pid })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_target_is_a_name_an_address_and_options() {
        let t = parse("valkey=127.0.0.1:6390").unwrap();
        assert_eq!(
            (t.name.as_str(), t.host.as_str(), t.port, t.pid, t.tls),
            ("valkey", "127.0.0.1", 6390, None, false)
        );
        assert!(parse("n=127.0.0.1:4222,nats").unwrap().nats);
        let t = parse("df=[::1]:7000,pid=42,tls,user=u,password=p").unwrap();
        assert_eq!(
            (t.host.as_str(), t.port, t.pid, t.tls),
            ("::1", 7000, Some(42), true)
        );
        assert_eq!(
            (t.user.as_deref(), t.password.as_deref()),
            (Some("u"), Some("p"))
        );
        for bad in [
            "127.0.0.1:6390",
            "x=127.0.0.1",
            "x=:1",
            "x=h:99999",
            "x=h:1,color=red",
            "x=h:1,user=u",
        ] {
            assert!(parse(bad).is_err(), "{bad}");
        }
    }
}
