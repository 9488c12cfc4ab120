//! The language server driven in-process with LSP messages over `Connection::memory()`:
//! diagnostics with exact ranges and related locations, hover (snapshotted), definition,
//! references, symbols, completion, inlay hints, settings, UTF-16 positions; and a fuzz
//! test that edits mutated zoo files and asks at random positions, expecting an answer
//! to every request, never an internal error or a hang.

mod common;

use std::thread::JoinHandle;
use std::time::Duration;

use common::mutate::{apply, edit, zoo_sources};
use lsp_server::{Connection, ErrorCode, Message, Notification, Request, RequestId, ResponseError};
use lsp_types::notification::{self as note, Notification as _};
use lsp_types::request::{self as req, Request as _};
use lsp_types::*;
use proptest::prelude::*;
use serde_json::{json, Value};

/// How long any answer may take before the test calls it a hang.
const PATIENCE: Duration = Duration::from_secs(20);

struct Client {
    conn: Connection,
    server: Option<JoinHandle<Result<(), slimc_lang::lsp::ServeError>>>,
    next: i32,
}

fn uri(name: &str) -> Uri {
    format!("file:///work/{name}").parse().unwrap()
}

impl Client {
    /// Starts a server and completes the handshake; `utf8` offers UTF-8 positions. The
    /// client can refresh inlay hints.
    fn start(options: Value, utf8: bool) -> Client {
        let (server_side, conn) = Connection::memory();
        let server = std::thread::spawn(move || slimc_lang::lsp::serve(&server_side));
        let mut client = Client { conn, server: Some(server), next: 0 };
        let encodings = if utf8 { vec![PositionEncodingKind::UTF8] } else { vec![PositionEncodingKind::UTF16] };
        let init = json!({
            "processId": null,
            "rootUri": null,
            "capabilities": {
                "general": {"positionEncodings": encodings},
                "workspace": {"inlayHint": {"refreshSupport": true}},
            },
            "initializationOptions": options,
        });
        let caps = client.raw_request(req::Initialize::METHOD, init).expect("initialize answers");
        let expected = if utf8 { "utf-8" } else { "utf-16" };
        assert_eq!(caps["capabilities"]["positionEncoding"], expected);
        client.notify(note::Initialized::METHOD, json!({}));
        client
    }

    fn notify(&self, method: &str, params: Value) {
        self.conn.sender.send(Message::Notification(Notification::new(method.into(), params))).unwrap();
    }

    /// Sends a request and returns its response; notifications on the way are dropped.
    fn raw_request(&mut self, method: &str, params: Value) -> Result<Value, ResponseError> {
        self.next += 1;
        let id = RequestId::from(self.next);
        self.conn.sender.send(Message::Request(Request::new(id.clone(), method.into(), params))).unwrap();
        loop {
            match self.conn.receiver.recv_timeout(PATIENCE) {
                Ok(Message::Response(r)) if r.id == id => return r.response_result,
                Ok(_) => {}
                Err(e) => panic!("no answer to `{method}` within {PATIENCE:?}: {e}"),
            }
        }
    }

    fn request<R: req::Request>(&mut self, params: R::Params) -> R::Result {
        match self.raw_request(R::METHOD, serde_json::to_value(params).unwrap()) {
            Ok(v) => serde_json::from_value(v).unwrap(),
            Err(e) => panic!("`{}` failed: {} ({})", R::METHOD, e.message, e.code),
        }
    }

    /// The next diagnostics published for `uri`.
    fn diagnostics(&self, uri: &Uri) -> Vec<Diagnostic> {
        loop {
            match self.conn.receiver.recv_timeout(PATIENCE) {
                Ok(Message::Notification(n)) if n.method == note::PublishDiagnostics::METHOD => {
                    let p: PublishDiagnosticsParams = serde_json::from_value(n.params).unwrap();
                    if &p.uri == uri {
                        return p.diagnostics;
                    }
                }
                Ok(_) => {}
                Err(e) => panic!("no diagnostics within {PATIENCE:?}: {e}"),
            }
        }
    }

