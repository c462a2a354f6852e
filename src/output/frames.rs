//! A stack frame in JSON: the symbol, file and line under OpenTelemetry's `code.*` names
//! (kmemleak-lite's stacks, uprobe-lat's --stack).

use serde::Serialize;

use crate::host::symbols::Frame;
use crate::output::schema::CodeLocation;

/// In JSON, the symbol, file and line under OpenTelemetry's `code.*` names.
impl Serialize for Frame {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct FrameJson<'a> {
            addr: &'a str,
            #[serde(flatten)]
            code: CodeLocation<'a>,
            #[serde(skip_serializing_if = "Option::is_none")]
            offset: Option<u64>,
            #[serde(skip_serializing_if = "Option::is_none")]
            module: Option<&'a str>,
        }
        FrameJson {
            addr: &self.addr,
            code: CodeLocation {
                function: self.symbol.as_deref(),
                file: self.file.as_deref(),
                line: self.line,
            },
            offset: self.offset,
            module: self.module.as_deref(),
        }
        .serialize(s)
    }
}
