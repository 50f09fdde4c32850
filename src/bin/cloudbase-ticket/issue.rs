//! `cloudbase-ticket issue`: one ticket, or a ticket per line of a uid file, in parallel,
//! streamed in input order with bounded memory.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{self, BufRead, BufReader, BufWriter, IsTerminal as _, Read, Write};
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::sync::{Arc, Mutex};

use clap::Args;
use cloudbase_ticket::{Issuer, TicketError, TicketOptions};

use crate::output::{Existing, OutputFile};
use crate::{CliError, CredentialsArgs, io_failure, ioerr, write_stdout};

pub(crate) const EXAMPLES: &str = "Examples:
  # one ticket, from the console's key file
  cloudbase-ticket issue --credentials tcb_custom_login.json --uid user_0001

  # credentials from the environment, pinned clock (reproducible output)
  TCB_CUSTOM_LOGIN_CREDENTIALS=\"$(cat tcb_custom_login.json)\" \\
    cloudbase-ticket issue --uid user_0001 --now-ms 1758597487691

  # one ticket into a file (mode 0600) instead of stdout
  cloudbase-ticket issue --credentials key.json --uid user_0001 --out ticket.txt

  # a ticket for every uid in a file, as JSON Lines {\"uid\":…,\"ticket\":…}, on all cores
  cloudbase-ticket issue --credentials key.json --uids uids.txt --out tickets.jsonl

  # from a pipe, skipping bad lines
  seq -f 'user_%06g' 1 100000 | cloudbase-ticket issue --credentials key.json --uids - --skip-invalid";

/// Lines per unit of work handed to a thread.
const CHUNK_LINES: usize = 512;
/// Longest line read; longer lines are invalid uids (a uid has at most 32 characters).
const MAX_LINE_BYTES: usize = 4096;

#[derive(Args, Debug)]
pub(crate) struct IssueArgs {
    #[command(flatten)]
    credentials: CredentialsArgs,
    /// The custom user id: 4 to 32 of a-z A-Z 0-9 _-#@~=*(){}[]:.,<>+
    #[arg(
        long,
        value_name = "UID",
        allow_hyphen_values = true,
        required_unless_present = "uids",
        conflicts_with = "uids"
    )]
    uid: Option<String>,
    /// Issue for every line of FILE ('-' for stdin); writes JSON Lines in input order. A BOM,
    /// CRLF and surrounding whitespace are ignored, and so are blank lines.
    #[arg(long, value_name = "FILE|-", allow_hyphen_values = true)]
    uids: Option<String>,
    /// The env to issue for: must equal the key's env_id, if it has one (default: the key's
    /// env_id; required for old keys without one).
    #[arg(
        long,
        value_name = "ENV",
        allow_hyphen_values = true,
        conflicts_with = "current_env"
    )]
    env: Option<String>,
    /// Issue for the current env: TCB_ENV, else SCF_NAMESPACE (as in a cloud function).
    #[arg(long)]
    current_env: bool,
    /// The ticket's `refresh` in milliseconds (default 3600000 = 1 hour; under 60000 warns).
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    refresh_ms: Option<u64>,
    /// The ticket's `expire`: an absolute time in ms since the epoch, not a duration (default:
    /// now + 7 days; a time before now is refused).
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    expire_ms: Option<u64>,
    /// Use this time (ms since the epoch) instead of the clock: reproducible tickets.
    #[arg(long, value_name = "MS", allow_negative_numbers = true)]
    now_ms: Option<u64>,
    /// Refuse keys under 2048 bits (the console issues 1024-bit keys).
    #[arg(long)]
    strict_key_size: bool,
    /// Write to FILE instead of stdout (the ticket and a newline; with --uids, the JSON
    /// Lines): mode 0600, whole or not at all. FILE may not be --credentials or --uids.
    #[arg(long, value_name = "FILE", allow_hyphen_values = true)]
    out: Option<PathBuf>,
    /// With --uids: signing threads, 1 to 1024 (default: all cores, at most 1024).
    #[arg(
        long,
        value_name = "N",
        allow_negative_numbers = true,
        requires = "uids",
        conflicts_with = "uid",
        value_parser = crate::parse_threads
    )]
    threads: Option<usize>,
    /// With --uids: skip invalid lines (and report how many) instead of stopping.
    #[arg(long, requires = "uids", conflicts_with = "uid")]
    skip_invalid: bool,
}

