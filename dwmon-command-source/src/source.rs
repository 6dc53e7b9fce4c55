//! [`CommandSource`]: a [`RowGetter`] that runs the checker's `__QUERY__` as a program.

use crate::error::{Error, Result};
use crate::format::Format;
use crate::process::{self, escape_control, Invocation, Limits, RunError};
use dwmon_core::{FetchRequest, Fetched, RowGetter, SourceError};
use std::path::{Path, PathBuf};
use std::time::Duration;

/// Runs each checker's `__QUERY__` as a program with arguments (no shell) and reads its rows
/// from stdout, as CSV with a header or as JSON lines ([`Format`]).
///
/// A fetch fails (an `ERROR` event for that checker) when the program cannot be started, exits
/// with a non-zero status (the message carries the status and the start of its stderr), runs
/// past the timeout ([`SourceError::Timeout`]) or prints more than the output limit; in the
/// last two cases its whole process group is killed. Lines that cannot be read as rows are
/// rejected and counted, naming their stdout line, never failing the fetch.
///
/// The source serves whatever `__SOURCE__` name it is asked for: route only the names meant
/// for it (the command line's `--source NAME=command:...` does).
///
/// ```
/// use dwmon_command_source::{CommandSource, Format};
/// use std::time::Duration;
///
/// # fn main() -> Result<(), dwmon_command_source::Error> {
/// let warehouse = CommandSource::builder(Format::Csv)
///     .timeout(Duration::from_secs(60))
///     .max_output_bytes(16 << 20)
///     .build()?;
/// assert_eq!(warehouse.timeout(), Duration::from_secs(60));
///
/// // The command line's form of the same thing:
/// let same = CommandSource::from_url("command:csv?timeout=60&max_output_bytes=16777216")?;
/// assert_eq!(same.timeout(), Duration::from_secs(60));
/// # Ok(()) }
/// ```
#[derive(Debug, Clone)]
pub struct CommandSource {
    format: Format,
    limits: Limits,
    working_dir: Option<PathBuf>,
}

/// Builds a [`CommandSource`]; see [`CommandSource::builder`].
#[derive(Debug, Clone)]
pub struct CommandSourceBuilder {
    source: CommandSource,
}

impl CommandSource {
    /// Default time a command may run: 30 s.
    pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(30);
    /// Default limit of a command's stdout: 64 MiB.
    pub const DEFAULT_MAX_OUTPUT_BYTES: u64 = 64 << 20;
    /// Default length of the stderr excerpt put in an error: 2 KiB.
    pub const DEFAULT_MAX_STDERR_BYTES: usize = 2 << 10;

    /// A source reading `format`, with the default limits.
    pub fn new(format: Format) -> Self {
        CommandSource {
            format,
            limits: Limits {
                timeout: Self::DEFAULT_TIMEOUT,
                max_output_bytes: Self::DEFAULT_MAX_OUTPUT_BYTES,
                max_stderr_bytes: Self::DEFAULT_MAX_STDERR_BYTES,
            },
            working_dir: None,
        }
    }

    /// A builder for a source reading `format`.
    pub fn builder(format: Format) -> CommandSourceBuilder {
        CommandSourceBuilder {
            source: CommandSource::new(format),
        }
    }

    /// A source from the command line's URL form: `command:` or `command:FORMAT` (`csv`, the
    /// default, or `jsonl`), optionally followed by `?timeout=SECONDS&max_output_bytes=N`.
    ///
    /// ```
    /// use dwmon_command_source::{CommandSource, Format};
    /// # fn main() -> Result<(), dwmon_command_source::Error> {
    /// assert_eq!(CommandSource::from_url("command:")?.format(), Format::Csv);
    /// assert_eq!(CommandSource::from_url("command:jsonl?timeout=2.5")?.format(), Format::JsonLines);
    /// assert!(CommandSource::from_url("command:xml").is_err());
    /// # Ok(()) }
    /// ```
    ///
    /// # Errors
    /// [`Error::InvalidUrl`] naming what is wrong and the form expected,
    /// [`Error::InvalidSetting`] for a zero timeout or output limit.
    pub fn from_url(url: &str) -> Result<Self> {
        let invalid = |message: String| Error::InvalidUrl {
            url: escape_control(url),
            message,
        };
        let rest = url.trim().strip_prefix("command:").ok_or_else(|| {
            invalid("a command source URL is command:csv or command:jsonl".to_string())
        })?;
        let (format, options) = rest.split_once('?').unwrap_or((rest, ""));
        let format = match format {
            "" => Format::Csv,
            name => Format::from_name(name).ok_or_else(|| {
                invalid(format!(
                    "unknown output format {:?}; use command:csv or command:jsonl",
                    escape_control(name)
                ))
            })?,
        };
        let mut builder = CommandSource::builder(format);
        for option in options.split('&').filter(|o| !o.is_empty()) {
            let (name, value) = option.split_once('=').unwrap_or((option, ""));
            builder = match name {
                "timeout" => {
                    let seconds = value
                        .parse::<f64>()
                        .ok()
                        .and_then(|s| Duration::try_from_secs_f64(s).ok())
                        .ok_or_else(|| {
                            invalid(format!(
                                "timeout={} is not a number of seconds",
                                escape_control(value)
                            ))
                        })?;
                    builder.timeout(seconds)
                }
                "max_output_bytes" => {
                    let bytes = value.parse::<u64>().map_err(|_| {
                        invalid(format!(
                            "max_output_bytes={} is not a number of bytes",
                            escape_control(value)
                        ))
                    })?;
                    builder.max_output_bytes(bytes)
                }
                other => {
                    return Err(invalid(format!(
                        "unknown option {:?}; the options are timeout=SECONDS and \
                         max_output_bytes=N",
                        escape_control(other)
                    )))
                }
            };
        }
        builder.build()
    }

