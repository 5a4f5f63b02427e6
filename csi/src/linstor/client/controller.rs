//! The controller itself: the version handshake and the controller-wide properties.
//!
//! Owns: `GET /v1/controller/version` and the REST API version rule (1.x, at least 1.0.4, the
//! rule python-linstor applies too), and `/v1/controller/properties`.

use reqwest::Method;
use serde::{Deserialize, Serialize};

use super::error::LinstorError;
use super::rc::ApiCallRc;
use super::resources::PropsModify;
use super::transport::Replay;
use super::{LinstorClient, Props};

/// `ControllerVersion`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ControllerVersion {
    /// The controller's version, e.g. `1.31.0`.
    pub version: String,
    /// Its git commit.
    pub git_hash: String,
    /// When it was built.
    pub build_time: String,
    /// The REST API version, e.g. `1.25.0`.
    pub rest_api_version: String,
}

/// The oldest REST API version Hearth speaks.
pub const MIN_REST_API: (u64, u64, u64) = (1, 0, 4);

/// True when `version` is `1.x.y` at [`MIN_REST_API`] or later. Missing parts count as 0;
/// anything after the numbers (`1.20.0-rc1`) is ignored.
pub fn supported(version: &str) -> bool {
    let mut parts = version.trim().split('.').map(|p| {
        let digits: String = p.chars().take_while(char::is_ascii_digit).collect();
        digits.parse::<u64>().ok()
    });
    let major = parts.next().flatten();
    let minor = parts.next().flatten().unwrap_or(0);
    let patch = parts.next().flatten().unwrap_or(0);
    match major {
        Some(1) => (1, minor, patch) >= MIN_REST_API,
        _ => false,
    }
}

impl LinstorClient {
    /// `GET /v1/controller/version`, checked against [`MIN_REST_API`]; a
    /// [`LinstorError::Version`] names what the controller reported.
    pub async fn handshake(&self) -> Result<ControllerVersion, LinstorError> {
        let v: ControllerVersion = self.http.get(&["controller", "version"], &[]).await?;
        if !supported(&v.rest_api_version) {
            return Err(LinstorError::Version {
                url: self.base_url().to_owned(),
                found: v.rest_api_version,
            });
        }
        Ok(v)
    }

    /// `GET /v1/controller/properties`.
    pub async fn controller_properties(&self) -> Result<Props, LinstorError> {
        self.http.get(&["controller", "properties"], &[]).await
    }

    /// `POST /v1/controller/properties`: set and delete controller properties.
    pub async fn modify_controller_properties(
        &self,
        modify: &PropsModify,
    ) -> Result<Vec<ApiCallRc>, LinstorError> {
        self.http
            .mutate(
                Method::POST,
                &["controller", "properties"],
                &[],
                Some(modify),
                Replay::Replayable,
            )
            .await
    }
}

#[cfg(test)]
mod tests {
    use super::supported;

    #[test]
    fn version_rule() {
        for ok in ["1.0.4", "1.0.5", "1.1.0", "1.28.0", "1.20.0-rc1", " 1.2 "] {
            assert!(supported(ok), "{ok}");
        }
        for bad in ["", "1.0.3", "1.0", "0.9.9", "2.0.0", "x.y.z", "1"] {
            assert!(!supported(bad), "{bad}");
        }
    }
}
