//! LSP over a [`Connection`] (stdio for `slimc lsp`, in memory for the tests): the
//! handshake, open documents with incremental edits, and one handler per request. Every
//! position is clamped into the text, so no request can fail on where it points; a handler
//! that panics anyway answers `InternalError` and the server keeps running.

use std::collections::HashMap;
use std::panic::{catch_unwind, AssertUnwindSafe};

use line_index::{LineIndex, TextSize, WideEncoding, WideLineCol};
use lsp_server::{Connection, ErrorCode, Message, Notification, ProtocolError, Request, Response};
use lsp_types::notification::{self as note, Notification as _};
use lsp_types::request::{self as req, Request as _};
use lsp_types::*;
use serde_json::Value;

use super::{Analysis, CompletionKind as Kind, DeclKind, Symbol};
use crate::diagnostic::{self, floor_char_boundary};
use crate::syntax::ast::Span;

/// Why the server stopped other than by `shutdown` and `exit`.
#[derive(Debug, thiserror::Error)]
pub enum ServeError {
    #[error("LSP protocol error: {0}")]
    Protocol(ProtocolError),
    #[error("the client sent an invalid `initialize` request: {0}")]
    Initialize(serde_json::Error),
    #[error("the client closed the connection without `shutdown` and `exit`")]
    Disconnected,
    #[error("the client sent `exit` without `shutdown` first")]
    ExitBeforeShutdown,
}

impl From<ProtocolError> for ServeError {
    fn from(e: ProtocolError) -> Self {
        if e.channel_is_disconnected() {
            ServeError::Disconnected
        } else {
            ServeError::Protocol(e)
        }
    }
}

/// The editor's settings: `initializationOptions`, or `settings.slimc` of
/// `workspace/didChangeConfiguration`, e.g. `{"width": 0.25, "inlayHints": false}`.
#[derive(Clone, Debug, PartialEq)]
pub struct Settings {
    /// The uniform width multiplier hover and inlay hints show next to full width.
    pub width: f64,
    /// Whether to send each section's output shape as an inlay hint.
    pub inlay_hints: bool,
}

impl Default for Settings {
    fn default() -> Self {
        Settings { width: 0.5, inlay_hints: true }
    }
}

impl Settings {
    /// Takes what `value` sets (directly or under `slimc`); a bad value is named in the
    /// returned message and the old one kept.
    fn update(&mut self, value: &Value) -> Vec<String> {
        let v = value.get("slimc").unwrap_or(value);
        let mut problems = Vec::new();
        if let Some(w) = v.get("width") {
            match w.as_f64() {
                Some(w) if w > 0.0 && w <= 1.0 => self.width = w,
                _ => problems.push(format!("slimc: setting `width` must be a number in (0, 1], got {w}")),
            }
        }
        if let Some(h) = v.get("inlayHints") {
            match h.as_bool() {
                Some(h) => self.inlay_hints = h,
                None => problems.push(format!("slimc: setting `inlayHints` must be true or false, got {h}")),
            }
        }
        problems
    }
}

struct Document {
    text: String,
    lines: LineIndex,
    analysis: Analysis,
}

struct Server<'c> {
    conn: &'c Connection,
    settings: Settings,
    /// `None`: positions count UTF-8 bytes, as the client offered; else UTF-16 units.
    encoding: Option<WideEncoding>,
    docs: HashMap<Uri, Document>,
    /// The client re-asks for inlay hints when told to (after a settings change).
    refresh_hints: bool,
    /// Ids of the requests the server sends.
    next_id: i32,
}

/// Runs the server until the client's `shutdown` and `exit`.
pub fn serve(conn: &Connection) -> Result<(), ServeError> {
    let (id, params) = conn.initialize_start()?;
    let params: InitializeParams = serde_json::from_value(params).map_err(ServeError::Initialize)?;
    let utf8 = params
        .capabilities
        .general
        .as_ref()
        .and_then(|g| g.position_encodings.as_ref())
        .is_some_and(|e| e.contains(&PositionEncodingKind::UTF8));
    let refresh_hints = params
        .capabilities
        .workspace
        .as_ref()
        .and_then(|w| w.inlay_hint.as_ref())
        .and_then(|h| h.refresh_support)
        .unwrap_or(false);
    let mut server = Server {
        conn,
        settings: Settings::default(),
        encoding: (!utf8).then_some(WideEncoding::Utf16),
        docs: HashMap::new(),
        refresh_hints,
        next_id: 0,
    };
    let problems = params.initialization_options.as_ref().map(|o| server.settings.update(o)).unwrap_or_default();
    let result = InitializeResult {
        capabilities: capabilities(utf8),
        server_info: Some(ServerInfo { name: "slimc".into(), version: Some(env!("CARGO_PKG_VERSION").into()) }),
    };
    conn.initialize_finish(id, serde_json::to_value(result).expect("LSP types serialize"))?;
    problems.into_iter().for_each(|p| server.show(MessageType::WARNING, p));
    for msg in &conn.receiver {
        match msg {
            Message::Request(r) => {
                if conn.handle_shutdown(&r)? {
                    return Ok(());
                }
                let response = server.request(r);
                server.send(response);
            }
            Message::Notification(n) if n.method == note::Exit::METHOD => return Err(ServeError::ExitBeforeShutdown),
            Message::Notification(n) => server.notification(n),
            Message::Response(_) => {}
        }
    }
    Err(ServeError::Disconnected)
}

