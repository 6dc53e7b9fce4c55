//! The reference `dwmon` command: see `dwmon --help`.

fn main() -> std::process::ExitCode {
    dwmon::App::new().run_cli()
}
