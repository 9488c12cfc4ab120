//! The language server's stdio transport: LSP frames (`Content-Length` headers, a JSON-RPC
//! body) read with every size bounded before anything is allocated, and the reason a
//! connection ended kept. `lsp-server`'s own stdio reader allocates whatever
//! `Content-Length` says (2·10^19 panics, 10^11 aborts) and reports any bad frame as a
//! closed connection; this one refuses the frame and names what was wrong with it.

use std::io::{self, BufRead, Read, Write};
use std::thread::JoinHandle;

use crossbeam_channel::bounded;
use lsp_server::{Connection, Message};

/// The largest message body accepted, in bytes (64 MiB: a whole 4 MiB source file, the
/// largest slimc reads, escaped into JSON, fits many times over).
pub const MAX_FRAME: u64 = 64 << 20;

/// The longest header line accepted, in bytes.
const MAX_HEADER: u64 = 8 << 10;

/// Why reading the client's messages stopped.
#[derive(Debug, thiserror::Error)]
pub enum FrameError {
    #[error("reading from the client failed: {0}")]
    Io(#[from] io::Error),
    #[error("malformed LSP header {0:?} (expected `Name: value` ending in \\r\\n)")]
    Header(String),
    #[error("an LSP header line longer than {MAX_HEADER} bytes")]
    LongHeader,
    #[error("an LSP message without a Content-Length header")]
    NoLength,
    #[error("Content-Length {0:?} is not a byte count")]
    BadLength(String),
    #[error("Content-Length {0} exceeds the limit of {MAX_FRAME} bytes for one message")]
    TooLarge(u64),
    #[error("the client closed the connection in the middle of a message")]
    Truncated,
    #[error("an LSP message body that is not UTF-8 text")]
    NotUtf8,
    #[error("an LSP message body that is not a JSON-RPC message: {0}")]
    NotJson(String),
}

/// Reads one message; `None` at a clean end of input (between messages).
pub fn read_message(input: &mut impl BufRead) -> Result<Option<Message>, FrameError> {
    let mut length = None;
    let mut first = true;
    loop {
        let mut line = Vec::new();
        let n = input.by_ref().take(MAX_HEADER + 1).read_until(b'\n', &mut line)?;
        if n == 0 {
            return if first { Ok(None) } else { Err(FrameError::Truncated) };
        }
        first = false;
        if n as u64 > MAX_HEADER {
            return Err(FrameError::LongHeader);
        }
        let text = String::from_utf8_lossy(&line);
        let Some(header) = text.strip_suffix("\r\n") else {
            return Err(FrameError::Header(text.chars().take(80).collect()));
        };
        if header.is_empty() {
            break;
        }
        let Some((name, value)) = header.split_once(':') else {
            return Err(FrameError::Header(header.chars().take(80).collect()));
        };
        if name.trim().eq_ignore_ascii_case("Content-Length") {
            let value = value.trim();
            let size = value.parse::<u64>().map_err(|_| FrameError::BadLength(value.chars().take(40).collect()))?;
            if size > MAX_FRAME {
                return Err(FrameError::TooLarge(size));
            }
            length = Some(size);
        }
    }
    let length = length.ok_or(FrameError::NoLength)?;
    let mut body = Vec::with_capacity(length as usize);
    input.by_ref().take(length).read_to_end(&mut body)?;
    if (body.len() as u64) < length {
        return Err(FrameError::Truncated);
    }
    let text = String::from_utf8(body).map_err(|_| FrameError::NotUtf8)?;
    serde_json::from_str(&text).map(Some).map_err(|e| FrameError::NotJson(e.to_string()))
}

/// A connection over stdin and stdout, and the threads that serve it.
pub struct Stdio {
    pub connection: Connection,
    reader: JoinHandle<Result<(), FrameError>>,
    writer: JoinHandle<io::Result<()>>,
}

/// Opens the stdio transport: a reader thread ([`read_message`]) and a writer thread.
pub fn stdio() -> Stdio {
    let (to_server, from_client) = bounded::<Message>(0);
    let (to_client, from_server) = bounded::<Message>(0);
    let reader = std::thread::spawn(move || {
        let stdin = io::stdin();
        let mut input = stdin.lock();
        while let Some(message) = read_message(&mut input)? {
            let exit = matches!(&message, Message::Notification(n) if n.method == "exit");
            // The server stopped listening: it has ended, and so does reading.
            if to_server.send(message).is_err() || exit {
                break;
            }
        }
        Ok(())
    });
    let writer = std::thread::spawn(move || {
        let stdout = io::stdout();
        let mut output = stdout.lock();
        for message in from_server {
            message.write(&mut output)?;
            output.flush()?;
        }
        Ok(())
    });
    Stdio { connection: Connection { sender: to_client, receiver: from_client }, reader, writer }
}

impl Stdio {
    /// Closes the connection and waits for both threads: the reader's error, if reading
    /// failed (the real reason a server saw its client disappear), else the writer's.
    pub fn close(self) -> Result<(), FrameError> {
        let Stdio { connection, reader, writer } = self;
        drop(connection);
        let read = reader.join().unwrap_or(Ok(()));
        let written = writer.join().unwrap_or(Ok(()));
        read.and(written.map_err(FrameError::Io))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(bytes: &[u8]) -> Result<Option<Message>, FrameError> {
        read_message(&mut io::Cursor::new(bytes))
    }

    #[test]
    fn frames_are_bounded_and_their_faults_named() {
        let body = r#"{"jsonrpc":"2.0","method":"exit"}"#;
        let ok = format!("Content-Length: {}\r\n\r\n{body}", body.len());
        assert!(matches!(read(ok.as_bytes()), Ok(Some(Message::Notification(_)))));
        assert!(matches!(read(b""), Ok(None)));
        let huge = b"Content-Length: 20000000000000000000\r\n\r\n";
        assert!(matches!(read(huge), Err(FrameError::BadLength(_))), "past u64: not a byte count");
        let big = b"Content-Length: 100000000000\r\n\r\n";
        assert!(matches!(read(big), Err(FrameError::TooLarge(100_000_000_000))));
        assert!(matches!(read(b"garbage\r\n\r\n"), Err(FrameError::Header(_))));
        assert!(matches!(read(b"Content-Length: 5\n\n"), Err(FrameError::Header(_))));
        assert!(matches!(read(b"X: y\r\n\r\n{}"), Err(FrameError::NoLength)));
        assert!(matches!(read(b"Content-Length: 9\r\n\r\nnot json!"), Err(FrameError::NotJson(_))));
        assert!(matches!(read(b"Content-Length: 2\r\n\r\n\xff\xfe"), Err(FrameError::NotUtf8)));
        assert!(matches!(read(b"Content-Length: 50\r\n\r\n{}"), Err(FrameError::Truncated)));
        assert!(matches!(read(b"Content-Length: 5\r\n"), Err(FrameError::Truncated)));
        let long = format!("X-{}: 1\r\n", "a".repeat(20_000));
        assert!(matches!(read(long.as_bytes()), Err(FrameError::LongHeader)));
    }
}