fn capabilities(utf8: bool) -> ServerCapabilities {
    ServerCapabilities {
        position_encoding: Some(if utf8 { PositionEncodingKind::UTF8 } else { PositionEncodingKind::UTF16 }),
        text_document_sync: Some(TextDocumentSyncCapability::Kind(TextDocumentSyncKind::INCREMENTAL)),
        hover_provider: Some(HoverProviderCapability::Simple(true)),
        definition_provider: Some(OneOf::Left(true)),
        references_provider: Some(OneOf::Left(true)),
        document_symbol_provider: Some(OneOf::Left(true)),
        completion_provider: Some(CompletionOptions {
            trigger_characters: Some(vec![">".into(), "(".into(), ",".into()]),
            ..CompletionOptions::default()
        }),
        inlay_hint_provider: Some(OneOf::Left(true)),
        ..ServerCapabilities::default()
    }
}

impl Server<'_> {
    fn send(&self, msg: impl Into<Message>) {
        // The client went away: the receive loop ends on its own.
        let _ = self.conn.sender.send(msg.into());
    }

    fn show(&self, typ: MessageType, message: String) {
        self.send(Notification::new(note::ShowMessage::METHOD.into(), ShowMessageParams { typ, message }));
    }

    fn request(&mut self, r: Request) -> Response {
        let id = r.id.clone();
        match catch_unwind(AssertUnwindSafe(|| self.dispatch(r))) {
            Ok(response) => response,
            Err(_) => Response::new_err(
                id,
                ErrorCode::InternalError as i32,
                "slimc lsp: internal error (a bug; please report it)".into(),
            ),
        }
    }

    fn dispatch(&mut self, r: Request) -> Response {
        let id = r.id.clone();
        let result = match r.method.as_str() {
            req::HoverRequest::METHOD => self.handle::<req::HoverRequest>(r, Self::hover),
            req::GotoDefinition::METHOD => self.handle::<req::GotoDefinition>(r, Self::definition),
            req::References::METHOD => self.handle::<req::References>(r, Self::references),
            req::DocumentSymbolRequest::METHOD => self.handle::<req::DocumentSymbolRequest>(r, Self::symbols),
            req::Completion::METHOD => self.handle::<req::Completion>(r, Self::completion),
            req::InlayHintRequest::METHOD => self.handle::<req::InlayHintRequest>(r, Self::inlay_hints),
            other => {
                return Response::new_err(
                    id,
                    ErrorCode::MethodNotFound as i32,
                    format!("slimc lsp does not handle `{other}`"),
                )
            }
        };
        match result {
            Ok(value) => Response::new_ok(id, value),
            Err(message) => Response::new_err(id, ErrorCode::InvalidParams as i32, message),
        }
    }

    fn handle<R: req::Request>(&self, r: Request, f: impl Fn(&Self, R::Params) -> R::Result) -> Result<Value, String> {
        let params: R::Params =
            serde_json::from_value(r.params).map_err(|e| format!("invalid `{}` parameters: {e}", R::METHOD))?;
        Ok(serde_json::to_value(f(self, params)).expect("LSP types serialize"))
    }

    fn notification(&mut self, n: Notification) {
        let method = n.method.clone();
        if catch_unwind(AssertUnwindSafe(|| self.notify(n))).is_err() {
            self.show(
                MessageType::ERROR,
                format!("slimc lsp: internal error handling `{method}` (a bug; please report it)"),
            );
        }
    }

    fn notify(&mut self, n: Notification) {
        match n.method.as_str() {
            note::DidOpenTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<DidOpenTextDocumentParams>(n.params) {
                    self.set_text(p.text_document.uri, p.text_document.text);
                }
            }
            note::DidChangeTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<DidChangeTextDocumentParams>(n.params) {
                    let uri = p.text_document.uri;
                    let Some(doc) = self.docs.get(&uri) else { return };
                    let mut text = doc.text.clone();
                    for change in p.content_changes {
                        text = self.apply(text, change);
                    }
                    self.set_text(uri, text);
                }
            }
            note::DidCloseTextDocument::METHOD => {
                if let Ok(p) = serde_json::from_value::<DidCloseTextDocumentParams>(n.params) {
                    self.docs.remove(&p.text_document.uri);
                    self.publish(p.text_document.uri, Vec::new());
                }
            }
            note::DidChangeConfiguration::METHOD => {
                if let Ok(p) = serde_json::from_value::<DidChangeConfigurationParams>(n.params) {
                    for problem in self.settings.update(&p.settings) {
                        self.show(MessageType::WARNING, problem);
                    }
                    if self.refresh_hints {
                        // The answer arrives as a `Response`, which the loop ignores.
                        self.next_id += 1;
                        let id = format!("slimc-{}", self.next_id);
                        self.send(Request::new(id.into(), req::InlayHintRefreshRequest::METHOD.into(), ()));
                    }
                }
            }
            _ => {}
        }
    }

    /// One content change: a replaced range, or (no range) the whole text.
    fn apply(&self, text: String, change: TextDocumentContentChangeEvent) -> String {
        let Some(range) = change.range else { return change.text };
        let lines = LineIndex::new(&text);
        let start = self.offset(&text, &lines, range.start);
        let end = self.offset(&text, &lines, range.end).max(start);
        let mut text = text;
        text.replace_range(start..end, &change.text);
        text
    }

    fn set_text(&mut self, uri: Uri, text: String) {
        let analysis = Analysis::new(&text, uri.as_str());
        let doc = Document { lines: LineIndex::new(&text), text, analysis };
        let diagnostics = doc.analysis.diagnostics().iter().map(|d| self.diagnostic(&uri, &doc, d)).collect();
        self.docs.insert(uri.clone(), doc);
        self.publish(uri, diagnostics);
    }

    fn publish(&self, uri: Uri, diagnostics: Vec<Diagnostic>) {
        let params = PublishDiagnosticsParams { uri, diagnostics, version: None };
        self.send(Notification::new(note::PublishDiagnostics::METHOD.into(), params));
    }

    fn diagnostic(&self, uri: &Uri, doc: &Document, d: &diagnostic::Diagnostic) -> Diagnostic {
        let primary = d.labels.iter().find(|l| l.primary);
        let mut message = d.message.clone();
        if let Some(l) = primary.filter(|l| !l.message.is_empty()) {
            message.push_str(&format!("\n{}", l.message));
        }
        for n in &d.notes {
            message.push_str(&format!("\n{n}"));
        }
        let related: Vec<DiagnosticRelatedInformation> = d
            .labels
            .iter()
            .filter(|l| !l.primary)
            .map(|l| DiagnosticRelatedInformation {
                location: Location { uri: uri.clone(), range: self.range(doc, l.span) },
                message: l.message.clone(),
            })
            .collect();
        Diagnostic {
            range: self.range(doc, d.position()),
            severity: Some(match d.severity {
                crate::Severity::Error => DiagnosticSeverity::ERROR,
                crate::Severity::Warning => DiagnosticSeverity::WARNING,
            }),
            code: Some(NumberOrString::String(d.code.into())),
            source: Some("slimc".into()),
            message,
            related_information: (!related.is_empty()).then_some(related),
            ..Diagnostic::default()
        }
    }

    // ----- positions -----------------------------------------------------------------

    /// The byte offset of `p`, clamped into its line and the text, on a char boundary.
    fn offset(&self, text: &str, lines: &LineIndex, p: Position) -> usize {
        let Some(line) = lines.line(p.line) else { return text.len() };
        let col = match self.encoding {
            Some(enc) => {
                lines.to_utf8(enc, WideLineCol { line: p.line, col: p.character }).map_or(u32::MAX, |lc| lc.col)
            }
            None => p.character,
        };
        let start = usize::from(line.start());
        // A column past the end stops before the line break.
        let end = start + text[start..usize::from(line.end())].trim_end_matches(['\n', '\r']).len();
        floor_char_boundary(text, start.saturating_add(col as usize).min(end))
    }

    fn position(&self, doc: &Document, offset: usize) -> Position {
        let at = floor_char_boundary(&doc.text, offset.min(doc.text.len()));
        let lc = doc.lines.line_col(TextSize::new(at as u32));
        let col = match self.encoding {
            Some(enc) => doc.lines.to_wide(enc, lc).map_or(lc.col, |w| w.col),
            None => lc.col,
        };
        Position { line: lc.line, character: col }
    }

    fn range(&self, doc: &Document, s: Span) -> Range {
        Range { start: self.position(doc, s.start), end: self.position(doc, s.end) }
    }

    /// The document and byte offset a request points at.
    fn at(&self, p: &TextDocumentPositionParams) -> Option<(&Document, usize)> {
        let doc = self.docs.get(&p.text_document.uri)?;
        Some((doc, self.offset(&doc.text, &doc.lines, p.position)))
    }

    // ----- requests ------------------------------------------------------------------

    fn hover(&self, p: HoverParams) -> Option<Hover> {
        let (doc, offset) = self.at(&p.text_document_position_params)?;
        let (text, span) = doc.analysis.hover(offset, self.settings.width)?;
        Some(Hover {
            contents: HoverContents::Markup(MarkupContent { kind: MarkupKind::Markdown, value: text }),
            range: Some(self.range(doc, span)),
        })
    }

    fn definition(&self, p: GotoDefinitionParams) -> Option<GotoDefinitionResponse> {
        let tdp = &p.text_document_position_params;
        let (doc, offset) = self.at(tdp)?;
        let span = doc.analysis.definition(offset)?;
        Some(GotoDefinitionResponse::Scalar(Location {
            uri: tdp.text_document.uri.clone(),
            range: self.range(doc, span),
        }))
    }

    fn references(&self, p: ReferenceParams) -> Option<Vec<Location>> {
        let (doc, offset) = self.at(&p.text_document_position)?;
        let uri = &p.text_document_position.text_document.uri;
        let spans = doc.analysis.references(offset, p.context.include_declaration);
        Some(spans.into_iter().map(|s| Location { uri: uri.clone(), range: self.range(doc, s) }).collect())
    }

    fn symbols(&self, p: DocumentSymbolParams) -> Option<DocumentSymbolResponse> {
        let doc = self.docs.get(&p.text_document.uri)?;
        let symbols = doc.analysis.symbols().into_iter().map(|s| self.symbol(doc, s)).collect();
        Some(DocumentSymbolResponse::Nested(symbols))
    }

    #[allow(deprecated)] // `DocumentSymbol::deprecated` must be written; it is `None`.
    fn symbol(&self, doc: &Document, s: Symbol) -> DocumentSymbol {
        let (kind, detail) = match s.kind {
            DeclKind::Network => (SymbolKind::MODULE, "network"),
            DeclKind::Block => (SymbolKind::CLASS, "block"),
            DeclKind::Param => (SymbolKind::TYPE_PARAMETER, "parameter"),
            DeclKind::Width => (SymbolKind::CONSTANT, "width"),
            DeclKind::Binding => (SymbolKind::VARIABLE, "binding"),
        };
        let children: Vec<DocumentSymbol> = s.children.into_iter().map(|c| self.symbol(doc, c)).collect();
        DocumentSymbol {
            name: s.name,
            detail: Some(detail.into()),
            kind,
            tags: None,
            deprecated: None,
            range: self.range(doc, s.full),
            selection_range: self.range(doc, s.span),
            children: (!children.is_empty()).then_some(children),
        }
    }

    fn completion(&self, p: CompletionParams) -> Option<CompletionResponse> {
        let (doc, offset) = self.at(&p.text_document_position)?;
        let items = doc
            .analysis
            .completions(offset)
            .into_iter()
            .map(|c| CompletionItem {
                kind: Some(match c.kind {
                    Kind::Op => CompletionItemKind::FUNCTION,
                    Kind::Function => CompletionItemKind::METHOD,
                    Kind::Block => CompletionItemKind::CLASS,
                    Kind::Argument => CompletionItemKind::FIELD,
                    Kind::Name => CompletionItemKind::VARIABLE,
                    Kind::Constant => CompletionItemKind::CONSTANT,
                }),
                detail: Some(c.detail),
                insert_text: (c.insert != c.label).then_some(c.insert),
                label: c.label,
                ..CompletionItem::default()
            })
            .collect();
        Some(CompletionResponse::Array(items))
    }

    fn inlay_hints(&self, p: InlayHintParams) -> Option<Vec<InlayHint>> {
        let doc = self.docs.get(&p.text_document.uri)?;
        if !self.settings.inlay_hints {
            return Some(Vec::new());
        }
        let (from, to) =
            (self.offset(&doc.text, &doc.lines, p.range.start), self.offset(&doc.text, &doc.lines, p.range.end));
        let hints = doc
            .analysis
            .section_hints(self.settings.width)
            .into_iter()
            .filter(|(at, _)| from <= *at && *at <= to)
            .map(|(at, label)| InlayHint {
                position: self.position(doc, at),
                label: InlayHintLabel::String(label),
                kind: Some(InlayHintKind::TYPE),
                text_edits: None,
                tooltip: None,
                padding_left: Some(true),
                padding_right: None,
                data: None,
            })
            .collect();
        Some(hints)
    }
}
