//! Progress bars with bytes and rate for pulls and imports, drawn only when stdout is a
//! terminal: scripts and logs get the results alone.

use std::collections::HashMap;
use std::io::IsTerminal;
use std::sync::Mutex;
use std::time::Duration;

use berth_runtime::image::{Digest, Progress, Quiet};
use indicatif::{MultiProgress, ProgressBar, ProgressDrawTarget, ProgressStyle};

use super::OutputFormat;

/// Bars on a terminal, nothing otherwise.
pub fn for_stdout(output: OutputFormat) -> Box<dyn Progress> {
    if output == OutputFormat::Table && std::io::stdout().is_terminal() {
        Box::new(Bars::new())
    } else {
        Box::new(Quiet)
    }
}

struct Bars {
    multi: MultiProgress,
    bars: Mutex<HashMap<String, ProgressBar>>,
}

impl Bars {
    fn new() -> Bars {
        Bars {
            multi: MultiProgress::with_draw_target(ProgressDrawTarget::stdout()),
            bars: Mutex::new(HashMap::new()),
        }
    }

    fn bars(&self) -> std::sync::MutexGuard<'_, HashMap<String, ProgressBar>> {
        self.bars
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    fn finish(&self, key: &str, message: &'static str) {
        if let Some(bar) = self.bars().remove(key) {
            bar.finish_with_message(message);
        }
    }
}

impl Progress for Bars {
    fn blob_started(&self, digest: &Digest, size: u64) {
        let bar = self.multi.add(ProgressBar::new(size));
        if let Ok(style) = ProgressStyle::with_template(
            "{prefix} {bar:30} {bytes:>10}/{total_bytes:<10} {binary_bytes_per_sec:>12} {msg}",
        ) {
            bar.set_style(style.progress_chars("=> "));
        }
        bar.set_prefix(digest.short().to_string());
        self.bars().insert(format!("blob {digest}"), bar);
    }

    fn blob_advanced(&self, digest: &Digest, bytes: u64) {
        if let Some(bar) = self.bars().get(&format!("blob {digest}")) {
            bar.inc(bytes);
        }
    }

    fn blob_done(&self, digest: &Digest) {
        self.finish(&format!("blob {digest}"), "stored");
    }

    fn layer_started(&self, layer: &Digest) {
        let bar = self.multi.add(ProgressBar::new_spinner());
        if let Ok(style) = ProgressStyle::with_template("{prefix} {spinner} {msg} {elapsed}") {
            bar.set_style(style);
        }
        bar.set_prefix(layer.short().to_string());
        bar.set_message("unpacking");
        bar.enable_steady_tick(Duration::from_millis(120));
        self.bars().insert(format!("layer {layer}"), bar);
    }

    fn layer_done(&self, layer: &Digest) {
        self.finish(&format!("layer {layer}"), "unpacked");
    }
}