    fn open(&self, uri: &Uri, text: &str) -> Vec<Diagnostic> {
        let doc = TextDocumentItem { uri: uri.clone(), language_id: "slim".into(), version: 1, text: text.into() };
        self.notify(
            note::DidOpenTextDocument::METHOD,
            serde_json::to_value(DidOpenTextDocumentParams { text_document: doc }).unwrap(),
        );
        self.diagnostics(uri)
    }

    fn change(&self, uri: &Uri, range: Option<Range>, text: &str) -> Vec<Diagnostic> {
        let params = DidChangeTextDocumentParams {
            text_document: VersionedTextDocumentIdentifier { uri: uri.clone(), version: 2 },
            content_changes: vec![TextDocumentContentChangeEvent { range, range_length: None, text: text.into() }],
        };
        self.notify(note::DidChangeTextDocument::METHOD, serde_json::to_value(params).unwrap());
        self.diagnostics(uri)
    }

    fn shutdown(mut self) {
        self.raw_request(req::Shutdown::METHOD, Value::Null).expect("shutdown answers");
        self.notify(note::Exit::METHOD, Value::Null);
        let result = self.server.take().unwrap().join().expect("the server thread does not panic");
        assert!(result.is_ok(), "{result:?}");
    }
}

fn at(uri: &Uri, line: u32, character: u32) -> TextDocumentPositionParams {
    TextDocumentPositionParams {
        text_document: TextDocumentIdentifier { uri: uri.clone() },
        position: Position { line, character },
    }
}

/// The zero-based position of the `nth` occurrence of `needle` in `text`, plus `shift` bytes
/// (ASCII text: bytes are UTF-16 units).
fn find(text: &str, needle: &str, nth: usize, shift: usize) -> Position {
    let offset = text.match_indices(needle).nth(nth).unwrap_or_else(|| panic!("no {needle:?} #{nth}")).0 + shift;
    let line = text[..offset].matches('\n').count() as u32;
    let col = offset - text[..offset].rfind('\n').map_or(0, |i| i + 1);
    Position { line, character: col as u32 }
}

fn range(start: Position, len: u32) -> Range {
    Range { start, end: Position { line: start.line, character: start.character + len } }
}

fn read(path: &str) -> String {
    std::fs::read_to_string(path).unwrap()
}

fn definition(client: &mut Client, uri: &Uri, p: Position) -> Range {
    let def = client.request::<req::GotoDefinition>(GotoDefinitionParams {
        text_document_position_params: at(uri, p.line, p.character),
        work_done_progress_params: Default::default(),
        partial_result_params: Default::default(),
    });
    match def {
        Some(GotoDefinitionResponse::Scalar(loc)) => loc.range,
        other => panic!("no definition at {p:?}: {other:?}"),
    }
}

/// The labels of the inlay hints of the whole document.
fn inlay_labels(client: &mut Client, uri: &Uri) -> Vec<String> {
    let hints = client.request::<req::InlayHintRequest>(InlayHintParams {
        text_document: TextDocumentIdentifier { uri: uri.clone() },
        range: Range { start: Position { line: 0, character: 0 }, end: Position { line: 10_000, character: 0 } },
        work_done_progress_params: Default::default(),
    });
    hints
        .expect("hints for an open document")
        .into_iter()
        .map(|h| match h.label {
            InlayHintLabel::String(s) => s,
            InlayHintLabel::LabelParts(p) => panic!("{p:?}"),
        })
        .collect()
}

fn hover_text(client: &mut Client, uri: &Uri, p: Position) -> String {
    let params = HoverParams {
        text_document_position_params: at(uri, p.line, p.character),
        work_done_progress_params: Default::default(),
    };
    match client.request::<req::HoverRequest>(params) {
        Some(Hover { contents: HoverContents::Markup(m), .. }) => m.value,
        other => panic!("no markdown hover at {p:?}: {other:?}"),
    }
}

