//! A real SMTP server on 127.0.0.1 for email sinks (mailin-embedded): it
//! speaks the protocol, keeps each message it accepts, and can refuse
//! recipients or answer "try again later" as a test scripts it.

use std::net::{SocketAddr, TcpListener};
use std::sync::{Arc, Mutex};

use mailin_embedded::{AuthMechanism, Handler, Response, Server, SslConfig, response};

/// A message as the server took it.
#[derive(Debug, Clone)]
pub struct Mail {
    pub from: String,
    pub to: Vec<String>,
    /// The whole message, headers and body, as sent.
    pub raw: String,
}

#[derive(Default)]
struct State {
    mails: Vec<Mail>,
    /// Recipients answered 550.
    unknown: Vec<String>,
    /// Answers to RCPT, in turn, before accepting (e.g. 451).
    refusals: Vec<Response>,
    /// The user and password AUTH takes, when the server asks for a login.
    login: Option<(String, String)>,
    /// Users that logged in, in turn.
    logins: Vec<String>,
}

#[derive(Clone)]
struct Recorder {
    state: Arc<Mutex<State>>,
    from: String,
    to: Vec<String>,
    data: Vec<u8>,
}

impl Handler for Recorder {
    fn data_start(&mut self, _domain: &str, from: &str, _is8bit: bool, to: &[String]) -> Response {
        self.from = from.to_owned();
        self.to = to.to_vec();
        self.data.clear();
        response::OK
    }

    fn rcpt(&mut self, to: &str) -> Response {
        let mut state = self.state.lock().unwrap();
        if !state.refusals.is_empty() {
            return state.refusals.remove(0);
        }
        if state.unknown.iter().any(|u| to.contains(u.as_str())) {
            response::NO_MAILBOX
        } else {
            response::OK
        }
    }

    fn auth_plain(
        &mut self,
        _authorization_id: &str,
        authentication_id: &str,
        password: &str,
    ) -> Response {
        let mut state = self.state.lock().unwrap();
        let accepted = state
            .login
            .as_ref()
            .is_some_and(|(user, pass)| user == authentication_id && pass == password);
        if accepted {
            state.logins.push(authentication_id.to_owned());
            response::AUTH_OK
        } else {
            response::INVALID_CREDENTIALS
        }
    }

    fn data(&mut self, buf: &[u8]) -> std::io::Result<()> {
        self.data.extend_from_slice(buf);
        Ok(())
    }

    fn data_end(&mut self) -> Response {
        let mut state = self.state.lock().unwrap();
        state.mails.push(Mail {
            from: self.from.clone(),
            to: self.to.clone(),
            raw: String::from_utf8_lossy(&self.data).into_owned(),
        });
        response::OK
    }
}

pub struct SmtpServer {
    addr: SocketAddr,
    state: Arc<Mutex<State>>,
}

impl SmtpServer {
    /// Listens on a free port; serves on its own threads until the test ends.
    pub fn start() -> SmtpServer {
        SmtpServer::serve(SslConfig::None, None)
    }

    /// Offers STARTTLS with the certificate in tests/fixtures/smtp (signed by
    /// its `ca.pem`, for 127.0.0.1) and takes AUTH PLAIN as `user`/`password`.
    pub fn start_tls(user: &str, password: &str) -> SmtpServer {
        let fixtures = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp");
        let ssl = SslConfig::SelfSigned {
            cert_path: fixtures.join("server.pem").display().to_string(),
            key_path: fixtures.join("server.key").display().to_string(),
        };
        SmtpServer::serve(ssl, Some((user.to_owned(), password.to_owned())))
    }

    /// The test authority's certificate, for an email sink's `tls_ca`.
    pub fn ca_path() -> std::path::PathBuf {
        std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/smtp/ca.pem")
    }

    fn serve(ssl: SslConfig, login: Option<(String, String)>) -> SmtpServer {
        // The server side asks rustls for the process's provider; two are
        // compiled in (ring, aws-lc-rs), so one is named. Already set is fine.
        let _ = rustls::crypto::ring::default_provider().install_default();
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        let addr = listener.local_addr().unwrap();
        let authenticated = login.is_some();
        let state = Arc::new(Mutex::new(State {
            login,
            ..State::default()
        }));
        let recorder = Recorder {
            state: Arc::clone(&state),
            from: String::new(),
            to: Vec::new(),
            data: Vec::new(),
        };
        let mut server = Server::new(recorder);
        server
            .with_name("smtp.test")
            .with_ssl(ssl)
            .unwrap()
            .with_num_threads(4)
            .with_tcp_listener(listener);
        if authenticated {
            server.with_auth(AuthMechanism::Plain);
        }
        std::thread::spawn(move || {
            let _ = server.serve();
        });
        SmtpServer { addr, state }
    }

    /// `smtp://127.0.0.1:PORT` followed by `suffix` (a query such as `?tls=none`).
    pub fn url(&self, suffix: &str) -> String {
        format!("smtp://{}{suffix}", self.addr)
    }

    pub fn logins(&self) -> Vec<String> {
        self.state.lock().unwrap().logins.clone()
    }

    pub fn mails(&self) -> Vec<Mail> {
        self.state.lock().unwrap().mails.clone()
    }

    /// Answers 550 to RCPT for addresses containing `address`.
    pub fn refuse_recipient(&self, address: &str) {
        self.state.lock().unwrap().unknown.push(address.to_owned());
    }

    /// Lets every recipient through again.
    pub fn accept_every_recipient(&self) {
        self.state.lock().unwrap().unknown.clear();
    }

    /// Answers the next recipient with `code` (e.g. 451: try later).
    pub fn refuse_next(&self, code: u16, text: &str) {
        self.state
            .lock()
            .unwrap()
            .refusals
            .push(Response::custom(code, text.to_owned()));
    }
}
