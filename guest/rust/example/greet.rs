//! The Rust SDK's example plugin: `greet`, for `plugin.callJson("greet", { name })`.
//!
//! It reads the greeting from the config (key "greeting", default "Hello"),
//! counts its calls in storage (key "count"), logs, asks the host tool
//! "decorate" to dress up the text, and answers
//! `{"message": <what the tool answered>, "count": <calls so far>}`. Without a
//! "name" it fails: the caller gets a `GuestError` `missing "name"`.
//!
//! Capabilities: ReadConfig, ReadState, WriteState, CallTool.
//! Build: `deno task build:guests`.

#[path = "../wasmplug.rs"]
mod wasmplug;

/// The contents of the string field "name" of a JSON object, escapes kept (so
/// they can go into JSON again). A naive scan, enough for an example.
fn find_name(json: &str) -> Option<&str> {
    let key = "\"name\"";
    let at = json.find(key)? + key.len();
    let rest = json[at..].trim_start_matches(|c| c == ' ' || c == ':');
    let rest = rest.strip_prefix('"')?;
    let bytes = rest.as_bytes();
    let mut end = 0;
    while end < bytes.len() && bytes[end] != b'"' {
        end += if bytes[end] == b'\\' { 2 } else { 1 };
    }
    if end >= bytes.len() {
        return None;
    }
    Some(&rest[..end])
}

/// `text` as the contents of a JSON string (quotes and backslashes escaped).
fn json_escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '"' || c == '\\' {
            out.push('\\');
        }
        out.push(c);
    }
    out
}

plugin_fn! {
    fn greet(input: &[u8]) -> Result<Vec<u8>, String> {
        let json = String::from_utf8_lossy(input);
        let name = match find_name(&json) {
            Some(name) if !name.is_empty() => name,
            _ => return Err("missing \"name\"".to_string()),
        };
        let greeting = wasmplug::config_get("greeting").unwrap_or_else(|| "Hello".to_string());

        let count = wasmplug::storage_get("count")
            .and_then(|bytes| String::from_utf8(bytes).ok())
            .and_then(|text| text.parse::<u64>().ok())
            .unwrap_or(0)
            + 1;
        wasmplug::storage_set("count", count.to_string().as_bytes());

        wasmplug::info(&format!("greeting {} (call {})", name, count));

        let args = format!("{{\"text\":\"{}, {}!\"}}", json_escape(&greeting), name);
        let decorated = wasmplug::call_tool("decorate", &args)
            .ok_or_else(|| "no tool \"decorate\"".to_string())?;
        Ok(format!("{{\"message\":{},\"count\":{}}}", decorated, count).into_bytes())
    }
}
