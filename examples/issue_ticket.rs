//! Issue one ticket, as node-sdk's `app.auth().createTicket(uid)` does.
//!
//! ```sh
//! cargo run --example issue_ticket -- fixtures/tcb_custom_login.json user_0001
//! TCB_CUSTOM_LOGIN_CREDENTIALS="$(cat fixtures/tcb_custom_login.json)" cargo run --example issue_ticket -- - user_0001
//! ```

use cloudbase_ticket::{Credentials, Issuer};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (Some(source), Some(uid)) = (args.next(), args.next()) else {
        eprintln!("usage: issue_ticket CREDENTIALS_FILE|- UID   ('-': from the environment)");
        std::process::exit(2);
    };
    let credentials = if source == "-" {
        Credentials::from_env()?
    } else {
        Credentials::from_file(&source)?
    };
    let issuer = Issuer::new(credentials)?;
    println!("{}", issuer.create_ticket(&uid)?);
    Ok(())
}