/// Refuse an `--out` that is one of the files this command reads: `--credentials`, or the
/// `--uids` file (or, for `--uids -`, the file stdin is redirected from).
fn refuse_input_as_output(args: &IssueArgs) -> Result<(), CliError> {
    let Some(out) = &args.out else {
        return Ok(());
    };
    let mut inputs: Vec<(String, &Path)> = Vec::new();
    if let Some(path) = &args.credentials.credentials {
        inputs.push((format!("--credentials {}", path.display()), path));
    }
    match args.uids.as_deref() {
        Some("-") => inputs.push(("stdin (--uids -)".to_string(), Path::new("/dev/stdin"))),
        Some(path) => inputs.push((format!("--uids {path}"), Path::new(path))),
        None => {}
    }
    crate::output::refuse_input_as_output("--out", out, &inputs)
}

pub(crate) fn run(args: IssueArgs) -> Result<ExitCode, CliError> {
    if let Some(out) = &args.out {
        crate::output::refuse_stream(out)?;
    }
    refuse_input_as_output(&args)?;
    let creds = args.credentials.load()?;
    let mut builder = Issuer::builder(creds).strict_key_size(args.strict_key_size);
    if let Some(env) = &args.env {
        builder = builder.env(env.clone());
    }
    if args.current_env {
        builder = builder.current_env();
    }
    if let Some(now) = args.now_ms {
        builder = builder.fixed_now_ms(now);
    }
    let issuer = builder.build()?;
    let mut options = TicketOptions::new();
    if let Some(refresh) = args.refresh_ms {
        options = options.with_refresh_ms(refresh);
    }
    if let Some(expire) = args.expire_ms {
        options = options.with_expire_ms(expire);
    }
    for warning in issuer.warnings(&options) {
        eprintln!("cloudbase-ticket: warning: {warning}");
    }

    if let Some(uid) = &args.uid {
        let mut ticket = issuer.create_ticket_with(uid, &options)?;
        ticket.push('\n');
        let Some(path) = &args.out else {
            write_stdout(ticket.as_bytes())?;
            return Ok(ExitCode::SUCCESS);
        };
        let mut file = OutputFile::create(path)?;
        file.write_all(ticket.as_bytes())
            .map_err(|e| io_failure(&path.display().to_string(), &e))?;
        file.commit(Existing::Replace)?;
        return Ok(ExitCode::SUCCESS);
    }

    let source = args.uids.as_deref().expect("clap requires --uid or --uids");
    let threads = crate::threads_or_all_cores(args.threads);
    let (input, input_len, input_name): (Box<dyn Read + Send>, Option<u64>, String) =
        if source == "-" {
            (Box::new(io::stdin()), None, "uids from stdin".to_string())
        } else {
            let path = Path::new(source);
            let file = File::open(path).map_err(|e| ioerr::read_error("uid file", path, &e))?;
            let meta = file
                .metadata()
                .map_err(|e| ioerr::read_error("uid file", path, &e))?;
            if meta.is_dir() {
                let e = io::Error::from(io::ErrorKind::IsADirectory);
                return Err(ioerr::read_error("uid file", path, &e));
            }
            let len = meta.is_file().then_some(meta.len());
            (Box::new(file), len, format!("uid file {source}"))
        };
    // With --out: a temporary file until the run succeeds (see output.rs); dropped on an error
    // (the `?` below), which removes it and leaves any existing file as it was.
    let mut file = args.out.as_deref().map(OutputFile::create).transpose()?;
    let progress = Progress::new(input_len);
    let result = {
        let mut stdout = io::stdout();
        let (target, name): (&mut dyn Write, String) = match &mut file {
            Some(file) => {
                let name = file.shown().display().to_string();
                (file, name)
            }
            None => (&mut stdout, "stdout".to_string()),
        };
        let writer = &mut BufWriter::with_capacity(1 << 16, target);
        bulk_issue(
            &issuer,
            &options,
            Source {
                reader: input,
                name: input_name,
            },
            Sink { writer, name },
            threads,
            args.skip_invalid,
            &progress,
        )
    };
    progress.finish();
    let summary = result?;
    if let Some(file) = file {
        file.commit(Existing::Replace)?;
    }
    if args.skip_invalid {
        eprintln!(
            "cloudbase-ticket: issued {} ticket{}, skipped {} invalid line{}",
            summary.issued,
            if summary.issued == 1 { "" } else { "s" },
            summary.skipped,
            if summary.skipped == 1 { "" } else { "s" }
        );
    }
    Ok(ExitCode::SUCCESS)
}

