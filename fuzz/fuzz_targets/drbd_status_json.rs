//! Fuzzes the `drbdsetup status --json` parser and the model it fills.
#![no_main]

use hearth_csi::drbd::status_json;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(state) = status_json::parse(text) {
        for resource in state.resources.values() {
            for volume in resource.devices.keys() {
                let _ = state.readiness(&resource.name, *volume).message();
                let _ = state.condition(&resource.name, *volume);
            }
        }
    }
});