    /// The output format.
    pub fn format(&self) -> Format {
        self.format
    }

    /// How long a command may run.
    pub fn timeout(&self) -> Duration {
        self.limits.timeout
    }

    /// The most a command may print on stdout.
    pub fn max_output_bytes(&self) -> u64 {
        self.limits.max_output_bytes
    }
}

impl CommandSourceBuilder {
    /// How long a command may run, from its start until it has exited and closed stdout and
    /// stderr (default 30 s). Past it, its process group is killed and the fetch fails with
    /// [`SourceError::Timeout`].
    pub fn timeout(mut self, timeout: Duration) -> Self {
        self.source.limits.timeout = timeout;
        self
    }

    /// The most a command may print on stdout (default 64 MiB); past it, its process group is
    /// killed and the fetch fails.
    pub fn max_output_bytes(mut self, bytes: u64) -> Self {
        self.source.limits.max_output_bytes = bytes;
        self
    }

    /// How much of a failed command's stderr its error shows (default 2 KiB).
    pub fn max_stderr_bytes(mut self, bytes: usize) -> Self {
        self.source.limits.max_stderr_bytes = bytes;
        self
    }

    /// The directory commands run in (default: the runner's own working directory). A
    /// program given as a relative path with a `/` (`./bin/rows`) is found from there.
    pub fn working_dir(mut self, dir: impl Into<PathBuf>) -> Self {
        self.source.working_dir = Some(dir.into());
        self
    }

    /// The source.
    ///
    /// # Errors
    /// [`Error::InvalidSetting`] for a zero timeout or a zero output limit.
    pub fn build(self) -> Result<CommandSource> {
        if self.source.limits.timeout.is_zero() {
            return Err(Error::InvalidSetting {
                setting: "timeout",
                message: "must be more than zero".to_string(),
            });
        }
        if self.source.limits.max_output_bytes == 0 {
            return Err(Error::InvalidSetting {
                setting: "max_output_bytes",
                message: "must be at least 1".to_string(),
            });
        }
        Ok(self.source)
    }
}

/// How many characters of the program name an error shows.
const SHOWN_PROGRAM_CHARS: usize = 200;

/// The program name as shown in messages: escaped and cut, with what may be a secret
/// hidden — the value of a `NAME=VALUE` word (shell habit: `PGPASSWORD=... psql` makes the
/// assignment the program, since no shell runs) and the password of a `scheme://user:pass@`.
fn shown(program: &str) -> String {
    let masked = mask_secrets(program);
    let mut shown = escape_control(&masked.chars().take(SHOWN_PROGRAM_CHARS).collect::<String>());
    if masked.chars().nth(SHOWN_PROGRAM_CHARS).is_some() {
        shown.push_str("...");
    }
    shown
}

/// `word` with everything after its first `=` shown as `***`, and a URL's password too.
fn mask_secrets(word: &str) -> String {
    if let Some((name, _)) = word.split_once('=') {
        return format!("{}=***", mask_secrets(name));
    }
    let Some((scheme, rest)) = word.split_once("://") else {
        return word.to_string();
    };
    let (Some(first_at), Some(last_at)) = (rest.find('@'), rest.rfind('@')) else {
        return word.to_string();
    };
    match rest[..first_at].split_once(':') {
        Some((user, _)) => format!("{scheme}://{user}:***{}", &rest[last_at..]),
        None => word.to_string(),
    }
}

/// `NAME=VALUE` with a name an environment variable can have.
fn is_assignment(word: &str) -> bool {
    word.split_once('=').is_some_and(|(name, _)| {
        let mut chars = name.chars();
        chars
            .next()
            .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
            && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
    })
}

fn spawn_message(program: &str, error: &std::io::Error) -> String {
    let program_shown = shown(program);
    match error.kind() {
        std::io::ErrorKind::NotFound if is_assignment(program) => format!(
            "cannot run `{program_shown}`: no such program in PATH (no shell runs, so an \
             environment assignment before the program is taken as the program: set the \
             variable in dwmon's environment, or run `env NAME=VALUE program ...`)"
        ),
        std::io::ErrorKind::NotFound if !program.contains('/') => {
            format!("cannot run `{program_shown}`: no such program in PATH")
        }
        std::io::ErrorKind::NotFound => {
            format!("cannot run `{program_shown}`: no such file")
        }
        std::io::ErrorKind::PermissionDenied => {
            format!("cannot run `{program_shown}`: permission denied (is it executable?)")
        }
        _ => format!("cannot run `{program_shown}`: {error}"),
    }
}