/// A progress bar on stderr when stderr is a terminal; nothing otherwise.
struct Progress {
    bar: indicatif::ProgressBar,
    bytes_read: AtomicU64,
    by_bytes: bool,
}

impl Progress {
    fn new(input_len: Option<u64>) -> Self {
        use indicatif::{ProgressBar, ProgressStyle};
        let (bar, by_bytes) = if !io::stderr().is_terminal() {
            (ProgressBar::hidden(), false)
        } else if let Some(len) = input_len {
            let bar = ProgressBar::new(len);
            bar.set_style(
                ProgressStyle::with_template(
                    "{bar:40} {percent:>3}% {msg} tickets, {elapsed} (eta {eta})",
                )
                .expect("valid template"),
            );
            (bar, true)
        } else {
            let bar = ProgressBar::new_spinner();
            bar.set_style(
                ProgressStyle::with_template("{spinner} {pos} tickets, {per_sec}, {elapsed}")
                    .expect("valid template"),
            );
            (bar, false)
        };
        Self {
            bar,
            bytes_read: AtomicU64::new(0),
            by_bytes,
        }
    }

    fn tickets_written(&self, total: u64) {
        if self.by_bytes {
            self.bar
                .set_position(self.bytes_read.load(Ordering::Relaxed));
            self.bar.set_message(total.to_string());
        } else {
            self.bar.set_position(total);
        }
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A slice of the input: consecutive lines, starting at `first_line` (1-based).
struct Chunk {
    index: u64,
    first_line: u64,
    /// The lines' bytes, back to back, without line ends.
    data: Vec<u8>,
    /// End offset of each line in `data`; `None` marks a line over [`MAX_LINE_BYTES`].
    ends: Vec<Option<usize>>,
}

/// A chunk's JSON Lines, or where it stopped.
struct Done {
    index: u64,
    json_lines: Vec<u8>,
    issued: u64,
    skipped: u64,
    error: Option<CliError>,
}

/// Where uids come from, and its name for messages (`uid file PATH`, `uids from stdin`).
struct Source {
    reader: Box<dyn Read + Send>,
    name: String,
}

/// Where JSON Lines go, and its name for messages.
struct Sink<'a> {
    writer: &'a mut dyn Write,
    name: String,
}

struct Summary {
    issued: u64,
    skipped: u64,
}

/// Read lines into chunks, sign them on `threads` threads, write them in input order.
///
/// Memory stays bounded: at most `4 × threads` chunks exist at any time (a token must be taken
/// before a chunk is read and is returned only when the chunk has been written).
fn bulk_issue(
    issuer: &Issuer,
    options: &TicketOptions,
    source: Source,
    sink: Sink<'_>,
    threads: usize,
    skip_invalid: bool,
    progress: &Progress,
) -> Result<Summary, CliError> {
    let in_flight = 4 * threads;
    let (token_tx, token_rx) = sync_channel::<()>(in_flight);
    for _ in 0..in_flight {
        token_tx.send(()).expect("channel has room");
    }
    let (work_tx, work_rx) = sync_channel::<Chunk>(in_flight);
    // Shared by the workers only, so that it closes when the last worker stops and a reader
    // blocked on a full queue wakes up.
    let work_rx = Arc::new(Mutex::new(work_rx));
    let (done_tx, done_rx) = channel::<Done>();
    let stop = AtomicBool::new(false);

    std::thread::scope(|scope| {
        let reader =
            scope.spawn(|| read_chunks(source, token_rx, work_tx, &stop, &progress.bytes_read));
        for _ in 0..threads {
            let done_tx = done_tx.clone();
            let work_rx = Arc::clone(&work_rx);
            let stop = &stop;
            scope.spawn(move || sign_chunks(issuer, options, work_rx, done_tx, skip_invalid, stop));
        }
        drop(done_tx);
        drop(work_rx);

        let Sink { writer, name } = sink;
        let result = write_in_order(done_rx, token_tx, writer, &name, progress, &stop);
        let result = result.and_then(|summary| {
            writer.flush().map_err(|e| io_failure(&name, &e))?;
            Ok(summary)
        });
        match reader.join().expect("reader thread does not panic") {
            Err(e) if result.is_ok() => Err(e),
            _ => result,
        }
    })
}

fn read_chunks(
    source: Source,
    tokens: Receiver<()>,
    work: SyncSender<Chunk>,
    stop: &AtomicBool,
    bytes_read: &AtomicU64,
) -> Result<(), CliError> {
    let name = source.name;
    let read_error =
        |e: io::Error| CliError::usage(format!("cannot read {name}: {}", ioerr::words(&e)));
    let mut reader = BufReader::with_capacity(1 << 16, source.reader);
    let mut line = Vec::with_capacity(256);
    let mut next_line = 1u64;
    for index in 0u64.. {
        if tokens.recv().is_err() || stop.load(Ordering::Relaxed) {
            return Ok(());
        }
        let mut chunk = Chunk {
            index,
            first_line: next_line,
            data: Vec::with_capacity(CHUNK_LINES * 16),
            ends: Vec::with_capacity(CHUNK_LINES),
        };
        while chunk.ends.len() < CHUNK_LINES {
            line.clear();
            let n = (&mut reader)
                .take(MAX_LINE_BYTES as u64 + 1)
                .read_until(b'\n', &mut line)
                .map_err(read_error)?;
            if n == 0 {
                break;
            }
            let mut consumed = n as u64;
            let complete = line.last() == Some(&b'\n');
            if !complete && line.len() > MAX_LINE_BYTES {
                // Over-long line: drop the rest of it, keep its place as an invalid line.
                consumed += skip_line(&mut reader).map_err(read_error)?;
                chunk.ends.push(None);
            } else {
                let mut text: &[u8] = &line;
                text = text.strip_suffix(b"\n").unwrap_or(text);
                text = text.strip_suffix(b"\r").unwrap_or(text);
                chunk.data.extend_from_slice(text);
                chunk.ends.push(Some(chunk.data.len()));
            }
            bytes_read.fetch_add(consumed, Ordering::Relaxed);
        }
        if chunk.ends.is_empty() {
            return Ok(());
        }
        next_line += chunk.ends.len() as u64;
        if work.send(chunk).is_err() {
            return Ok(());
        }
    }
    Ok(())
}

/// Skip to the next newline; returns the bytes skipped.
fn skip_line(reader: &mut impl BufRead) -> io::Result<u64> {
    let mut skipped = 0u64;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            return Ok(skipped);
        }
        match buf.iter().position(|&b| b == b'\n') {
            Some(i) => {
                reader.consume(i + 1);
                return Ok(skipped + i as u64 + 1);
            }
            None => {
                let n = buf.len();
                reader.consume(n);
                skipped += n as u64;
            }
        }
    }
}

