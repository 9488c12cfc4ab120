// Starts `slimc lsp` for .slim files. The settings `slimc.width` and `slimc.inlayHints` go to
// the server at start (initializationOptions) and on every change (didChangeConfiguration).
const vscode = require("vscode");
const { LanguageClient } = require("vscode-languageclient/node");

let client;

function activate(context) {
  const config = vscode.workspace.getConfiguration("slimc");
  const command = config.get("path", "slimc");
  const server = { command, args: ["lsp"] };
  client = new LanguageClient(
    "slimc",
    "slimc",
    { run: server, debug: server },
    {
      documentSelector: [{ scheme: "file", language: "slimc" }, { scheme: "untitled", language: "slimc" }],
      initializationOptions: { width: config.get("width", 0.5), inlayHints: config.get("inlayHints", true) },
      synchronize: { configurationSection: "slimc" },
    },
  );
  context.subscriptions.push(client);
  return client.start();
}

function deactivate() {
  return client ? client.stop() : undefined;
}

module.exports = { activate, deactivate };