#[test]
fn diagnostics_have_exact_ranges_and_related_locations() {
    let client = Client::start(Value::Null, false);
    let text = read("tests/ui/multiple_errors.slim");
    let u = uri("multiple_errors.slim");
    let d = client.open(&u, &text);
    assert_eq!(d.len(), 2, "{d:#?}");
    assert_eq!(d[0].range, range(find(&text, "bnn", 0, 0), 3));
    assert_eq!(d[0].code, Some(NumberOrString::String("E0104".into())));
    assert!(d[0].message.starts_with("unknown op or block `bnn`"), "{}", d[0].message);
    assert_eq!(d[1].range, range(find(&text, "kk=3", 0, 0), 2));
    assert!(d[1].message.contains("did you mean `k`?"), "{}", d[1].message);
    assert!(d.iter().all(|d| d.severity == Some(DiagnosticSeverity::ERROR) && d.source.as_deref() == Some("slimc")));

    // The "set here" labels become related locations.
    let text = read("tests/ui/channel_mismatch_add.slim");
    let u = uri("channel_mismatch_add.slim");
    let d = client.open(&u, &text);
    assert_eq!(d.len(), 1);
    assert_eq!(d[0].range, range(find(&text, "main + in", 0, 0), 9));
    let related: Vec<(Range, String)> =
        d[0].related_information.as_ref().unwrap().iter().map(|r| (r.location.range, r.message.clone())).collect();
    assert!(
        related.contains(&(range(find(&text, "conv(64, k=3)", 0, 0), 13), "64 channels set here".into())),
        "{related:?}"
    );
    assert!(
        related.contains(&(range(find(&text, "conv(c, k=3)", 1, 0), 12), "128 channels set here".into())),
        "{related:?}"
    );

    // Fixing the file clears them; closing publishes an empty list too.
    let fixed = client.change(&u, Some(range(find(&text, "basic(128)", 0, 6), 3)), "64");
    assert!(fixed.is_empty(), "{fixed:#?}");
    client.notify(note::DidCloseTextDocument::METHOD, json!({"textDocument": {"uri": u}}));
    assert!(client.diagnostics(&u).is_empty());
    client.shutdown();
}

#[test]
fn hover_on_regnetx_400mf() {
    let mut client = Client::start(Value::Null, false);
    let text = read("models/regnetx_400mf.slim");
    let u = uri("regnetx_400mf.slim");
    assert!(client.open(&u, &text).is_empty());
    let network = hover_text(&mut client, &u, find(&text, "regnetx_400mf(", 0, 3));
    let call = hover_text(&mut client, &u, find(&text, "xblock(160, group_width, stride=2)", 0, 2));
    let op = hover_text(&mut client, &u, find(&text, "conv(c, k=3, stride=stride, group_width=gw)", 0, 1));
    insta::assert_snapshot!("hover_network", network);
    insta::assert_snapshot!("hover_block_call", call);
    insta::assert_snapshot!("hover_group_conv", op);
    // Independent of the formatting: the totals are the published ones (tests/zoo.rs).
    assert!(network.contains("search_dim **"), "{network}");
    assert!(network.contains("- MACs: 413.81M · "), "{network}");
    assert!(network.contains("- params: 5.50M · "), "{network}");
    // 64 → 160 channels at full width, 32 → 80 at the default width 0.5.
    assert!(call.contains("64→160 · 32→80"), "{call}");
    client.shutdown();
}

#[test]
fn hover_follows_the_width_setting() {
    let mut client = Client::start(json!({"width": 0.25}), false);
    let text = read("models/resnet20.slim");
    let u = uri("resnet20.slim");
    client.open(&u, &text);
    let p = find(&text, "resnet20", 0, 1);
    let h = hover_text(&mut client, &u, p);
    assert!(h.contains("width 0.25"), "{h}");
    client.notify(note::DidChangeConfiguration::METHOD, json!({"settings": {"slimc": {"width": 0.75}}}));
    let h = hover_text(&mut client, &u, p);
    assert!(h.contains("width 0.75"), "{h}");
    // A bad value is refused with a message and the old one kept.
    client.notify(note::DidChangeConfiguration::METHOD, json!({"settings": {"slimc": {"width": 3}}}));
    let h = hover_text(&mut client, &u, p);
    assert!(h.contains("width 0.75"), "{h}");
    client.shutdown();
}

