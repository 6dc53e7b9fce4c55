//! A throwaway PostgreSQL cluster for tests that stop or restart the server: `initdb` into a
//! temporary directory, `pg_ctl` on a free loopback port with trust authentication, stopped
//! and deleted on drop. Never the machine's shared server, which other tests and agents use.
//!
//! The binaries are looked for in `DWMON_TEST_PG_BIN` (a directory), then
//! `/usr/lib/postgresql/*/bin` (newest version first), `/usr/local/bin` and the `PATH`. Without
//! them the test is skipped, except under `CI=true`, where that is a failure. `initdb` refuses
//! to run as root: as root, every server command runs as the `postgres` OS user (`runuser`),
//! which owns the directory.

use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

/// How the server is stopped by [`Cluster::restart`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stop {
    /// `pg_ctl stop -m fast`: sessions are terminated, their transactions rolled back, and a
    /// checkpoint is written.
    Fast,
    /// `pg_ctl stop -m immediate`: every server process is killed at once, as in a crash; the
    /// next start replays the WAL.
    Immediate,
}

/// A running throwaway cluster; dropping it stops the server and deletes its directory.
pub struct Cluster {
    bin: PathBuf,
    /// The `postgres` OS user's uid and gid, when running as root.
    run_as: Option<(u32, u32)>,
    data: PathBuf,
    log: PathBuf,
    port: u16,
    dir: Option<tempfile::TempDir>,
}

fn in_ci() -> bool {
    std::env::var("CI").is_ok_and(|ci| ci == "true")
}

