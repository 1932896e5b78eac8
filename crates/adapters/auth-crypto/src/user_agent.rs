//! User-agent parsing with woothee (no data file to load).

use auth_core::model::DeviceInfo;
use auth_core::ports::UserAgentParser;

#[derive(Clone, Copy, Debug, Default)]
pub struct WootheeUserAgents;

const UNKNOWN: &str = "UNKNOWN";

fn known(value: &str) -> Option<&str> {
    (!value.is_empty() && value != UNKNOWN).then_some(value)
}

impl UserAgentParser for WootheeUserAgents {
    fn parse(&self, user_agent: &str) -> DeviceInfo {
        let Some(parsed) = woothee::parser::Parser::new().parse(user_agent) else {
            return DeviceInfo {
                device_type: "unknown".into(),
                device_name: "Unknown device".into(),
                browser: "Unknown".into(),
                os: "Unknown".into(),
            };
        };
        let device_type = match parsed.category {
            "pc" => "desktop",
            "smartphone" | "mobilephone" => "mobile",
            "appliance" => "appliance",
            "crawler" => "bot",
            _ => "unknown",
        };
        let browser = known(parsed.name).map_or_else(
            || "Unknown".to_owned(),
            |name| match known(parsed.version) {
                Some(version) => format!("{name} {}", version.split('.').next().unwrap_or(version)),
                None => name.to_owned(),
            },
        );
        let os = known(parsed.os).unwrap_or("Unknown").to_owned();
        let device_name = if parsed.category == "smartphone" && user_agent.contains("iPad") {
            "iPad".to_owned()
        } else {
            match (device_type, known(parsed.os)) {
                ("desktop", Some(os)) => format!("{os} computer"),
                ("mobile", Some(os)) => format!("{os} phone"),
                (_, Some(os)) => os.to_owned(),
                _ => "Unknown device".to_owned(),
            }
        };
        DeviceInfo {
            device_type: device_type.to_owned(),
            device_name,
            browser,
            os,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn desktop_firefox_on_linux() {
        let info = WootheeUserAgents
            .parse("Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0");
        assert_eq!(info.device_type, "desktop");
        assert_eq!(info.browser, "Firefox 128");
        assert_eq!(info.os, "Linux");
    }

    #[test]
    fn safari_on_iphone_is_mobile() {
        let info = WootheeUserAgents.parse(
            "Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) Version/17.4 Mobile/15E148 Safari/604.1",
        );
        assert_eq!(info.device_type, "mobile");
        assert_eq!(info.os, "iPhone");
        assert!(info.browser.starts_with("Safari"), "{}", info.browser);
    }

    #[test]
    fn gibberish_is_unknown_not_an_error() {
        let info = WootheeUserAgents.parse("curl-ish ???");
        assert_eq!(info.device_type, "unknown");
    }
}