#[test]
fn definition_references_and_symbols() {
    let mut client = Client::start(Value::Null, false);
    let text = read("models/regnetx_400mf.slim");
    let u = uri("regnetx_400mf.slim");
    client.open(&u, &text);
    let call = find(&text, "xblock(64, group_width)", 0, 3);
    let block = range(find(&text, "block xblock", 0, 6), 6);
    assert_eq!(definition(&mut client, &u, call), block);

    // A keyword argument leads to the block's parameter.
    let stride = find(&text, "xblock(32, group_width, stride=2)", 0, 24);
    assert_eq!(definition(&mut client, &u, stride), range(find(&text, "stride = 1", 0, 0), 6));
    // A parameter used inside the block, and a binding used below it.
    let gw = find(&text, "group_width=gw)", 0, 12);
    assert_eq!(definition(&mut client, &u, gw), range(find(&text, "gw, stride = 1", 0, 0), 2));
    let skip = find(&text, "main + skip", 0, 8);
    assert_eq!(definition(&mut client, &u, skip), range(find(&text, "skip = if", 0, 0), 4));

    // Seven calls of `xblock`, plus the definition.
    let refs = client.request::<req::References>(ReferenceParams {
        text_document_position: at(&u, call.line, call.character),
        context: ReferenceContext { include_declaration: true },
        work_done_progress_params: Default::default(),
        partial_result_params: Default::default(),
    });
    let refs = refs.unwrap();
    assert_eq!(refs.len(), 8, "{refs:#?}");
    assert_eq!(refs[0].range, block);

    let symbols = client.request::<req::DocumentSymbolRequest>(DocumentSymbolParams {
        text_document: TextDocumentIdentifier { uri: u.clone() },
        work_done_progress_params: Default::default(),
        partial_result_params: Default::default(),
    });
    let Some(DocumentSymbolResponse::Nested(symbols)) = symbols else { panic!("{symbols:?}") };
    let outline: Vec<String> = symbols
        .iter()
        .map(|s| {
            let children: Vec<&str> = s.children.iter().flatten().map(|c| c.name.as_str()).collect();
            format!("{} [{}]", s.name, children.join(", "))
        })
        .collect();
    assert_eq!(
        outline,
        [
            "regnetx_400mf [classes, in_channels, size, group_width, stem, stage 1, stage 2, stage 3, stage 4, head]",
            "xblock [c, gw, stride, main, skip, out]",
        ]
    );
    client.shutdown();
}

fn labels(items: Option<CompletionResponse>) -> Vec<String> {
    match items {
        Some(CompletionResponse::Array(items)) => items.into_iter().map(|i| i.label).collect(),
        other => panic!("{other:?}"),
    }
}

#[test]
fn completion_after_an_arrow_and_inside_a_call() {
    let mut client = Client::start(Value::Null, false);
    let text = "network n(classes = 10) {\n    input 3 x 32 x 32\n    stem = conv(16, k=3) -> \n}\nblock basic(c, stride = 1) {\n    out = in\n}\n";
    let u = uri("typing.slim");
    // Half-typed: a syntax error, yet completion works.
    assert_eq!(client.open(&u, text).len(), 1);
    let p = find(text, "-> ", 0, 3);
    let complete = |client: &mut Client, p: Position| {
        labels(client.request::<req::Completion>(CompletionParams {
            text_document_position: at(&u, p.line, p.character),
            work_done_progress_params: Default::default(),
            partial_result_params: Default::default(),
            context: None,
        }))
    };
    let after_arrow = complete(&mut client, p);
    for want in ["conv", "bn", "relu", "dwconv", "basic"] {
        assert!(after_arrow.iter().any(|l| l == want), "{want} missing: {after_arrow:?}");
    }
    assert!(
        !after_arrow.iter().any(|l| l == "fixed" || l == "ratio"),
        "width functions are not layers: {after_arrow:?}"
    );

    // Inside `conv(16, ` the keyword arguments of conv; inside `basic(` those of the block.
    let text2 = text.replace("-> \n", "-> conv(16, \n");
    client.change(&u, None, &text2);
    let args = complete(&mut client, find(&text2, "conv(16, \n", 0, 9));
    for want in ["k=", "stride=", "groups=", "group_width="] {
        assert!(args.iter().any(|l| l == want), "{want} missing: {args:?}");
    }
    let text3 = text.replace("-> \n", "-> basic(\n");
    client.change(&u, None, &text3);
    let args = complete(&mut client, find(&text3, "basic(\n", 0, 6));
    assert!(args.iter().any(|l| l == "stride=") && args.iter().any(|l| l == "c="), "{args:?}");
    client.shutdown();
}