fn describe(status: std::process::ExitStatus) -> String {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => format!("exited with status {code}"),
        (None, Some(signal)) => format!("was killed by signal {signal}"),
        (None, None) => format!("ended with {status}"),
    }
}

fn millis(duration: Duration) -> u64 {
    u64::try_from(duration.as_millis()).unwrap_or(u64::MAX)
}

#[async_trait::async_trait]
impl RowGetter for CommandSource {
    async fn get_rows(
        &self,
        request: &FetchRequest<'_>,
    ) -> std::result::Result<Fetched, SourceError> {
        let query_error = |message: String| SourceError::Query {
            source_name: request.source.to_string(),
            message,
        };
        let words = shell_words::split(request.query).map_err(|_| {
            query_error(format!(
                "checker {:?}: __QUERY__ has a quote ' or \" that is never closed",
                request.checker
            ))
        })?;
        let Some((program, args)) = words.split_first() else {
            return Err(query_error(format!(
                "checker {:?}: __QUERY__ names no program to run",
                request.checker
            )));
        };
        let invocation = Invocation {
            program,
            args,
            env: &[
                ("DWMON_CHECKER", request.checker),
                ("DWMON_SOURCE", request.source),
            ],
            working_dir: self.working_dir.as_deref().map(Path::new),
        };
        let finished = match process::run(&invocation, self.limits).await {
            Ok(finished) => finished,
            Err(RunError::Spawn(error)) => return Err(query_error(spawn_message(program, &error))),
            Err(RunError::Timeout) => {
                return Err(SourceError::Timeout {
                    millis: millis(self.limits.timeout),
                })
            }
            Err(RunError::OutputTooLarge) => {
                return Err(query_error(format!(
                    "`{}` printed more than {} bytes on stdout and was killed; make it print \
                     less or raise max_output_bytes",
                    shown(program),
                    self.limits.max_output_bytes
                )))
            }
            Err(RunError::Io(error)) => {
                return Err(query_error(format!(
                    "reading the output of `{}` failed: {error}",
                    shown(program)
                )))
            }
        };
        if !finished.status.success() {
            let stderr = if finished.stderr.0.is_empty() {
                "(empty)"
            } else {
                &finished.stderr.0
            };
            return Err(query_error(format!(
                "`{}` {}; stderr: {stderr}",
                shown(program),
                describe(finished.status)
            )));
        }
        if !finished.stderr.0.is_empty() {
            tracing::debug!(checker = request.checker, stderr = %finished.stderr.0, "command wrote to stderr");
        }
        self.format.parse(request.checker, &finished.stdout)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_set_format_and_limits() -> Result<()> {
        let source = CommandSource::from_url("command:jsonl?timeout=0.5&max_output_bytes=10")?;
        assert_eq!(source.format(), Format::JsonLines);
        assert_eq!(source.timeout(), Duration::from_millis(500));
        assert_eq!(source.max_output_bytes(), 10);
        let source = CommandSource::from_url("command:csv")?;
        assert_eq!(source.timeout(), CommandSource::DEFAULT_TIMEOUT);
        assert_eq!(
            source.max_output_bytes(),
            CommandSource::DEFAULT_MAX_OUTPUT_BYTES
        );
        Ok(())
    }

    #[test]
    fn program_names_in_messages_hide_what_may_be_a_secret() {
        for (program, want) in [
            ("psql", "psql"),
            ("./bin/rows", "./bin/rows"),
            ("PGPASSWORD=hunter2", "PGPASSWORD=***"),
            ("--password=hunter2", "--password=***"),
            ("https://u:hunter2@host/x", "https://u:***@host/x"),
            ("https://host/x", "https://host/x"),
        ] {
            assert_eq!(shown(program), want, "{program}");
        }
        let missing = std::io::Error::from(std::io::ErrorKind::NotFound);
        let message = spawn_message("PGPASSWORD=hunter2", &missing);
        assert!(!message.contains("hunter2"), "{message}");
        assert!(message.contains("env NAME=VALUE program"), "{message}");
        assert!(!spawn_message("psql", &missing).contains("env NAME"));
    }

    #[test]
    fn bad_urls_say_what_is_expected() {
        for (url, hint) in [
            ("command:xml", "use command:csv or command:jsonl"),
            ("sqlite:x", "command:csv or command:jsonl"),
            ("command:csv?timeout=soon", "timeout=soon is not a number"),
            ("command:csv?timeout=-1", "is not a number"),
            (
                "command:csv?max_output_bytes=1k",
                "is not a number of bytes",
            ),
            ("command:csv?shell=1", "unknown option \"shell\""),
            ("command:csv?timeout=0", "must be more than zero"),
            ("command:csv?max_output_bytes=0", "must be at least 1"),
        ] {
            let message = CommandSource::from_url(url).unwrap_err().to_string();
            assert!(message.contains(hint), "{url}: {message}");
        }
    }
}
