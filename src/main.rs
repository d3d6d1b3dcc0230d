//! Parse the command line, load the settings, start logging, dispatch.

use std::process::ExitCode;

use clap::Parser;
use portcullis::{
    cli::{self, Cli, Command},
    config::Config,
    startup::Application,
    web::request_log,
};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let config = match Config::from_env() {
        Ok(config) => config,
        Err(e) => return fail(e),
    };
    let serving = matches!(cli.command, None | Some(Command::Serve));
    if let Err(e) = request_log::init(&config.log_filter, !serving) {
        return fail(e);
    }
    let outcome = match cli.command {
        None | Some(Command::Serve) => return serve(config),
        Some(Command::CreateAdmin { name }) => cli::create_admin(&config, &name),
        Some(Command::Promote { name }) => cli::promote(&config, &name),
        Some(Command::ResetLink { name }) => cli::reset_link(&config, &name),
        Some(Command::Audit { since, user }) => {
            cli::audit(&config, since.as_deref(), user.as_deref())
        }
        Some(Command::BcryptTime { cost, rounds }) => cli::bcrypt_time(cost, rounds),
    };
    match outcome {
        Ok(message) => {
            println!("{message}");
            ExitCode::SUCCESS
        }
        Err(reason) => fail(reason),
    }
}

fn serve(config: Config) -> ExitCode {
    actix_web::rt::System::new().block_on(async move {
        let addr = config.bind_addr;
        let app = match Application::build(config) {
            Ok(app) => app,
            Err(e) => return fail(e),
        };
        tracing::info!("listening on http://{}:{}", addr.ip(), app.port());
        match app.run_until_stopped().await {
            Ok(()) => ExitCode::SUCCESS,
            Err(e) => fail(e),
        }
    })
}

fn fail(reason: impl std::fmt::Display) -> ExitCode {
    eprintln!("portcullis: {reason}");
    ExitCode::FAILURE
}