#[test]
fn inlay_hints_show_each_section() {
    let mut client = Client::start(Value::Null, false);
    let text = read("models/resnet20.slim");
    let u = uri("resnet20.slim");
    client.open(&u, &text);
    let labels = inlay_labels(&mut client, &u);
    // ResNet-20 on 32x32: 16, 32, 64 channels at 32, 16, 8 pixels; 10 classes.
    assert_eq!(
        labels,
        [
            "16×32×32 (8 at 0.5)",
            "16×32×32 (8 at 0.5)",
            "32×16×16 (16 at 0.5)",
            "64×8×8 (32 at 0.5)",
            "10×1×1 (10 at 0.5)"
        ]
    );
    client.notify(note::DidChangeConfiguration::METHOD, json!({"settings": {"inlayHints": false}}));
    // A client that can refresh its hints is asked to.
    let refresh = loop {
        match client.conn.receiver.recv_timeout(PATIENCE).expect("a refresh request") {
            Message::Request(r) => break r,
            _ => continue,
        }
    };
    assert_eq!(refresh.method, req::InlayHintRefreshRequest::METHOD);
    client.conn.sender.send(Message::Response(lsp_server::Response::new_ok(refresh.id, ()))).unwrap();
    assert!(inlay_labels(&mut client, &u).is_empty());
    client.shutdown();
}

#[test]
fn positions_count_utf16_units_unless_utf8_is_agreed() {
    // `𝄞` is 4 bytes and 2 UTF-16 units; outside a comment it is a syntax error covering it.
    let text = "# é\nnetwork n() {\n    input 3 x 8 x 8\n    stem = 𝄞 -> bn\n}\n";
    for (utf8, end) in [(false, 13), (true, 15)] {
        let client = Client::start(Value::Null, utf8);
        let d = client.open(&uri("utf.slim"), text);
        assert_eq!(
            d[0].range,
            Range { start: Position { line: 3, character: 11 }, end: Position { line: 3, character: end } },
            "utf8 {utf8}"
        );
        client.shutdown();
    }
}

#[test]
fn unknown_requests_and_bad_params_get_errors_not_crashes() {
    let mut client = Client::start(Value::Null, false);
    let r = client.raw_request("textDocument/semanticTokens/full", json!({}));
    assert_eq!(r.unwrap_err().code, ErrorCode::MethodNotFound as i32);
    let r = client.raw_request(req::HoverRequest::METHOD, json!({"nonsense": 1}));
    assert_eq!(r.unwrap_err().code, ErrorCode::InvalidParams as i32);
    // A document never opened: no answer, not an error.
    let p = at(&uri("never.slim"), 0, 0);
    let r = client.request::<req::HoverRequest>(HoverParams {
        text_document_position_params: p,
        work_done_progress_params: Default::default(),
    });
    assert_eq!(r, None);
    client.shutdown();
}

/// Every byte offset of every zoo file: hover, definition, references and completion answer.
#[test]
fn every_offset_of_every_zoo_file_answers() {
    for bytes in zoo_sources() {
        let text = String::from_utf8(bytes).unwrap();
        let a = slimc_lang::lsp::Analysis::new(&text, "zoo.slim");
        assert!(a.diagnostics().is_empty());
        for offset in 0..=text.len() {
            let _ = a.hover(offset, 0.37);
            let _ = a.definition(offset);
            let _ = a.references(offset, true);
            assert!(!a.completions(offset).is_empty());
        }
        assert!(!a.symbols().is_empty());
        assert!(!a.section_hints(0.37).is_empty());
    }
}

