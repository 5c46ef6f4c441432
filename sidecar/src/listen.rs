//! Where the ext_authz checks listen: a TCP address (`127.0.0.1:9001`) or a Unix domain
//! socket (`unix:/var/run/stepup/grpc.sock`), for a sidecar in the same pod as Envoy,
//! which reaches it through a `pipe` address and skips the TCP stack.
//!
//! A socket file left behind by an earlier run is replaced; any other file at that path
//! is an error (the sidecar never deletes what it did not create). The socket file gets
//! the process umask's permissions: share its directory (an `emptyDir`) only with Envoy.

use std::fmt;
use std::net::SocketAddr;
use std::os::unix::fs::FileTypeExt;
use std::path::{Path, PathBuf};
use std::str::FromStr;

use anyhow::Context;
use tokio::net::{TcpListener, UnixListener};

/// The prefix that makes a listen address a Unix socket path.
const UNIX_PREFIX: &str = "unix:";

/// A listen address as given on the command line.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum ListenAddr {
    /// `host:port`.
    Tcp(SocketAddr),
    /// `unix:<path>`.
    Unix(PathBuf),
}

/// Why a listen address does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ListenAddrError {
    /// Neither `ip:port` nor `unix:<path>`.
    #[error("`{0}` is neither ip:port nor unix:<path>")]
    Invalid(String),
    /// `unix:` with an empty path.
    #[error("`unix:` needs a socket path, e.g. unix:/var/run/stepup/grpc.sock")]
    EmptyPath,
}

impl FromStr for ListenAddr {
    type Err = ListenAddrError;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s.strip_prefix(UNIX_PREFIX) {
            Some("") => Err(ListenAddrError::EmptyPath),
            Some(path) => Ok(ListenAddr::Unix(PathBuf::from(path))),
            None => s
                .parse()
                .map(ListenAddr::Tcp)
                .map_err(|_| ListenAddrError::Invalid(s.to_owned())),
        }
    }
}

impl fmt::Display for ListenAddr {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ListenAddr::Tcp(addr) => addr.fmt(f),
            ListenAddr::Unix(path) => write!(f, "{UNIX_PREFIX}{}", path.display()),
        }
    }
}

impl ListenAddr {
    /// The TCP address, if it is one.
    pub fn tcp(&self) -> Option<SocketAddr> {
        match self {
            ListenAddr::Tcp(addr) => Some(*addr),
            ListenAddr::Unix(_) => None,
        }
    }

    /// Whether two listeners could not both bind these (port 0 never clashes).
    pub fn clashes_with(&self, other: &ListenAddr) -> bool {
        match (self, other) {
            (ListenAddr::Tcp(a), ListenAddr::Tcp(b)) => a == b && a.port() != 0,
            (ListenAddr::Unix(a), ListenAddr::Unix(b)) => a == b,
            _ => false,
        }
    }

    /// Binds it; `what` names the listener in the error.
    pub async fn bind(&self, what: &str) -> anyhow::Result<Listener> {
        match self {
            ListenAddr::Tcp(addr) => {
                Ok(Listener::Tcp(TcpListener::bind(addr).await.with_context(
                    || format!("binding the {what} listener on {addr}"),
                )?))
            }
            ListenAddr::Unix(path) => {
                remove_stale_socket(path)
                    .with_context(|| format!("binding the {what} listener on {self}"))?;
                let listener = UnixListener::bind(path)
                    .with_context(|| format!("binding the {what} listener on {self}"))?;
                Ok(Listener::Unix(listener, SocketFile(path.clone())))
            }
        }
    }
}

/// Removes `path` if it is a socket (left by an earlier run); refuses any other file.
fn remove_stale_socket(path: &Path) -> anyhow::Result<()> {
    match std::fs::symlink_metadata(path) {
        Ok(meta) if meta.file_type().is_socket() => {
            std::fs::remove_file(path).context("removing the old socket file")
        }
        Ok(_) => anyhow::bail!("{} exists and is not a socket", path.display()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(()),
        Err(e) => Err(e).context("checking the socket path"),
    }
}

/// A bound check listener.
#[derive(Debug)]
pub enum Listener {
    /// TCP.
    Tcp(TcpListener),
    /// A Unix domain socket, and its file (removed when that is dropped).
    Unix(UnixListener, SocketFile),
}

impl Listener {
    /// Where it listens (the real port when bound to port 0).
    pub fn local_addr(&self) -> std::io::Result<ListenAddr> {
        match self {
            Listener::Tcp(l) => l.local_addr().map(ListenAddr::Tcp),
            Listener::Unix(_, file) => Ok(ListenAddr::Unix(file.0.clone())),
        }
    }
}

/// The socket file of a Unix listener; dropping it removes the file.
#[derive(Debug)]
pub struct SocketFile(PathBuf);

impl Drop for SocketFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tcp_and_unix_addresses_parse_and_print_back() {
        for text in [
            "127.0.0.1:9001",
            "[::1]:9001",
            "unix:/run/stepup/grpc.sock",
            "unix:rel.sock",
        ] {
            assert_eq!(text.parse::<ListenAddr>().unwrap().to_string(), text);
        }
        assert_eq!(
            "unix:".parse::<ListenAddr>(),
            Err(ListenAddrError::EmptyPath)
        );
        for bad in [
            "localhost:9001",
            "9001",
            "",
            "tcp:127.0.0.1:1",
            "/run/x.sock",
        ] {
            assert!(
                matches!(bad.parse::<ListenAddr>(), Err(ListenAddrError::Invalid(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn only_equal_paths_or_equal_fixed_ports_clash() {
        let a: ListenAddr = "127.0.0.1:9001".parse().unwrap();
        let zero: ListenAddr = "127.0.0.1:0".parse().unwrap();
        let sock: ListenAddr = "unix:/tmp/a.sock".parse().unwrap();
        assert!(a.clashes_with(&a.clone()));
        assert!(!zero.clashes_with(&zero.clone()));
        assert!(sock.clashes_with(&sock.clone()));
        assert!(!a.clashes_with(&sock));
    }

    #[tokio::test]
    async fn a_unix_listener_replaces_a_stale_socket_refuses_other_files_and_cleans_up() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("grpc.sock");
        let addr = ListenAddr::Unix(path.clone());
        let first = addr.bind("gRPC").await.unwrap();
        assert_eq!(first.local_addr().unwrap(), addr);
        // A socket left behind (the listener leaked, as after a crash) is replaced.
        std::mem::forget(first);
        let second = addr.bind("gRPC").await.unwrap();
        drop(second);
        assert!(!path.exists(), "removed on drop");
        std::fs::write(&path, "not a socket").unwrap();
        let error = addr.bind("gRPC").await.unwrap_err();
        assert!(
            format!("{error:#}").contains("is not a socket"),
            "{error:#}"
        );
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "not a socket");
    }
}
