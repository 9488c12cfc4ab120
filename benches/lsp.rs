//! `cargo bench --bench lsp`: the language server's latency after an edit, as an editor
//! sees it: `didChange` sent → `publishDiagnostics` received, over an in-process connection
//! (`Connection::memory()`, so no pipe time). The edit alternates a stage's block count in
//! `models/resnet152.slim` between 36 and 35 (the whole file is re-analysed each time), then
//! one hover on the same file. Prints the median, 95th percentile and maximum against the
//! 20 ms goal of issue 16.

use std::time::{Duration, Instant};

use lsp_server::{Connection, Message, Notification, Request, RequestId};
use serde_json::json;

const GOAL: Duration = Duration::from_millis(20);

fn main() {
    let path = "models/resnet152.slim";
    let text = std::fs::read_to_string(path).expect("run from the repository root");
    let runs = std::env::var("RUNS").ok().and_then(|r| r.parse().ok()).unwrap_or(200usize);
    let (server_side, client) = Connection::memory();
    let server = std::thread::spawn(move || slimc_lang::lsp::serve(&server_side));
    let send = |m: Message| client.sender.send(m).expect("server alive");
    let init = json!({"processId": null, "rootUri": null, "capabilities": {}});
    send(Request::new(RequestId::from(0), "initialize".into(), init).into());
    wait(&client, |m| matches!(m, Message::Response(_)));
    send(Notification::new("initialized".into(), json!({})).into());
    let uri = "file:///bench/resnet152.slim";
    let open = json!({"textDocument": {"uri": uri, "languageId": "slim", "version": 0, "text": text}});
    send(Notification::new("textDocument/didOpen".into(), open).into());
    wait(&client, is_diagnostics);

    // `bottleneck(1024) * 35` in stage 3: its line and the column of the count.
    let (line, col) = text
        .lines()
        .enumerate()
        .find_map(|(i, l)| l.find("* 35").map(|c| (i, c + 2)))
        .expect("resnet152 has a stage of 35 repeated blocks");
    let mut edits = Vec::with_capacity(runs);
    for run in 0..runs {
        let count = if run % 2 == 0 { "36" } else { "35" };
        let change = json!({
            "textDocument": {"uri": uri, "version": run + 1},
            "contentChanges": [{"range": {"start": {"line": line, "character": col}, "end": {"line": line, "character": col + 2}}, "text": count}],
        });
        let t = Instant::now();
        send(Notification::new("textDocument/didChange".into(), change).into());
        wait(&client, is_diagnostics);
        edits.push(t.elapsed());
    }
    let mut hovers = Vec::with_capacity(runs);
    for run in 0..runs {
        let hover = json!({"textDocument": {"uri": uri}, "position": {"line": line, "character": col - 10}});
        let t = Instant::now();
        send(Request::new(RequestId::from(run as i32 + 1), "textDocument/hover".into(), hover).into());
        wait(&client, |m| matches!(m, Message::Response(_)));
        hovers.push(t.elapsed());
    }
    report("edit → diagnostics", edits);
    report("hover on a block call", hovers);
    send(Request::new(RequestId::from(-1), "shutdown".into(), json!(null)).into());
    wait(&client, |m| matches!(m, Message::Response(_)));
    send(Notification::new("exit".into(), json!(null)).into());
    server.join().expect("server thread").expect("clean shutdown");
}

fn is_diagnostics(m: &Message) -> bool {
    matches!(m, Message::Notification(n) if n.method == "textDocument/publishDiagnostics")
}

fn wait(client: &Connection, want: impl Fn(&Message) -> bool) {
    loop {
        let m = client.receiver.recv_timeout(Duration::from_secs(30)).expect("the server answers");
        if want(&m) {
            return;
        }
    }
}

fn report(what: &str, mut times: Vec<Duration>) {
    times.sort();
    let ms = |d: Duration| d.as_secs_f64() * 1e3;
    let (median, p95, max) = (times[times.len() / 2], times[times.len() * 95 / 100], times[times.len() - 1]);
    let verdict = if p95 <= GOAL { "within" } else { "OVER" };
    println!(
        "{what:<24} median {:>7.3} ms   p95 {:>7.3} ms   max {:>7.3} ms   ({verdict} the {} ms goal at p95, {} runs)",
        ms(median),
        ms(p95),
        ms(max),
        GOAL.as_millis(),
        times.len()
    );
}
