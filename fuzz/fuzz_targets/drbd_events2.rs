//! Fuzzes the `drbdsetup events2` parser and the model it feeds.
//!
//! Checks beyond "no panic": every line that parses to an event renders to a line that parses
//! back to the same event, and the model answers readiness and condition for what it holds.
#![no_main]

use hearth_csi::drbd::events2::{self, Line};
use hearth_csi::drbd::DrbdState;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let mut state = DrbdState::default();
    for (index, raw) in text.lines().enumerate() {
        let Ok(line) = events2::parse_line(index + 1, raw) else {
            continue;
        };
        if let Line::Event(event) = &line {
            let rendered = event.to_string();
            assert_eq!(
                events2::parse_line(1, &rendered).as_ref(),
                Ok(&line),
                "{raw:?} rendered as {rendered:?}"
            );
        }
        state.apply(&line);
    }
    for resource in state.resources.values() {
        for volume in resource.devices.keys() {
            let _ = state.readiness(&resource.name, *volume).message();
            let _ = state.condition(&resource.name, *volume);
        }
    }
});