/// A position anywhere, including past the end of a line or of the file.
fn position() -> impl Strategy<Value = Position> {
    (0..80u32, 0..120u32).prop_map(|(line, character)| Position { line, character })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 128, failure_persistence: None, ..ProptestConfig::default() })]

    /// Random edits of mutated zoo files, sent as incremental changes with arbitrary ranges,
    /// each followed by requests at arbitrary positions: every request is answered and none
    /// with an internal error.
    #[test]
    fn fuzzed_edits_and_requests_always_answer(
        which in 0..19usize,
        edits in prop::collection::vec(edit(), 1..4),
        changes in prop::collection::vec((position(), position(), "[a-z(){}=>,.\\-\n 0-9é]{0,12}"), 1..6),
        asks in prop::collection::vec(position(), 1..6),
    ) {
        let zoo = zoo_sources();
        let text = String::from_utf8_lossy(&apply(&zoo[which % zoo.len()], &edits)).into_owned();
        let mut client = Client::start(Value::Null, false);
        let u = uri("fuzz.slim");
        client.open(&u, &text);
        for (a, b, insert) in &changes {
            client.change(&u, Some(Range { start: *a, end: *b }), insert);
            for p in &asks {
                for method in [req::HoverRequest::METHOD, req::GotoDefinition::METHOD, req::References::METHOD, req::Completion::METHOD] {
                    let mut params = json!({"textDocument": {"uri": u}, "position": p});
                    if method == req::References::METHOD {
                        params["context"] = json!({"includeDeclaration": true});
                    }
                    let r = client.raw_request(method, params);
                    prop_assert!(r.is_ok(), "{method} at {p:?}: {:?}", r);
                }
            }
            let r = client.raw_request(req::DocumentSymbolRequest::METHOD, json!({"textDocument": {"uri": u}}));
            prop_assert!(r.is_ok(), "{r:?}");
            let r = client.raw_request(req::InlayHintRequest::METHOD, json!({"textDocument": {"uri": u}, "range": {"start": asks[0], "end": asks[asks.len() - 1]}}));
            prop_assert!(r.is_ok(), "{r:?}");
        }
        client.shutdown();
    }
}

/// Library level: a named width hovers as the search dimensions it became (one per
/// bottleneck of ResNet-50, the inner convs' `c // 4`), and a network parameter as its value.
#[test]
fn hover_on_a_named_width_and_a_parameter() {
    let text = read("models/resnet50.slim");
    let a = slimc_lang::lsp::Analysis::new(&text, "resnet50.slim");
    let decl = text.find("width mid").unwrap() + 6;
    let (h, span) = a.hover(decl, 0.5).unwrap();
    assert_eq!(&text[span.start..span.end], "mid");
    // 3 + 4 + 6 + 3 = 16 bottlenecks; the first stage's inner width is 256 // 4 = 64.
    assert!(h.contains("| d2 | stage1 | 64 · 32 | 1 | 2 |"), "{h}");
    assert!(h.contains("… and 8 more"), "{h}");
    // A use of `mid` means the same declaration.
    let usage = text.find("conv(mid, k=3").unwrap() + 5;
    assert_eq!(a.hover(usage, 0.5).unwrap().0, h);
    assert_eq!(a.definition(usage), Some(span));
    let classes = text.find("linear(classes)").unwrap() + 8;
    let (h, _) = a.hover(classes, 0.5).unwrap();
    assert_eq!(h, "**parameter `classes`** of network `resnet50` = 1000 (set with `--set classes=…`)\n");
}

#[test]
fn warnings_are_published_as_warnings() {
    let mut client = Client::start(Value::Null, false);
    let text = read("tests/ui/warn_unused_binding.slim");
    let u = uri("warn_unused_binding.slim");
    let d = client.open(&u, &text);
    assert_eq!(d.len(), 1, "{d:#?}");
    assert_eq!(d[0].severity, Some(DiagnosticSeverity::WARNING));
    assert_eq!(d[0].code, Some(NumberOrString::String("W0301".into())));
    assert_eq!(d[0].range, range(find(&text, "extra =", 0, 0), 5));
    // The file compiles, so hover has its numbers.
    let h = hover_text(&mut client, &u, find(&text, "toy", 0, 1));
    assert!(h.contains("**network `toy`**"), "{h}");
    client.shutdown();
}