#[derive(serde::Serialize)]
struct JsonLine<'a> {
    uid: &'a str,
    ticket: &'a str,
}

fn sign_chunks(
    issuer: &Issuer,
    options: &TicketOptions,
    work: Arc<Mutex<Receiver<Chunk>>>,
    done: std::sync::mpsc::Sender<Done>,
    skip_invalid: bool,
    stop: &AtomicBool,
) {
    let mut ticket = String::with_capacity(1024);
    loop {
        let chunk = match work
            .lock()
            .expect("no panics while holding the lock")
            .recv()
        {
            Ok(chunk) => chunk,
            Err(_) => return,
        };
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let mut result = Done {
            index: chunk.index,
            json_lines: Vec::with_capacity(chunk.ends.len() * 320),
            issued: 0,
            skipped: 0,
            error: None,
        };
        let mut start = 0;
        for (i, end) in chunk.ends.iter().enumerate() {
            let line_no = chunk.first_line + i as u64;
            let uid = match end {
                Some(end) => {
                    let bytes = &chunk.data[start..*end];
                    start = *end;
                    std::str::from_utf8(bytes)
                        .map(crate::text::strip_added_text)
                        .map_err(|_| "not UTF-8 text".to_string())
                }
                None => Err(format!("longer than {MAX_LINE_BYTES} bytes")),
            };
            if uid.as_ref().is_ok_and(|uid| uid.is_empty()) {
                // A blank line (an editor's trailing empty line, a separator): not a uid.
                continue;
            }
            ticket.clear();
            let outcome =
                uid.and_then(|uid| match issuer.write_ticket(uid, options, &mut ticket) {
                    Ok(()) => Ok(uid),
                    Err(TicketError::InvalidUid(e)) => Err(e.to_string()),
                    Err(other) => {
                        result.error = Some(CliError::from(other));
                        Err(String::new())
                    }
                });
            match outcome {
                Ok(uid) => {
                    serde_json::to_writer(
                        &mut result.json_lines,
                        &JsonLine {
                            uid,
                            ticket: &ticket,
                        },
                    )
                    .expect("writing JSON to memory cannot fail");
                    result.json_lines.push(b'\n');
                    result.issued += 1;
                }
                Err(_) if result.error.is_some() => break,
                Err(_) if skip_invalid => result.skipped += 1,
                Err(reason) => {
                    let reason = if reason.starts_with("invalid uid") {
                        reason
                    } else {
                        format!("invalid uid: {reason}")
                    };
                    result.error = Some(CliError::usage(format!(
                        "line {line_no}: {reason} (use --skip-invalid to skip such lines)"
                    )));
                    break;
                }
            }
        }
        if done.send(result).is_err() {
            return;
        }
    }
}

fn write_in_order(
    done: Receiver<Done>,
    tokens: SyncSender<()>,
    out: &mut dyn Write,
    out_name: &str,
    progress: &Progress,
    stop: &AtomicBool,
) -> Result<Summary, CliError> {
    let mut pending: BTreeMap<u64, Done> = BTreeMap::new();
    let mut next = 0u64;
    let mut summary = Summary {
        issued: 0,
        skipped: 0,
    };
    for result in done {
        pending.insert(result.index, result);
        while let Some(result) = pending.remove(&next) {
            next += 1;
            out.write_all(&result.json_lines).map_err(|e| {
                stop.store(true, Ordering::Relaxed);
                io_failure(out_name, &e)
            })?;
            summary.issued += result.issued;
            summary.skipped += result.skipped;
            progress.tickets_written(summary.issued);
            if let Some(error) = result.error {
                stop.store(true, Ordering::Relaxed);
                return Err(error);
            }
            // The chunk is out of memory now: let the reader read another.
            let _ = tokens.send(());
        }
    }
    Ok(summary)
}