/// The first directory holding `initdb`, `pg_ctl` and `postgres`.
fn binaries() -> Option<PathBuf> {
    let mut candidates: Vec<PathBuf> = Vec::new();
    if let Some(dir) = std::env::var_os("DWMON_TEST_PG_BIN") {
        candidates.push(dir.into());
    }
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| {
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .collect();
    versions.sort();
    candidates.extend(versions.into_iter().rev().map(|(_, dir)| dir));
    candidates.push("/usr/local/bin".into());
    if let Some(path) = std::env::var_os("PATH") {
        candidates.extend(std::env::split_paths(&path));
    }
    candidates.into_iter().find(|dir| {
        ["initdb", "pg_ctl", "postgres"]
            .iter()
            .all(|b| dir.join(b).is_file())
    })
}

/// The uid and gid of the `postgres` OS user, when this process runs as root (`None`
/// otherwise: the server runs as this user).
fn run_as() -> Result<Option<(u32, u32)>, String> {
    let uid = std::fs::metadata("/proc/self")
        .map(|m| m.uid())
        .map_err(|e| format!("/proc/self: {e}"))?;
    if uid != 0 {
        return Ok(None);
    }
    let id = |flag: &str| -> Result<u32, String> {
        let out = Command::new("id")
            .args([flag, "postgres"])
            .output()
            .map_err(|e| format!("id {flag} postgres: {e}"))?;
        String::from_utf8_lossy(&out.stdout)
            .trim()
            .parse()
            .map_err(|_| {
                format!(
                    "running as root, the throwaway cluster needs the `postgres` OS user \
                     (initdb refuses root): id {flag} postgres: {}",
                    String::from_utf8_lossy(&out.stderr).trim()
                )
            })
    };
    Ok(Some((id("-u")?, id("-g")?)))
}

impl Cluster {
    /// Starts a new cluster, or `None` (after saying so on stderr) when the PostgreSQL server
    /// binaries are not on this machine. Under `CI=true` a missing binary panics instead.
    ///
    /// # Panics
    /// When the cluster cannot be created or started.
    pub fn start() -> Option<Cluster> {
        let Some(bin) = binaries() else {
            let message = "the throwaway PostgreSQL cluster needs initdb, pg_ctl and postgres \
                           (Debian package postgresql; or DWMON_TEST_PG_BIN=DIR)";
            assert!(!in_ci(), "{message}");
            eprintln!("SKIPPED: {message}");
            return None;
        };
        let run_as = run_as().unwrap_or_else(|e| panic!("{e}"));
        // In /tmp (world-traversable) rather than a TMPDIR that the `postgres` user may not
        // reach; a short path also keeps the socket's within the 107-byte limit.
        let base = if run_as.is_some() {
            PathBuf::from("/tmp")
        } else {
            std::env::temp_dir()
        };
        let dir = tempfile::Builder::new()
            .prefix("dwmon-pg-")
            .tempdir_in(&base)
            .expect("cluster directory");
        if let Some((uid, gid)) = run_as {
            std::os::unix::fs::chown(dir.path(), Some(uid), Some(gid))
                .expect("give the cluster directory to the postgres user");
        }
        let mut cluster = Cluster {
            bin,
            run_as,
            data: dir.path().join("data"),
            log: dir.path().join("server.log"),
            port: 0,
            dir: Some(dir),
        };
        cluster.must(
            "initdb",
            &[
                "-D".as_ref(),
                cluster.data.as_os_str(),
                "-U".as_ref(),
                "postgres".as_ref(),
                "--auth=trust".as_ref(),
                "--encoding=UTF8".as_ref(),
                "--no-locale".as_ref(),
                "--no-sync".as_ref(),
            ],
        );
        // A free port now; another process taking it before the server binds is retried.
        let mut last = String::new();
        for _ in 0..5 {
            cluster.port = std::net::TcpListener::bind("127.0.0.1:0")
                .and_then(|l| l.local_addr())
                .expect("a free loopback port")
                .port();
            cluster.configure();
            match cluster.pg_ctl(&["start"]) {
                Ok(()) => return Some(cluster),
                Err(e) => last = e,
            }
        }
        panic!("the throwaway PostgreSQL cluster did not start: {last}");
    }

    /// `postgres://` URL of the cluster's `postgres` database (user `postgres`, trust).
    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// The loopback port the server listens on (the same after every restart).
    pub fn port(&self) -> u16 {
        self.port
    }

    /// Stops the server (`stop`: fast or immediate) and starts it again on the same port,
    /// returning once it accepts connections; the time it took.
    ///
    /// # Panics
    /// When the server does not stop or start.
    pub fn restart(&self, stop: Stop) -> Duration {
        let begun = Instant::now();
        self.stop(stop);
        self.start_again();
        begun.elapsed()
    }

    /// Stops the server, fast or immediate ([`Stop`]), returning once it is gone.
    ///
    /// # Panics
    /// When it does not stop.
    pub fn stop(&self, stop: Stop) {
        let mode = match stop {
            Stop::Fast => "fast",
            Stop::Immediate => "immediate",
        };
        self.pg_ctl(&["stop", "-m", mode])
            .unwrap_or_else(|e| panic!("{e}"));
    }

    /// Starts the stopped server again on its port, returning once it accepts connections
    /// (after an immediate stop: once it has replayed the WAL).
    ///
    /// # Panics
    /// When it does not start.
    pub fn start_again(&self) {
        self.pg_ctl(&["start"]).unwrap_or_else(|e| panic!("{e}"));
    }

    /// The server's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    /// The port, the loopback address and the socket directory (the cluster's own, not
    /// `/var/run/postgresql`), appended to `postgresql.conf` (the last setting wins).
    /// `fsync = off` only skips flushing to the disk: a stop, even an immediate one, loses
    /// nothing the server acknowledged while the machine itself stays up.
    fn configure(&self) {
        use std::io::Write;
        let dir = self.dir.as_ref().expect("cluster directory").path();
        let mut conf = std::fs::OpenOptions::new()
            .append(true)
            .open(self.data.join("postgresql.conf"))
            .expect("postgresql.conf");
        writeln!(
            conf,
            "\nport = {}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{}'\n\
             max_connections = 200\nfsync = off\nshared_buffers = 32MB",
            self.port,
            dir.display()
        )
        .expect("write postgresql.conf");
    }

    /// `pg_ctl ARGS -D data -l log -w -t 60`.
    fn pg_ctl(&self, args: &[&str]) -> Result<(), String> {
        let mut all: Vec<&std::ffi::OsStr> = args.iter().map(|a| a.as_ref()).collect();
        all.extend([
            "-D".as_ref(),
            self.data.as_os_str(),
            "-l".as_ref(),
            self.log.as_os_str(),
            "-w".as_ref(),
            "-t".as_ref(),
            "60".as_ref(),
        ]);
        let out = self.command("pg_ctl", &all);
        if out.status.success() {
            Ok(())
        } else {
            Err(format!(
                "pg_ctl {}: {}{}\n{}",
                args.join(" "),
                String::from_utf8_lossy(&out.stdout),
                String::from_utf8_lossy(&out.stderr),
                self.log()
            ))
        }
    }

    fn must(&self, program: &str, args: &[&std::ffi::OsStr]) {
        let out = self.command(program, args);
        assert!(
            out.status.success(),
            "{program}: {}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
    }

    /// Runs the server binary `program` (as `postgres` when this process is root), in the
    /// cluster's directory (the test's own may be closed to that user).
    fn command(&self, program: &str, args: &[&std::ffi::OsStr]) -> Output {
        let path = self.bin.join(program);
        let mut command = match self.run_as {
            Some(_) => {
                let mut c = Command::new("runuser");
                c.args(["-u", "postgres", "--"]).arg(&path);
                c
            }
            None => Command::new(&path),
        };
        command
            .args(args)
            .current_dir(self.dir.as_ref().map_or(Path::new("/"), |d| d.path()))
            .env_remove("PGDATA")
            .env_remove("PGPORT")
            .env_remove("PGHOST")
            .stdin(Stdio::null())
            .output()
            .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        if self.port != 0 {
            let _ = self.pg_ctl(&["stop", "-m", "immediate"]);
        }
        if let Some(dir) = self.dir.take() {
            let _ = dir.close();
        }
    }
}
